#pragma once
// The device-side work of quantize_q8 and of the dp4a matvec (matvec_q8.h) as functions of a block's share of the
// work: their own kernels (matvec_q8.cu) hand them blockIdx and gridDim; the persistent decode step
// (decode_persistent.cu) hands them its block's share of one phase of the token. What an output's bits depend on is
// fixed by the parameters alone (the quantization's 32-blocks, the matvec's threads per row, its unit order and its
// reduction tree), never by which block computes it or how many blocks share the work, so both callers produce the
// same bits. Device code only.
#include <cstdint>

#include "backend/cuda/matvec_common.cuh"
#include "backend/cuda/matvec_q8_kernels.cuh"
#include "backend/cuda/matvec_q8_units.cuh"
#include "backend/cuda/reduce.cuh"
#include "quant/formats.h"

namespace orcd::cuda::q8rows {

inline constexpr int kThreads = 256;  // threads of every block that runs these functions
inline constexpr int kWarps = kThreads / 32;

// ---- quantize ------------------------------------------------------------------------------------------------------

// One warp quantizes 32-block b: lane `lane` holds its value v (x[32 b + lane], times the norm's scale and weight
// when there is a norm) and writes q; d = amax / 127, q = round-half-even(v * 127 / amax), and the sums of lanes 0-15
// and 16-31.
__device__ __forceinline__ void quantize_32block(float v, int b, int lane, int8_t* q, float* d, int32_t* s) {
    const int i = b * 32 + lane;
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

// The value lane `lane` of 32-block b quantizes: x, or x normalized (scale: block_rms_scale's) times the norm weight.
__device__ __forceinline__ float quantize_input(const float* x, const float* norm, float scale, int b, int lane) {
    const int i = b * 32 + lane;
    return norm ? __fmul_rn(__fmul_rn(x[i], scale), norm[i]) : x[i];
}

// quantize_32block of 32-block b of x (quantize_input's values) into out.
__device__ __forceinline__ void quantize_32block_of(const float* x, const float* norm, float scale, int b, int lane,
                                                    const Q8Vector& out) {
    quantize_32block(quantize_input(x, norm, scale, b, lane), b, lane, out.q, out.d, out.s);
}

// ---- the dp4a matvec -----------------------------------------------------------------------------------------------

// This thread's share of one row for columns c0 .. c0 + nc - 1: units first, first + stride, ..., each unit's
// product added to the column's running sum in unit order. (Walking blocks instead, with the unit index first %
// kQ8Units hoisted, which stride, a multiple of 8, allows, made ptxas spill at every column count: 2026-12-04.)
template <typename T, int NC>
__device__ __forceinline__ void row_units(const uint8_t* row, const Q8Params& p, int first, int stride, int c0, int nc,
                                          float (&acc)[NC]) {
    const auto* blocks = reinterpret_cast<const typename T::Block*>(row);
    const int n_units = p.cols / 32;
    constexpr int kElems = T::kQ8Units * 32;
    // The single column's Q4_K/Q5_K units read their block in 16-byte loads (q8_load_aligned).
    constexpr bool kAligned = NC == 1 && requires { q8units::Unit<T>::kOwnSums; };
#pragma unroll 2
    for (int i = first; i < n_units; i += stride) {
        const int blk = i / T::kQ8Units, u = i % T::kQ8Units;
        // The unit's weights are loaded and decoded once, then multiplied with every column (the compiler did not
        // share them between the columns' copies of one fused load-decode-multiply: each column re-read them).
        const typename T::Q8Unit unit = [&] {
            if constexpr (kAligned) {
                return q8units::Unit<T>::q8_load_aligned(blocks[blk], u);
            } else {
                return T::q8_load(blocks[blk], u);
            }
        }();
#pragma unroll
        for (int c = 0; c < NC; ++c) {
            if (NC == 1 || c < nc) {
                const int64_t off = static_cast<int64_t>(c0 + c) * p.x_stride;
                const int8_t* xq = p.xq + off;
                const float* xd = reinterpret_cast<const float*>(reinterpret_cast<const char*>(p.xd) + off);
                const int32_t* xs = reinterpret_cast<const int32_t*>(reinterpret_cast<const char*>(p.xs) + off);
                if constexpr (kAligned) {
                    acc[c] = __fadd_rn(
                        acc[c], q8units::Unit<T>::dp4a_value_own_sums(unit, xq + kElems * blk, xd + T::kQ8Units * blk));
                } else {
                    acc[c] =
                        __fadd_rn(acc[c], q8units::Unit<T>::dp4a_value(unit, xq + kElems * blk, xd + T::kQ8Units * blk,
                                                                       xs + 2 * T::kQ8Units * blk, u));
                }
            }
        }
    }
}

template <int NC>
__device__ __forceinline__ void row_partial(const Q8Params& p, int64_t r, int first, int stride, int c0, int nc,
                                            float (&acc)[NC]) {
    const MatvecSource s = locate_source(p, r);
    const uint8_t* row = s.w + r * s.row_bytes;
    bool done = false;  // stays false (NaN results) only for a type the host refuses
    quant::visit_format(s.type, [&](auto f) {
        if constexpr (quant::HasQ8Matvec<decltype(f)>) {
            row_units<decltype(f), NC>(row, p, first, stride, c0, nc, acc);
            done = true;
        }
    });
    if (!done) {
#pragma unroll
        for (int c = 0; c < NC; ++c) acc[c] = __int_as_float(0x7fc00000);
    }
}

// Scratch a block needs for matvec_rows: the warps' partial sums of rows longer than a warp.
template <int NC>
using MatvecPartials = float[2][NC][kWarps];

// One iteration of the block: output rows base .. base + per_iter - 1 (per_iter = kThreads / p.tpr; thread t takes
// row base + t / tpr with the units t % tpr, + tpr, ...), for column groups cblk * NC, + n_cblk * NC, ... Every
// thread of the block calls it.
template <int NC>
__device__ __forceinline__ void matvec_rows_at(const Q8Params& p, int64_t base, int cblk, int n_cblk,
                                               MatvecPartials<NC>& part) {
    const int tpr = p.tpr;
    const int per_iter = kThreads / tpr;  // output rows per block per iteration
    const int slot = threadIdx.x / tpr, sub = threadIdx.x % tpr;
    const int width = min(tpr, 32);
    const bool swiglu = p.epilogue == 2;
    const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
    const int64_t o = base + slot;
    // Column groups are spread over grid.y: a narrow matrix (Qwen's 896-row o and down projections fill only
    // ~56 blocks) gets more blocks as the batch grows, instead of one thread walking every group in turn.
    for (int c0 = cblk * NC; c0 < p.n_cols; c0 += n_cblk * NC) {
        const int nc = min(NC, p.n_cols - c0);  // uniform over the block
        float a[NC], b[NC];
#pragma unroll
        for (int c = 0; c < NC; ++c) a[c] = b[c] = 0.f;
        if (o < p.n_out) {  // uniform over a row group (whole warps or aligned lane groups)
            row_partial<NC>(p, o, sub, tpr, c0, nc, a);
            if (swiglu) row_partial<NC>(p, o + p.n_out, sub, tpr, c0, nc, b);
        }
#pragma unroll
        for (int c = 0; c < NC; ++c) {
            if (c < nc) {
                a[c] = lane_group_sum(a[c], width);
                if (swiglu) b[c] = lane_group_sum(b[c], width);
            }
        }
        int64_t out = o;
        bool writer = sub == 0;
        if (tpr > 32) {
            const int wpr = tpr / 32;
            if (lane == 0) {
#pragma unroll
                for (int c = 0; c < NC; ++c) {
                    part[0][c][warp] = a[c];
                    part[1][c][warp] = b[c];
                }
            }
            __syncthreads();
            out = base + threadIdx.x;
            writer = static_cast<int>(threadIdx.x) < per_iter;
            if (writer) {
#pragma unroll
                for (int c = 0; c < NC; ++c) {
                    a[c] = b[c] = 0.f;
                    for (int k = 0; k < wpr; ++k) {
                        a[c] += part[0][c][threadIdx.x * wpr + k];
                        b[c] += part[1][c][threadIdx.x * wpr + k];
                    }
                }
            }
            __syncthreads();
        }
        if (writer && out < p.n_out) {
#pragma unroll
            for (int c = 0; c < NC; ++c) {
                if (c < nc) matvec_epilogue_store(p.y + (c0 + c) * p.y_stride, out, a[c], b[c], p.epilogue);
            }
        }
    }
}

// The block's iterations: rows blk * per_iter .., then + n_blk * per_iter, ... (matvec_rows_at each).
template <int NC>
__device__ __forceinline__ void matvec_rows(const Q8Params& p, int64_t blk, int64_t n_blk, int cblk, int n_cblk,
                                            MatvecPartials<NC>& part) {
    const int per_iter = kThreads / p.tpr;
    for (int64_t base = blk * per_iter; base < p.n_out; base += n_blk * per_iter) {
        matvec_rows_at<NC>(p, base, cblk, n_cblk, part);
    }
}

}  // namespace orcd::cuda::q8rows
