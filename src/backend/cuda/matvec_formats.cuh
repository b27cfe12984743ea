#pragma once
// The block formats of the matvec kernels (matvec.cu: staged tiles; matvec_fused.cu: direct loads with fused
// prologue/epilogue): for each GGUF type, the dot product of one group of four consecutive elements of a block with
// four values of x, decoded in registers. Device code only; included by .cu files.
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <cstdint>

#include "gguf/quant_blocks.h"

namespace orcd::cuda::formats {

using namespace orcd::gguf;

__device__ __forceinline__ float h2f(uint16_t bits) { return __half2float(__ushort_as_half(bits)); }
__device__ __forceinline__ float bf2f(uint16_t bits) { return __uint_as_float(static_cast<uint32_t>(bits) << 16); }

// 2^23 + v as a float (v a byte placed in the mantissa), exact; subtract kMagic (+ offset) to get v (- offset).
constexpr float kMagic = 8388608.0f;

__device__ __forceinline__ float warp_sum(float v) {
#pragma unroll
    for (int offset = 16; offset > 0; offset >>= 1) v += __shfl_xor_sync(0xffffffffu, v, offset);
    return v;
}

__device__ __forceinline__ float4 ld4(const float* x) { return *reinterpret_cast<const float4*>(x); }

// Reads N little-endian 32-bit words starting at a 2-byte aligned address (block fields are only 2-byte aligned):
// aligned word loads joined by funnel shifts, instead of 4N byte loads. Reads no byte past p + 4N.
template <int N>
__device__ __forceinline__ void load_words(const uint8_t* p, uint32_t (&w)[N]) {
    const uintptr_t a = reinterpret_cast<uintptr_t>(p);
    const uint32_t* base = reinterpret_cast<const uint32_t*>(a & ~uintptr_t{3});
    if ((a & 3) == 0) {
#pragma unroll
        for (int k = 0; k < N; ++k) w[k] = base[k];
    } else {
        uint32_t prev = base[0];
#pragma unroll
        for (int k = 0; k < N; ++k) {
            const uint32_t next = base[k + 1];
            w[k] = __funnelshift_r(prev, next, 16);
            prev = next;
        }
    }
}

// Byte e of w as the float 2^23 + byte, in one byte permute: bytes (w[e], 0, 0, 0x4B).
template <int e>
__device__ __forceinline__ float byte_magic(uint32_t w) {
    return __uint_as_float(__byte_perm(w, 0x4Bu, 0x4550u | e));
}

// sum_e (byte e of v - offset) * x[e] for the 4 bytes of v.
template <int kOffset>
__device__ __forceinline__ float bytes_dot(uint32_t v, float4 xv) {
    constexpr float c = kMagic + kOffset;
    float s = (byte_magic<0>(v) - c) * xv.x;
    s += (byte_magic<1>(v) - c) * xv.y;
    s += (byte_magic<2>(v) - c) * xv.z;
    s += (byte_magic<3>(v) - c) * xv.w;
    return s;
}

__device__ __forceinline__ float sum4(float4 v) { return (v.x + v.y) + (v.z + v.w); }

// Bits 0..3 of `bits` moved to bit 0 of bytes 0..3 (the four terms of the product land on distinct bit positions,
// so there are no carries).
__device__ __forceinline__ uint32_t spread4(uint32_t bits) { return ((bits & 15u) * 0x00204081u) & 0x01010101u; }

// Each format: Block, elements per block, and the dot product of group g (elements 4g .. 4g+3 of the block) with
// those four elements of x. A lane takes one group at a time and consecutive lanes take consecutive groups, so each
// 16-byte load of x by a warp covers 512 contiguous bytes (the first version gave each lane a 32-element item: a
// warp's x loads then touched 32 cache lines each, and L1 wavefronts, not DRAM, set the speed), and the 4 weight
// bytes of a group are one 32-bit word.
struct Q8_0 {
    using Block = BlockQ8_0;
    static constexpr int kBlockElems = 32;
    __device__ static float dot(const Block& b, int g, float4 x) {
        uint32_t w[1];
        load_words(reinterpret_cast<const uint8_t*>(b.qs) + 4 * g, w);
        return h2f(b.d) * bytes_dot<128>(w[0] ^ 0x80808080u, x);  // int8 + 128 as unsigned bytes
    }
};

// The 32-element formats: element j < 16 is the low nibble of qs[j], element j + 16 its high nibble (plus a fifth
// bit, bit j of qh, for Q5). kOffset is subtracted from q; kMin says y = d*q + m instead of y = d*q.
template <typename B, int kOffset, bool kFive, bool kMin>
struct Q32 {
    using Block = B;
    static constexpr int kBlockElems = 32;
    __device__ static float dot(const Block& b, int g, float4 x) {
        uint32_t w[1];
        load_words(b.qs + 4 * (g & 3), w);
        uint32_t v = (w[0] >> (4 * (g >> 2))) & 0x0F0F0F0Fu;
        if constexpr (kFive) {
            uint32_t qh[1];
            load_words(b.qh, qh);
            v |= spread4(qh[0] >> (4 * g)) << 4;
        }
        const float s = bytes_dot<kOffset>(v, x);
        if constexpr (kMin) return h2f(b.d) * s + h2f(b.m) * sum4(x);
        return h2f(b.d) * s;
    }
};
using Q4_0 = Q32<BlockQ4_0, 8, false, false>;
using Q4_1 = Q32<BlockQ4_1, 0, false, true>;
using Q5_0 = Q32<BlockQ5_0, 16, true, false>;
using Q5_1 = Q32<BlockQ5_1, 0, true, true>;

// Q4_K / Q5_K: sub-block sb = g / 8 of 32 elements; y = d*sc*q - dmin*m. Chunk c = sb / 2 of 64 elements keeps its
// low sub-block in the low nibbles of qs[32c ..], the high one in the high nibbles; Q5_K's fifth bit of element l of
// sub-block sb is bit sb of qh[l].
template <typename B, bool kFive>
struct K4 {
    using Block = B;
    static constexpr int kBlockElems = 256;
    __device__ static float dot(const Block& b, int g, float4 x) {
        const int sb = g >> 3, l4 = g & 7;
        const ScaleMin sm = k4_scale_min(b.scales, sb);
        uint32_t w[1];
        load_words(b.qs + 32 * (sb >> 1) + 4 * l4, w);
        uint32_t v = (w[0] >> (4 * (sb & 1))) & 0x0F0F0F0Fu;
        if constexpr (kFive) {
            uint32_t h[1];
            load_words(b.qh + 4 * l4, h);
            v |= ((h[0] >> sb) & 0x01010101u) << 4;
        }
        return h2f(b.d) * sm.scale * bytes_dot<0>(v, x) - h2f(b.dmin) * sm.min * sum4(x);
    }
};
using Q4_K = K4<BlockQ4_K, false>;
using Q5_K = K4<BlockQ5_K, true>;

// Q6_K: quarter r of half h (32 elements, l < 32) takes its low 4 bits from ql[64h + 32(r & 1) + l] (low nibble for
// r < 2), its top 2 bits from bits 2r.. of qh[32h + l]; scales[e / 16] per 16 elements.
struct Q6_K {
    using Block = BlockQ6_K;
    static constexpr int kBlockElems = 256;
    __device__ static float dot(const Block& b, int g, float4 x) {
        const int h = g >> 5, r = (g >> 3) & 3, l4 = g & 7;
        uint32_t ql[1], qh[1];
        load_words(b.ql + 64 * h + 32 * (r & 1) + 4 * l4, ql);
        load_words(b.qh + 32 * h + 4 * l4, qh);
        const uint32_t v = ((ql[0] >> (r < 2 ? 0 : 4)) & 0x0F0F0F0Fu) | ((qh[0] >> (2 * r)) & 0x03030303u) << 4;
        return h2f(b.d) * static_cast<float>(b.scales[g >> 2]) * bytes_dot<32>(v, x);
    }
};

// Sum over groups [begin, n_groups) of one row (blocks: the row's first block), striding by `stride`.
template <typename T>
__device__ __forceinline__ float row_partial(const typename T::Block* blocks, const float* x, int64_t begin,
                                             int64_t n_groups, int64_t stride) {
    constexpr int kGroups = T::kBlockElems / 4;
    float acc = 0.0f;
#pragma unroll 4
    for (int64_t i = begin; i < n_groups; i += stride) {
        acc += T::dot(blocks[i / kGroups], static_cast<int>(i % kGroups), ld4(x + 4 * i));
    }
    return acc;
}

// Plain float types as "blocks" of four elements (rows are only 2- or 4-byte aligned in general, so element loads).
template <typename E, int kKind>  // kKind 0: f32, 1: f16, 2: bf16
struct Plain {
    struct Block {
        E v[4];
    };
    static constexpr int kBlockElems = 4;
    __device__ static float elem(E e) {
        if constexpr (kKind == 0) return e;
        else if constexpr (kKind == 1) return h2f(e);
        else return bf2f(e);
    }
    __device__ static float dot(const Block& b, int, float4 x) { return dot_acc(b, x, 0.0f); }
    // acc + the four products, added one at a time (the order of the plain matvec kernel, so that F32 models give
    // the same bits through either kernel).
    __device__ static float dot_acc(const Block& b, float4 x, float acc) {
        acc += elem(b.v[0]) * x.x;
        acc += elem(b.v[1]) * x.y;
        acc += elem(b.v[2]) * x.z;
        acc += elem(b.v[3]) * x.w;
        return acc;
    }
};
using F32 = Plain<float, 0>;
using F16 = Plain<uint16_t, 1>;
using BF16 = Plain<uint16_t, 2>;

}  // namespace orcd::cuda::formats
