#include "device/device_query.h"

#include <cuda_runtime_api.h>

namespace orcd::device {

int sm_count() {
    static const int n = [] {
        int device = 0, count = 0;
        if (cudaGetDevice(&device) != cudaSuccess ||
            cudaDeviceGetAttribute(&count, cudaDevAttrMultiProcessorCount, device) != cudaSuccess) {
            return 132;
        }
        return count;
    }();
    return n;
}

}  // namespace orcd::device
