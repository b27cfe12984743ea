#pragma once
// Q6_K: super-blocks of 256 in 16 sub-blocks of 16, y = d * scales[k] * (q - 32), q = 6 bits. In each half of 128
// elements, quarter r (32 elements, l = 0..31) takes its low 4 bits from ql[64*half + l + 32*(r & 1)] (low nibble
// for r < 2, high nibble otherwise) and its top 2 bits from bits 2r..2r+1 of qh[32*half + l].
#include <cstdint>

#include "gguf/types.h"
#include "quant/formats/block_format.h"
#include "quant/formats/k_common.h"
#include "quant/hd.h"
#ifdef __CUDACC__
#include "quant/cuda_bits.cuh"
#endif

namespace orcd::quant {

struct BlockQ6_K {
    uint8_t ql[kQK_K / 2];
    uint8_t qh[kQK_K / 4];
    int8_t scales[kQK_K / 16];
    uint16_t d;
};
static_assert(sizeof(BlockQ6_K) == 210);

struct Q6_K : BlockFormat<BlockQ6_K, gguf::TensorType::Q6_K, kQK_K> {
    // q (0..63) of element l (< 32) of quarter r (0..3) of half h (0..1).
    ORCD_HD static int quant(const Block& b, int h, int r, int l) {
        const uint8_t low_byte = b.ql[64 * h + 32 * (r & 1) + l];
        const int low = r < 2 ? (low_byte & 15) : (low_byte >> 4);
        return low | ((b.qh[32 * h + l] >> (2 * r)) & 3) << 4;
    }

    // Elements k0 .. k0 + 7 (k0 a multiple of 8, one sub-block): y = (d * scale) * (q - 32).
    ORCD_HD static void decode8(const Block& b, int k0, float* out) {
        const int h = k0 / 128, r = (k0 % 128) / 32, l0 = k0 % 32;
        const float ds = mul_rn(half_to_float(b.d), static_cast<float>(b.scales[k0 / 16]));
        ORCD_UNROLL
        for (int i = 0; i < 8; ++i) out[i] = mul_rn(ds, static_cast<float>(quant(b, h, r, l0 + i) - 32));
    }

    // Chunk c (0..7, elements 32c ..) as the CPU dot products' integer chunk: two sub-blocks of 16.
    ORCD_HD static void unpack32(const Block& b, int c, Chunk32& k) {
        const float d = half_to_float(b.d);
        for (int l = 0; l < 32; ++l) k.u[l] = quant(b, c / 4, c % 4, l);
        const float d0 = d * b.scales[2 * c], d1 = d * b.scales[2 * c + 1];
        set_chunk_scales(k, d0, d1, 32 * d0, 32 * d1);
    }

#ifdef __CUDACC__
    // Group g (elements 4g .. 4g + 3) against four values of x (the f32 matvec kernels).
    __device__ static float dot4(const Block& b, int g, float4 x) {
        using namespace cuda_bits;
        const int h = g >> 5, r = (g >> 3) & 3, l4 = g & 7;
        uint32_t ql[1], qh[1];
        load_words(b.ql + 64 * h + 32 * (r & 1) + 4 * l4, ql);
        load_words(b.qh + 32 * h + 4 * l4, qh);
        const uint32_t v = ((ql[0] >> (r < 2 ? 0 : 4)) & 0x0F0F0F0Fu) | ((qh[0] >> (2 * r)) & 0x03030303u) << 4;
        return half_to_float(b.d) * static_cast<float>(b.scales[g >> 2]) * bytes_dot<32>(v, x);
    }

    // Unit u = (half, k) = (u / 4, u % 4) covers l = 8k .. 8k + 7 of each quarter r of that half; scale
    // scales[8 half + 2r + k / 2] per 16 elements.
    // The int8 matvecs decode a unit once (q8_load) and multiply it with each column; the arithmetic of that product
    // is Unit<> in backend/cuda/matvec_q8_units.cuh, shared by the dp4a and the tensor-core kernel.
    static constexpr int kQ8Units = 8;
    struct Q8Unit {
        int v[4][2];  // quarter r's eight values (q - 32) as signed bytes
        int sc[4];    // quarter r's scale
        float d;
        int half, k;
    };
    __device__ static Q8Unit q8_load(const Block& b, int u) {
        using namespace cuda_bits;
        Q8Unit q;
        q.half = u >> 2;
        q.k = u & 3;
        uint32_t l0[2], l1[2], qh[2];
        load_words(b.ql + 64 * q.half + 8 * q.k, l0);
        load_words(b.ql + 64 * q.half + 32 + 8 * q.k, l1);
        load_words(b.qh + 32 * q.half + 8 * q.k, qh);
#pragma unroll
        for (int r = 0; r < 4; ++r) {
            const uint32_t* l = (r & 1) ? l1 : l0;
#pragma unroll
            for (int e = 0; e < 2; ++e) {
                const uint32_t v =
                    ((l[e] >> (r < 2 ? 0 : 4)) & 0x0F0F0F0Fu) | (((qh[e] >> (2 * r)) & 0x03030303u) << 4);
                q.v[r][e] = static_cast<int>(__vsubss4(v, 0x20202020u));
            }
            q.sc[r] = b.scales[8 * q.half + 2 * r + (q.k >> 1)];
        }
        q.d = half_to_float(b.d);
        return q;
    }
#endif
};

}  // namespace orcd::quant
