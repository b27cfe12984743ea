// Token embedding lookup: one row of the (usually quantized) embedding table dequantized to f32, one thread per
// element. Each decoder evaluates the CPU reference's expression (gguf/quant.cpp) in the same order, with the
// products pinned by __fmul_rn so nvcc cannot fuse them into an fma: the row matches dequantize_row exactly. The row
// index is read from device memory, so the lookup can sit inside a captured decode graph.
#include <cuda_fp16.h>

#include "backend/cuda/ops_kernels.h"
#include "gguf/quant_blocks.h"

namespace orcd::cuda::detail {

namespace {

using namespace orcd::gguf;

__device__ __forceinline__ float h2f(uint16_t bits) { return __half2float(__ushort_as_half(bits)); }

// Element k of one block.
__device__ float elem(const BlockQ4_0& b, int k) {
    const int q = k < 16 ? (b.qs[k] & 15) : (b.qs[k - 16] >> 4);
    return __fmul_rn(h2f(b.d), static_cast<float>(q - 8));
}
__device__ float elem(const BlockQ4_1& b, int k) {
    const int q = k < 16 ? (b.qs[k] & 15) : (b.qs[k - 16] >> 4);
    return __fadd_rn(__fmul_rn(h2f(b.d), static_cast<float>(q)), h2f(b.m));
}
__device__ int q5_value(const uint8_t* qs, const uint8_t qh[4], int k) {
    const uint32_t hb = q5_high_bits(qh);
    const int lo = k < 16 ? (qs[k] & 15) : (qs[k - 16] >> 4);
    return lo | static_cast<int>((hb >> k) & 1u) << 4;
}
__device__ float elem(const BlockQ5_0& b, int k) {
    return __fmul_rn(h2f(b.d), static_cast<float>(q5_value(b.qs, b.qh, k) - 16));
}
__device__ float elem(const BlockQ5_1& b, int k) {
    return __fadd_rn(__fmul_rn(h2f(b.d), static_cast<float>(q5_value(b.qs, b.qh, k))), h2f(b.m));
}
__device__ float elem(const BlockQ8_0& b, int k) { return __fmul_rn(h2f(b.d), static_cast<float>(b.qs[k])); }

// Q4_K / Q5_K: y = (d * sc) * q - (dmin * m) for sub-block k / 32.
__device__ float k4_elem(uint16_t d, uint16_t dmin, const uint8_t* scales, int k, int q) {
    const ScaleMin sm = k4_scale_min(scales, k / 32);
    const float ds = __fmul_rn(h2f(d), static_cast<float>(sm.scale));
    const float dm = __fmul_rn(h2f(dmin), static_cast<float>(sm.min));
    return __fsub_rn(__fmul_rn(ds, static_cast<float>(q)), dm);
}
__device__ float elem(const BlockQ4_K& b, int k) {
    const uint8_t byte = b.qs[32 * (k / 64) + k % 32];
    return k4_elem(b.d, b.dmin, b.scales, k, (k / 32) & 1 ? byte >> 4 : byte & 15);
}
__device__ float elem(const BlockQ5_K& b, int k) {
    const int sub = k / 32;
    const uint8_t byte = b.qs[32 * (k / 64) + k % 32];
    const int q = ((sub & 1) ? byte >> 4 : byte & 15) | ((b.qh[k % 32] >> sub) & 1) << 4;
    return k4_elem(b.d, b.dmin, b.scales, k, q);
}
__device__ float elem(const BlockQ6_K& b, int k) {
    const int half = k / 128, r = (k % 128) / 32, l = k % 32;
    const uint8_t low_byte = b.ql[64 * half + 32 * (r & 1) + l];
    const int low = r < 2 ? (low_byte & 15) : (low_byte >> 4);
    const int high = (b.qh[32 * half + l] >> (2 * r)) & 3;
    return __fmul_rn(__fmul_rn(h2f(b.d), static_cast<float>(b.scales[k / 16])),
                     static_cast<float>((low | high << 4) - 32));
}

template <typename Block, int kBlockElems>
__global__ void embed_blocks(const uint8_t* __restrict__ table, int64_t cols, const int32_t* token, float* out) {
    const int64_t j = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
    if (j >= cols) return;
    const auto* row = reinterpret_cast<const Block*>(table + static_cast<int64_t>(*token) *
                                                                 (cols / kBlockElems) * sizeof(Block));
    out[j] = elem(row[j / kBlockElems], static_cast<int>(j % kBlockElems));
}

template <int kKind>  // 0: f32, 1: f16, 2: bf16
__global__ void embed_plain(const void* __restrict__ table, int64_t cols, const int32_t* token, float* out) {
    const int64_t j = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
    if (j >= cols) return;
    const int64_t i = static_cast<int64_t>(*token) * cols + j;
    if constexpr (kKind == 0) {
        out[j] = static_cast<const float*>(table)[i];
    } else if constexpr (kKind == 1) {
        out[j] = h2f(static_cast<const uint16_t*>(table)[i]);
    } else {
        out[j] = __uint_as_float(static_cast<uint32_t>(static_cast<const uint16_t*>(table)[i]) << 16);
    }
}

}  // namespace

bool launch_embedding_row(TensorType type, const void* table, int64_t cols, const int32_t* token, float* out,
                          cudaStream_t s) {
    const unsigned grid = static_cast<unsigned>((cols + 255) / 256);
    const auto* t8 = static_cast<const uint8_t*>(table);
    switch (type) {
        case TensorType::F32: embed_plain<0><<<grid, 256, 0, s>>>(table, cols, token, out); break;
        case TensorType::F16: embed_plain<1><<<grid, 256, 0, s>>>(table, cols, token, out); break;
        case TensorType::BF16: embed_plain<2><<<grid, 256, 0, s>>>(table, cols, token, out); break;
        case TensorType::Q4_0: embed_blocks<BlockQ4_0, 32><<<grid, 256, 0, s>>>(t8, cols, token, out); break;
        case TensorType::Q4_1: embed_blocks<BlockQ4_1, 32><<<grid, 256, 0, s>>>(t8, cols, token, out); break;
        case TensorType::Q5_0: embed_blocks<BlockQ5_0, 32><<<grid, 256, 0, s>>>(t8, cols, token, out); break;
        case TensorType::Q5_1: embed_blocks<BlockQ5_1, 32><<<grid, 256, 0, s>>>(t8, cols, token, out); break;
        case TensorType::Q8_0: embed_blocks<BlockQ8_0, 32><<<grid, 256, 0, s>>>(t8, cols, token, out); break;
        case TensorType::Q4_K: embed_blocks<BlockQ4_K, 256><<<grid, 256, 0, s>>>(t8, cols, token, out); break;
        case TensorType::Q5_K: embed_blocks<BlockQ5_K, 256><<<grid, 256, 0, s>>>(t8, cols, token, out); break;
        case TensorType::Q6_K: embed_blocks<BlockQ6_K, 256><<<grid, 256, 0, s>>>(t8, cols, token, out); break;
        default: return false;
    }
    return true;
}

}  // namespace orcd::cuda::detail
