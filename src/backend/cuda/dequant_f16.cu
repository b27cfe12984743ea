// Weight dequantization to f16 (the tensor-core GEMM operand of the prefill path and of `--weights f16`), and the
// batched embedding lookup. Each decoder evaluates the CPU reference's expression (gguf/quant.cpp) in the same order,
// with products pinned by __fmul_rn so nvcc cannot contract them into an fma: the f32 value equals dequantize_row's
// exactly, and the f16 is that value rounded to nearest. (The decoders repeat those of embed.cu, which keeps its own
// copy in an anonymous namespace; a change of either must keep both equal to the CPU reference, which the gpu tests
// check.)
//
// A quantized matrix is a flat array of blocks (row length is a multiple of the block size), so element e of the
// matrix is element e % B of block e / B. A thread decodes 8 consecutive elements (one sub-block scale/min at most)
// and writes them with one 16-byte store.
#include <cuda_fp16.h>

#include "backend/cuda/prefill_kernels.h"
#include "gguf/quant_blocks.h"

namespace orcd::cuda::detail {

namespace {

using namespace orcd::gguf;

__device__ __forceinline__ float h2f(uint16_t bits) { return __half2float(__ushort_as_half(bits)); }

// decode8(block, k0, out): elements k0 .. k0 + 7 of a block (k0 a multiple of 8).
__device__ __forceinline__ int nib32(const uint8_t* qs, int k) { return k < 16 ? (qs[k] & 15) : (qs[k - 16] >> 4); }

__device__ void decode8(const BlockQ4_0& b, int k0, float* out) {
    const float d = h2f(b.d);
#pragma unroll
    for (int i = 0; i < 8; ++i) out[i] = __fmul_rn(d, static_cast<float>(nib32(b.qs, k0 + i) - 8));
}
__device__ void decode8(const BlockQ4_1& b, int k0, float* out) {
    const float d = h2f(b.d), m = h2f(b.m);
#pragma unroll
    for (int i = 0; i < 8; ++i) out[i] = __fadd_rn(__fmul_rn(d, static_cast<float>(nib32(b.qs, k0 + i))), m);
}
__device__ __forceinline__ int q5v(const uint8_t* qs, uint32_t hb, int k) {
    return nib32(qs, k) | static_cast<int>((hb >> k) & 1u) << 4;
}
__device__ void decode8(const BlockQ5_0& b, int k0, float* out) {
    const float d = h2f(b.d);
    const uint32_t hb = q5_high_bits(b.qh);
#pragma unroll
    for (int i = 0; i < 8; ++i) out[i] = __fmul_rn(d, static_cast<float>(q5v(b.qs, hb, k0 + i) - 16));
}
__device__ void decode8(const BlockQ5_1& b, int k0, float* out) {
    const float d = h2f(b.d), m = h2f(b.m);
    const uint32_t hb = q5_high_bits(b.qh);
#pragma unroll
    for (int i = 0; i < 8; ++i) out[i] = __fadd_rn(__fmul_rn(d, static_cast<float>(q5v(b.qs, hb, k0 + i))), m);
}
__device__ void decode8(const BlockQ8_0& b, int k0, float* out) {
    const float d = h2f(b.d);
#pragma unroll
    for (int i = 0; i < 8; ++i) out[i] = __fmul_rn(d, static_cast<float>(b.qs[k0 + i]));
}
// Q4_K / Q5_K: y = (d * sc) * q - (dmin * m) for sub-block k / 32 (the same for all 8 elements).
__device__ void decode8(const BlockQ4_K& b, int k0, float* out) {
    const ScaleMin sm = k4_scale_min(b.scales, k0 / 32);
    const float ds = __fmul_rn(h2f(b.d), static_cast<float>(sm.scale));
    const float dm = __fmul_rn(h2f(b.dmin), static_cast<float>(sm.min));
    const uint8_t* q = b.qs + 32 * (k0 / 64) + k0 % 32;
    const bool hi = (k0 / 32) & 1;
#pragma unroll
    for (int i = 0; i < 8; ++i) out[i] = __fsub_rn(__fmul_rn(ds, static_cast<float>(hi ? q[i] >> 4 : q[i] & 15)), dm);
}
__device__ void decode8(const BlockQ5_K& b, int k0, float* out) {
    const int sub = k0 / 32;
    const ScaleMin sm = k4_scale_min(b.scales, sub);
    const float ds = __fmul_rn(h2f(b.d), static_cast<float>(sm.scale));
    const float dm = __fmul_rn(h2f(b.dmin), static_cast<float>(sm.min));
    const uint8_t* q = b.qs + 32 * (k0 / 64) + k0 % 32;
    const uint8_t* qh = b.qh + k0 % 32;
#pragma unroll
    for (int i = 0; i < 8; ++i) {
        const int v = ((sub & 1) ? q[i] >> 4 : q[i] & 15) | ((qh[i] >> sub) & 1) << 4;
        out[i] = __fsub_rn(__fmul_rn(ds, static_cast<float>(v)), dm);
    }
}
__device__ void decode8(const BlockQ6_K& b, int k0, float* out) {
    const int half = k0 / 128, r = (k0 % 128) / 32, l0 = k0 % 32;
    const float ds = __fmul_rn(h2f(b.d), static_cast<float>(b.scales[k0 / 16]));  // 8 elements share k0 / 16
    const uint8_t* ql = b.ql + 64 * half + 32 * (r & 1) + l0;
    const uint8_t* qh = b.qh + 32 * half + l0;
#pragma unroll
    for (int i = 0; i < 8; ++i) {
        const int low = r < 2 ? (ql[i] & 15) : (ql[i] >> 4);
        const int high = (qh[i] >> (2 * r)) & 3;
        out[i] = __fmul_rn(ds, static_cast<float>((low | high << 4) - 32));
    }
}

__device__ __forceinline__ void store8(uint16_t* dst, const float* v) {
    uint4 packed;
    __half2* h = reinterpret_cast<__half2*>(&packed);
#pragma unroll
    for (int i = 0; i < 4; ++i) h[i] = __floats2half2_rn(v[2 * i], v[2 * i + 1]);
    *reinterpret_cast<uint4*>(dst) = packed;
}

template <typename Block, int kBlockElems>
__global__ void dequant_blocks(const Block* __restrict__ src, int64_t n_groups, uint16_t* __restrict__ dst) {
    const int64_t g = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;  // group of 8 elements
    if (g >= n_groups) return;
    constexpr int kGroups = kBlockElems / 8;
    float v[8];
    decode8(src[g / kGroups], static_cast<int>(g % kGroups) * 8, v);
    store8(dst + 8 * g, v);
}

template <int kKind>  // 0: f32, 1: f16, 2: bf16
__device__ __forceinline__ float plain(const void* src, int64_t i) {
    if constexpr (kKind == 0) return static_cast<const float*>(src)[i];
    else if constexpr (kKind == 1) return h2f(static_cast<const uint16_t*>(src)[i]);
    else return __uint_as_float(static_cast<uint32_t>(static_cast<const uint16_t*>(src)[i]) << 16);
}

template <int kKind>
__global__ void dequant_plain(const void* __restrict__ src, int64_t n, uint16_t* __restrict__ dst) {
    const int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
    if (i < n) dst[i] = __half_as_ushort(__float2half_rn(plain<kKind>(src, i)));
}

// Embedding rows: grid (groups of a row, token); a thread decodes 8 elements of one row.
template <typename Block, int kBlockElems>
__global__ void embed_rows_blocks(const Block* __restrict__ table, int64_t cols, const int32_t* __restrict__ tokens,
                                  float* __restrict__ out) {
    const int64_t g = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
    if (8 * g >= cols) return;
    const int64_t t = blockIdx.y;
    constexpr int kGroups = kBlockElems / 8;
    const Block* row = table + static_cast<int64_t>(tokens[t]) * (cols / kBlockElems);
    float v[8];
    decode8(row[g / kGroups], static_cast<int>(g % kGroups) * 8, v);
    float* o = out + t * cols + 8 * g;
#pragma unroll
    for (int i = 0; i < 8; ++i) o[i] = v[i];
}

template <int kKind>
__global__ void embed_rows_plain(const void* __restrict__ table, int64_t cols, const int32_t* __restrict__ tokens,
                                 float* __restrict__ out) {
    const int64_t j = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
    if (j >= cols) return;
    const int64_t t = blockIdx.y;
    out[t * cols + j] = plain<kKind>(table, static_cast<int64_t>(tokens[t]) * cols + j);
}

constexpr int kThreads = 256;
unsigned grid_for(int64_t n) { return static_cast<unsigned>((n + kThreads - 1) / kThreads); }

template <typename Block, int kBlockElems>
void dq_blocks(const void* src, int64_t n, uint16_t* dst, cudaStream_t s) {
    const int64_t groups = n / 8;
    dequant_blocks<Block, kBlockElems><<<grid_for(groups), kThreads, 0, s>>>(static_cast<const Block*>(src), groups,
                                                                             dst);
}

template <typename Block, int kBlockElems>
void emb_blocks(const void* table, int64_t cols, const int32_t* tokens, int64_t n_tokens, float* out,
                cudaStream_t s) {
    const dim3 grid(grid_for(cols / 8), static_cast<unsigned>(n_tokens));
    embed_rows_blocks<Block, kBlockElems><<<grid, kThreads, 0, s>>>(static_cast<const Block*>(table), cols, tokens,
                                                                    out);
}

}  // namespace

bool launch_dequantize_f16(TensorType type, const void* src, int64_t rows, int64_t cols, uint16_t* dst,
                           cudaStream_t s) {
    const int64_t n = rows * cols;
    switch (type) {
        case TensorType::F32: dequant_plain<0><<<grid_for(n), kThreads, 0, s>>>(src, n, dst); break;
        case TensorType::F16: dequant_plain<1><<<grid_for(n), kThreads, 0, s>>>(src, n, dst); break;
        case TensorType::BF16: dequant_plain<2><<<grid_for(n), kThreads, 0, s>>>(src, n, dst); break;
        case TensorType::Q4_0: dq_blocks<BlockQ4_0, 32>(src, n, dst, s); break;
        case TensorType::Q4_1: dq_blocks<BlockQ4_1, 32>(src, n, dst, s); break;
        case TensorType::Q5_0: dq_blocks<BlockQ5_0, 32>(src, n, dst, s); break;
        case TensorType::Q5_1: dq_blocks<BlockQ5_1, 32>(src, n, dst, s); break;
        case TensorType::Q8_0: dq_blocks<BlockQ8_0, 32>(src, n, dst, s); break;
        case TensorType::Q4_K: dq_blocks<BlockQ4_K, 256>(src, n, dst, s); break;
        case TensorType::Q5_K: dq_blocks<BlockQ5_K, 256>(src, n, dst, s); break;
        case TensorType::Q6_K: dq_blocks<BlockQ6_K, 256>(src, n, dst, s); break;
        default: return false;
    }
    return true;
}

bool launch_embedding_rows(TensorType type, const void* table, int64_t cols, const int32_t* tokens,
                           int64_t n_tokens, float* out, cudaStream_t s) {
    const dim3 plain_grid(grid_for(cols), static_cast<unsigned>(n_tokens));
    switch (type) {
        case TensorType::F32: embed_rows_plain<0><<<plain_grid, kThreads, 0, s>>>(table, cols, tokens, out); break;
        case TensorType::F16: embed_rows_plain<1><<<plain_grid, kThreads, 0, s>>>(table, cols, tokens, out); break;
        case TensorType::BF16: embed_rows_plain<2><<<plain_grid, kThreads, 0, s>>>(table, cols, tokens, out); break;
        case TensorType::Q4_0: emb_blocks<BlockQ4_0, 32>(table, cols, tokens, n_tokens, out, s); break;
        case TensorType::Q4_1: emb_blocks<BlockQ4_1, 32>(table, cols, tokens, n_tokens, out, s); break;
        case TensorType::Q5_0: emb_blocks<BlockQ5_0, 32>(table, cols, tokens, n_tokens, out, s); break;
        case TensorType::Q5_1: emb_blocks<BlockQ5_1, 32>(table, cols, tokens, n_tokens, out, s); break;
        case TensorType::Q8_0: emb_blocks<BlockQ8_0, 32>(table, cols, tokens, n_tokens, out, s); break;
        case TensorType::Q4_K: emb_blocks<BlockQ4_K, 256>(table, cols, tokens, n_tokens, out, s); break;
        case TensorType::Q5_K: emb_blocks<BlockQ5_K, 256>(table, cols, tokens, n_tokens, out, s); break;
        case TensorType::Q6_K: emb_blocks<BlockQ6_K, 256>(table, cols, tokens, n_tokens, out, s); break;
        default: return false;
    }
    return true;
}

}  // namespace orcd::cuda::detail
