#pragma once
// Small page-locked host buffers of the CUDA backend (cudaMallocHost), owned like std::unique_ptr: the staging through
// which a step's inputs (the batched decode's tokens and page tables, the sampler's parameters, a token mask's words)
// reach the device asynchronously. The backend's only owner of cudaMallocHost memory. Freeing reports a failure
// instead of throwing, since it runs in destructors. Memory the load accounts for (weights' staging) goes through
// device::Device::allocate_pinned instead.
#include <cuda_runtime_api.h>

#include <cstddef>
#include <memory>

#include "device/cuda_check.h"

namespace orcd::backend::cuda {

struct PinnedHostFree {
    void operator()(void* p) const { ORCD_CUDA_WARN(cudaFreeHost(p)); }
};

template <typename T>
using PinnedHost = std::unique_ptr<T, PinnedHostFree>;

// `bytes` of pinned host memory seen as T (the caller sizes it for what it stores there).
template <typename T>
PinnedHost<T> allocate_pinned_host(size_t bytes) {
    void* p = nullptr;
    ORCD_CUDA_CHECK(cudaMallocHost(&p, bytes));
    return PinnedHost<T>(static_cast<T*>(p));
}

}  // namespace orcd::backend::cuda
