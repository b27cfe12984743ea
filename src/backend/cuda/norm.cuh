#pragma once
// The RMSNorm scale as every CUDA norm computes it, so that the decode ops (ops.cu) and the prefill ops
// (prefill_elementwise.cu) produce bit-identical normalized values: the sum of squares in double, as the CPU
// reference does, reduced over the block by a fixed tree (deterministic, no atomics). Device code only.
#include <cstdint>

namespace orcd::cuda {

// 1 / sqrt(mean(x^2) + eps) over x[0..n), computed by all kThreads threads of the block together; `partial` is
// kThreads doubles of shared memory. Every thread returns the same value; all reads of x happen before it returns.
template <int kThreads>
__device__ __forceinline__ float block_rms_scale(const float* __restrict__ x, int64_t n, float eps, double* partial) {
    double ss = 0.0;
    for (int64_t i = threadIdx.x; i < n; i += kThreads) ss += static_cast<double>(x[i]) * x[i];
    partial[threadIdx.x] = ss;
    __syncthreads();
    for (int stride = kThreads / 2; stride > 0; stride >>= 1) {
        if (threadIdx.x < stride) partial[threadIdx.x] += partial[threadIdx.x + stride];
        __syncthreads();
    }
    return static_cast<float>(1.0 / sqrt(partial[0] / static_cast<double>(n) + eps));
}

}  // namespace orcd::cuda
