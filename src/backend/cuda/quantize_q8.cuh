#pragma once
// The int8 activation quantization (matvec_q8.h's definition) as device code, in the one form that both its users
// run: quantize_q8_kernel (a launch of its own, the batched decode) and the single column's dp4a matvec, which
// quantizes its input into shared memory itself (Q8Matvec::fold_x, one launch fewer a matrix). Both produce the same
// bits because they run this code: the norm's scale from block_rms_scale, then per 32-block the same products,
// division and rounding. Device code only.
#include <cstdint>

#include "backend/cuda/norm.cuh"
#include "backend/cuda/reduce.cuh"

namespace orcd::cuda {

// Quantizes 32-blocks first, first + stride, ... of x (of cols values, a multiple of 32), one warp a 32-block, into
// q[cols], d[cols / 32] and s[cols / 16] (the sums of each 16 q). With norm set, x is first normalized as rms_norm
// does it: quantize(rms_norm(x) * norm). All kThreads threads of the block call it (the norm's scale is a block
// reduction over `red`, kThreads doubles of shared memory); first and stride are per warp.
template <int kThreads>
__device__ __forceinline__ void quantize_q8_groups(const float* __restrict__ x, const float* __restrict__ norm,
                                                   float eps, int cols, int first, int stride, int8_t* q, float* d,
                                                   int32_t* s, double* red) {
    float scale = 1.0f;
    if (norm) scale = block_rms_scale<kThreads>(x, cols, eps, red);  // bit-identical to rms_norm_kernel's
    const int lane = static_cast<int>(threadIdx.x % 32);
    for (int b = first; b * 32 < cols; b += stride) {  // warp-uniform
        const int i = b * 32 + lane;
        const float v = norm ? __fmul_rn(__fmul_rn(x[i], scale), norm[i]) : x[i];
        const float amax = warp_max(fabsf(v));
        // As quantize_activation_scalar: d = amax / 127, q = nearbyint(x * (127 / amax)) (IEEE division and product).
        const float id = amax > 0.f ? __fdiv_rn(127.f, amax) : 0.f;
        const int qi = __float2int_rn(__fmul_rn(v, id));
        q[i] = static_cast<int8_t>(qi);
        if (lane == 0) d[b] = __fdiv_rn(amax, 127.f);
        // The sums of lanes 0-15 and 16-31 (integers: exact in any order).
        const int half_sum = lane_group_sum(qi, 16);
        if (lane % 16 == 0) s[2 * b + lane / 16] = half_sum;
    }
}

}  // namespace orcd::cuda
