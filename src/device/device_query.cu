#include "device/device_query.h"

#include <cuda_runtime_api.h>

namespace orcd::device {

namespace {

// The attribute of the device current at the call, or `fallback` when the query fails.
int attribute_or(cudaDeviceAttr attr, int fallback) {
    int device = 0, value = 0;
    if (cudaGetDevice(&device) != cudaSuccess || cudaDeviceGetAttribute(&value, attr, device) != cudaSuccess) {
        return fallback;
    }
    return value;
}

}  // namespace

int sm_count() {
    static const int n = attribute_or(cudaDevAttrMultiProcessorCount, 132);
    return n;
}

int shared_bytes_per_block_optin() {
    static const int n = attribute_or(cudaDevAttrMaxSharedMemoryPerBlockOptin, 227 * 1024);
    return n;
}

int shared_bytes_per_sm() {
    static const int n = attribute_or(cudaDevAttrMaxSharedMemoryPerMultiprocessor, 228 * 1024);
    return n;
}

}  // namespace orcd::device
