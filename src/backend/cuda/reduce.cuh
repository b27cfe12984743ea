#pragma once
// Warp reductions with a fixed butterfly order (no atomics: the same inputs give the same bits on every run). Device
// code only.
namespace orcd::cuda {

// Sum over the 32 lanes of a warp; every lane gets the result.
__device__ __forceinline__ float warp_sum(float v) {
#pragma unroll
    for (int offset = 16; offset > 0; offset >>= 1) v += __shfl_xor_sync(0xffffffffu, v, offset);
    return v;
}

// Maximum over the 32 lanes of a warp; every lane gets the result.
__device__ __forceinline__ float warp_max(float v) {
#pragma unroll
    for (int offset = 16; offset > 0; offset >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, offset));
    return v;
}

// Sum over aligned groups of `width` (a power of two, <= 32) consecutive lanes; every lane gets its group's sum.
template <typename T>
__device__ __forceinline__ T lane_group_sum(T v, int width) {
    for (int o = width / 2; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    return v;
}

}  // namespace orcd::cuda
