// Int8-activation decode matvec (matvec_q8.h): quantize_q8 and the dp4a kernels.
//
// Work split: a row's cols / 32 "units" of 32 weights are spread over tpr threads (8 .. 256; several rows per warp
// when rows are short, several warps per row when rows are few and long). For the 32-element block types a unit is
// one block; for the K-quants a unit is the 32 weights that one 16-byte (Q4_K/Q5_K) or 3 x 8-byte (Q6_K) slice of
// the packed bits encodes, so a thread's weight loads are wide and consecutive threads read consecutive bytes of a
// super-block. Each unit's integer dot products (__dp4a, exact) are scaled once by the weight's and the
// activation's block scales. Partial sums are combined in a fixed order (shuffle tree, then warps in order).
#include "backend/cuda/matvec_q8_kernels.h"

#include <algorithm>
#include <cstdlib>

#include "backend/cuda/device_query.h"
#include "backend/cuda/matvec_common.cuh"
#include "backend/cuda/matvec_formats.cuh"
#include "backend/cuda/norm.cuh"

namespace orcd::cuda {

namespace {

using namespace orcd::cuda::formats;
using gguf::TensorType;

constexpr int kThreads = 256;
constexpr int kWarps = kThreads / 32;
constexpr int kOnes = 0x01010101;

// ---- quantize ------------------------------------------------------------------------------------------------------

// Every block recomputes the norm's sum of squares (x is a few KB, read from L2) so that the quantization of the
// 32-blocks spreads over many blocks without a second launch. Warp w of block k quantizes 32-block 8k + w.
__global__ void __launch_bounds__(kThreads) quantize_q8_kernel(const float* x, const float* norm, float eps, int cols,
                                                               int8_t* q, float* d) {
    __shared__ double red[kThreads];
    float scale = 1.0f;
    if (norm) scale = block_rms_scale<kThreads>(x, cols, eps, red);  // bit-identical to rms_norm_kernel's
    const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
    const int b = blockIdx.x * kWarps + warp;
    if (b * 32 >= cols) return;
    const int i = b * 32 + lane;
    const float v = norm ? __fmul_rn(__fmul_rn(x[i], scale), norm[i]) : x[i];
    float amax = fabsf(v);
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) amax = fmaxf(amax, __shfl_xor_sync(0xffffffffu, amax, o));
    // As quantize_activation_scalar: d = amax / 127, q = nearbyint(x * (127 / amax)) (IEEE division and product).
    const float id = amax > 0.f ? __fdiv_rn(127.f, amax) : 0.f;
    q[i] = static_cast<int8_t>(__float2int_rn(__fmul_rn(v, id)));
    if (lane == 0) d[b] = __fdiv_rn(amax, 127.f);
}

// ---- one unit of 32 weights per type -------------------------------------------------------------------------------
// unit(block, u, xq, xd): block = the row's block holding unit u (u < kUnits), xq = the activation's int8 values from
// the block's first element, xd = its 32-block scales from the block's first 32-block.

__device__ __forceinline__ int xi(const int8_t* xq, int byte_off) {
    return *reinterpret_cast<const int*>(xq + byte_off);
}

struct U_Q8_0 {
    using Block = BlockQ8_0;
    static constexpr int kUnits = 1;
    __device__ static float unit(const Block& b, int, const int8_t* xq, const float* xd) {
        uint32_t w[8];
        load_words(reinterpret_cast<const uint8_t*>(b.qs), w);
        int s = 0;
#pragma unroll
        for (int k = 0; k < 8; ++k) s = __dp4a(static_cast<int>(w[k]), xi(xq, 4 * k), s);
        return h2f(b.d) * xd[0] * static_cast<float>(s);
    }
};

// The 32-element nibble types: qs[16] holds elements l (low nibble) and l + 16 (high nibble); Five adds bit 4 from
// qh (bit l of the 32-bit word); Min: w = d q + m, else w = d (q - offset).
template <typename B, bool kFive, bool kMin>
struct U_Nibble {
    using Block = B;
    static constexpr int kUnits = 1;
    __device__ static float unit(const Block& b, int, const int8_t* xq, const float* xd) {
        uint32_t w[4];
        load_words(b.qs, w);
        uint32_t h[1] = {0};
        if constexpr (kFive) load_words(b.qh, h);
        int s = 0, sx = 0;
#pragma unroll
        for (int k = 0; k < 4; ++k) {
            uint32_t lo = w[k] & 0x0F0F0F0Fu, hi = (w[k] >> 4) & 0x0F0F0F0Fu;
            if constexpr (kFive) {
                lo |= spread4(h[0] >> (4 * k)) << 4;
                hi |= spread4(h[0] >> (16 + 4 * k)) << 4;
            }
            const int a = xi(xq, 4 * k), c = xi(xq, 16 + 4 * k);
            s = __dp4a(static_cast<int>(lo), a, s);
            s = __dp4a(static_cast<int>(hi), c, s);
            sx = __dp4a(kOnes, a, sx);
            sx = __dp4a(kOnes, c, sx);
        }
        if constexpr (kMin) {
            return xd[0] * (h2f(b.d) * static_cast<float>(s) + h2f(b.m) * static_cast<float>(sx));
        } else {
            constexpr int kOffset = kFive ? 16 : 8;
            return h2f(b.d) * xd[0] * static_cast<float>(s - kOffset * sx);
        }
    }
};
using U_Q4_0 = U_Nibble<BlockQ4_0, false, false>;
using U_Q4_1 = U_Nibble<BlockQ4_1, false, true>;
using U_Q5_0 = U_Nibble<BlockQ5_0, true, false>;
using U_Q5_1 = U_Nibble<BlockQ5_1, true, true>;

// Q4_K / Q5_K: unit u = (j, h) = (u / 2, u % 2) is the 16 bytes qs[32j + 16h ..]: their low nibbles are elements
// 64j + 16h + 0..15 (sub-block 2j), their high nibbles elements 64j + 32 + 16h + 0..15 (sub-block 2j + 1); Q5_K's
// fifth bits are bits 2j and 2j + 1 of qh[16h + 0..15].
template <typename B, bool kFive>
struct U_K4 {
    using Block = B;
    static constexpr int kUnits = 8;
    __device__ static float unit(const Block& b, int u, const int8_t* xq, const float* xd) {
        const int j = u >> 1, h = u & 1;
        uint32_t w[4];
        load_words(b.qs + 32 * j + 16 * h, w);
        uint32_t qh[4];
        if constexpr (kFive) load_words(b.qh + 16 * h, qh);
        const int8_t* xa = xq + 64 * j + 16 * h;
        const int8_t* xb = xa + 32;
        int s0 = 0, s1 = 0, x0 = 0, x1 = 0;
#pragma unroll
        for (int k = 0; k < 4; ++k) {
            uint32_t lo = w[k] & 0x0F0F0F0Fu, hi = (w[k] >> 4) & 0x0F0F0F0Fu;
            if constexpr (kFive) {
                lo |= ((qh[k] >> (2 * j)) & 0x01010101u) << 4;
                hi |= ((qh[k] >> (2 * j + 1)) & 0x01010101u) << 4;
            }
            const int a = xi(xa, 4 * k), c = xi(xb, 4 * k);
            s0 = __dp4a(static_cast<int>(lo), a, s0);
            s1 = __dp4a(static_cast<int>(hi), c, s1);
            x0 = __dp4a(kOnes, a, x0);
            x1 = __dp4a(kOnes, c, x1);
        }
        const ScaleMin m0 = k4_scale_min(b.scales, 2 * j), m1 = k4_scale_min(b.scales, 2 * j + 1);
        const float d0 = xd[2 * j], d1 = xd[2 * j + 1];
        const float sc = d0 * static_cast<float>(m0.scale * s0) + d1 * static_cast<float>(m1.scale * s1);
        const float mn = d0 * static_cast<float>(m0.min * x0) + d1 * static_cast<float>(m1.min * x1);
        return h2f(b.d) * sc - h2f(b.dmin) * mn;
    }
};
using U_Q4_K = U_K4<BlockQ4_K, false>;
using U_Q5_K = U_K4<BlockQ5_K, true>;

// Q6_K: unit u = (half, k) = (u / 4, u % 4) covers l = 8k .. 8k + 7 of each quarter r of that half: element
// 128 half + 32 r + l takes its low 4 bits from ql[64 half + 32 (r & 1) + l] (low nibble for r < 2) and its top two
// from bits 2r of qh[32 half + l]; value - 32; scale scales[8 half + 2r + k / 2] per 16 elements.
struct U_Q6_K {
    using Block = BlockQ6_K;
    static constexpr int kUnits = 8;
    __device__ static float unit(const Block& b, int u, const int8_t* xq, const float* xd) {
        const int half = u >> 2, k = u & 3;
        uint32_t l0[2], l1[2], qh[2];
        load_words(b.ql + 64 * half + 8 * k, l0);
        load_words(b.ql + 64 * half + 32 + 8 * k, l1);
        load_words(b.qh + 32 * half + 8 * k, qh);
        float acc = 0.f;
#pragma unroll
        for (int r = 0; r < 4; ++r) {
            const uint32_t* l = (r & 1) ? l1 : l0;
            const int8_t* x = xq + 128 * half + 32 * r + 8 * k;
            int s = 0;
#pragma unroll
            for (int e = 0; e < 2; ++e) {
                const uint32_t v =
                    ((l[e] >> (r < 2 ? 0 : 4)) & 0x0F0F0F0Fu) | (((qh[e] >> (2 * r)) & 0x03030303u) << 4);
                s = __dp4a(static_cast<int>(__vsubss4(v, 0x20202020u)), xi(x, 4 * e), s);
            }
            acc += xd[4 * half + r] * static_cast<float>(b.scales[8 * half + 2 * r + (k >> 1)] * s);
        }
        return h2f(b.d) * acc;
    }
};

// ---- the matvec kernel ---------------------------------------------------------------------------------------------

struct Params {
    const int8_t* xq;
    const float* xd;
    int cols;
    int n_src;
    MatvecSource src[3];
    int epilogue;  // MatvecEpilogue
    float* y;
    int64_t n_out;
    int tpr;  // threads per output row: 8 .. 256, a power of two
};

// This thread's share of one row: units first, first + stride, ...
template <typename T>
__device__ __forceinline__ float row_units(const uint8_t* row, const Params& p, int first, int stride) {
    const auto* blocks = reinterpret_cast<const typename T::Block*>(row);
    const int n_units = p.cols / 32;
    float acc = 0.f;
#pragma unroll 2
    for (int i = first; i < n_units; i += stride) {
        const int blk = i / T::kUnits, u = i % T::kUnits;
        constexpr int kElems = T::kUnits * 32;
        acc += T::unit(blocks[blk], u, p.xq + kElems * blk, p.xd + T::kUnits * blk);
    }
    return acc;
}

__device__ float row_partial(const Params& p, int64_t r, int first, int stride) {
    const MatvecSource s = locate_source(p, r);
    const uint8_t* row = s.w + r * s.row_bytes;
    switch (s.type) {
        case TensorType::Q4_0: return row_units<U_Q4_0>(row, p, first, stride);
        case TensorType::Q4_1: return row_units<U_Q4_1>(row, p, first, stride);
        case TensorType::Q5_0: return row_units<U_Q5_0>(row, p, first, stride);
        case TensorType::Q5_1: return row_units<U_Q5_1>(row, p, first, stride);
        case TensorType::Q8_0: return row_units<U_Q8_0>(row, p, first, stride);
        case TensorType::Q4_K: return row_units<U_Q4_K>(row, p, first, stride);
        case TensorType::Q5_K: return row_units<U_Q5_K>(row, p, first, stride);
        case TensorType::Q6_K: return row_units<U_Q6_K>(row, p, first, stride);
        default: return __int_as_float(0x7fc00000);  // unreachable: the host checks the types
    }
}

// Sum over the tpr (<= 32) consecutive lanes of a row group, fixed tree.
__device__ __forceinline__ float group_sum(float v, int width) {
    for (int o = width / 2; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    return v;
}

__global__ void __launch_bounds__(kThreads) q8_matvec_kernel(const Params p) {
    __shared__ float part[2][kWarps];
    const int tpr = p.tpr;
    const int per_iter = kThreads / tpr;  // output rows per block per iteration
    const int slot = threadIdx.x / tpr, sub = threadIdx.x % tpr;
    const int width = min(tpr, 32);
    const bool swiglu = p.epilogue == 2;
    const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
    for (int64_t base = static_cast<int64_t>(blockIdx.x) * per_iter; base < p.n_out;
         base += static_cast<int64_t>(gridDim.x) * per_iter) {
        const int64_t o = base + slot;
        float a = 0.f, b = 0.f;
        if (o < p.n_out) {  // uniform over a row group (whole warps or aligned lane groups)
            a = row_partial(p, o, sub, tpr);
            if (swiglu) b = row_partial(p, o + p.n_out, sub, tpr);
        }
        a = group_sum(a, width);
        if (swiglu) b = group_sum(b, width);
        int64_t out = o;
        bool writer = sub == 0;
        if (tpr > 32) {
            const int wpr = tpr / 32;
            if (lane == 0) {
                part[0][warp] = a;
                part[1][warp] = b;
            }
            __syncthreads();
            out = base + threadIdx.x;
            writer = static_cast<int>(threadIdx.x) < per_iter;
            if (writer) {
                a = b = 0.f;
                for (int k = 0; k < wpr; ++k) {
                    a += part[0][threadIdx.x * wpr + k];
                    b += part[1][threadIdx.x * wpr + k];
                }
            }
            __syncthreads();
        }
        if (writer && out < p.n_out) {
            matvec_epilogue_store(p.y, out, a, b, p.epilogue);
        }
    }
}

}  // namespace

int64_t q8_block_bytes(TensorType t) {
    switch (t) {
        case TensorType::Q4_0: return sizeof(gguf::BlockQ4_0);
        case TensorType::Q4_1: return sizeof(gguf::BlockQ4_1);
        case TensorType::Q5_0: return sizeof(gguf::BlockQ5_0);
        case TensorType::Q5_1: return sizeof(gguf::BlockQ5_1);
        case TensorType::Q8_0: return sizeof(gguf::BlockQ8_0);
        case TensorType::Q4_K: return sizeof(gguf::BlockQ4_K);
        case TensorType::Q5_K: return sizeof(gguf::BlockQ5_K);
        case TensorType::Q6_K: return sizeof(gguf::BlockQ6_K);
        default: return 0;
    }
}

int q8_threads_per_row(int64_t n_out, int64_t cols) {
    static const int forced = [] {
        const char* env = std::getenv("ORCD_Q8_TPR");
        const int v = env ? std::atoi(env) : 0;
        return v >= 8 && v <= 256 && (v & (v - 1)) == 0 ? v : 0;
    }();
    if (forced) return forced;
    const int64_t units = cols / 32;
    // Measured on the H100 (bench/cuda/NOTES.md, v6): the big matrices run fastest at 4-6 units per thread (Phi-3's
    // 96-unit rows: 16 threads, 1480 GB/s vs 1150 at 32; its 256-unit down rows: 64 threads, 1350 vs 970 at 16);
    // then more threads per row only while the rows are too few to give every SM ~16 warps (Qwen's 896-row down
    // matrices: 64 threads, 6.3 us vs 6.9 at 32), keeping >= 2 units per thread.
    int tpr = 16;
    while (tpr < kThreads && units > 6LL * tpr) tpr *= 2;
    while (tpr < kThreads && n_out * tpr < 16LL * 32 * sm_count() && units >= 2LL * 2 * tpr) tpr *= 2;
    return tpr;
}

void launch_quantize_q8(const float* x, const float* norm, float eps, int64_t cols, int8_t* q, float* d,
                        cudaStream_t s) {
    const int64_t blocks = (cols / 32 + kWarps - 1) / kWarps;
    quantize_q8_kernel<<<static_cast<unsigned>(blocks), kThreads, 0, s>>>(x, norm, eps, static_cast<int>(cols), q, d);
}

void launch_q8_matvec(const Q8Matvec& op, cudaStream_t s) {
    Params p{};
    p.xq = op.x.q;
    p.xd = op.x.d;
    p.cols = static_cast<int>(op.cols);
    p.n_src = op.n_src;
    int64_t rows = 0;
    for (int i = 0; i < op.n_src; ++i) {
        const RowSource& r = op.src[i];
        const int64_t be = r.type == TensorType::Q4_K || r.type == TensorType::Q5_K || r.type == TensorType::Q6_K
                               ? 256 : 32;
        p.src[i] = {r.type, static_cast<const uint8_t*>(r.w), op.cols / be * q8_block_bytes(r.type), r.rows};
        rows += r.rows;
    }
    for (int i = op.n_src; i < 3; ++i) p.src[i] = p.src[op.n_src - 1];
    p.epilogue = static_cast<int>(op.epilogue);
    p.y = op.y;
    p.n_out = op.epilogue == MatvecEpilogue::SwiGLU ? rows / 2 : rows;
    p.tpr = q8_threads_per_row(p.n_out, op.cols);
    const int per_iter = kThreads / p.tpr;
    const int64_t iters = (p.n_out + per_iter - 1) / per_iter;
    // 8 blocks of 256 threads per SM fill it (2048 threads); beyond that blocks loop over rows.
    const int64_t grid = std::min<int64_t>(iters, 8LL * sm_count());
    q8_matvec_kernel<<<static_cast<unsigned>(grid), kThreads, 0, s>>>(p);
}

}  // namespace orcd::cuda
