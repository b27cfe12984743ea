#pragma once
// The family of Q4_K and Q5_K: super-blocks of 256 in 8 sub-blocks of 32, y = d * sc * q - dmin * m with 6-bit
// (sc, m) pairs packed into 12 bytes. In each chunk of 64 elements the first 32 are the low nibbles of
// qs[32*chunk + l], the next 32 the high nibbles; Q5_K's fifth bit of element 64c + l is bit 2c of qh[l], of element
// 64c + 32 + l bit 2c + 1 (bit `sub-block` of qh[l]). Each member's header holds its layout; every decoder is here.
#include <cstdint>

#include "gguf/types.h"
#include "quant/formats/k_common.h"
#include "quant/hd.h"
#ifdef __CUDACC__
#include "quant/cuda_bits.cuh"
#endif

namespace orcd::quant {

struct ScaleMin {
    uint8_t scale;
    uint8_t min;
};

// Eight 6-bit scales and eight 6-bit mins in 12 bytes: sub-blocks 0..3 keep all 6 bits in the low bits of bytes 0..3
// (scales) and 4..7 (mins); sub-blocks 4..7 keep their low 4 bits in the nibbles of bytes 8..11 (scale low, min
// high) and their top 2 bits in bits 6..7 of bytes 0..3 (scales) and 4..7 (mins).
ORCD_HD inline ScaleMin k4_scale_min(const uint8_t scales[kKScaleSize], int sub_block) {
    const int j = sub_block;
    if (j < 4) {
        return {static_cast<uint8_t>(scales[j] & 63), static_cast<uint8_t>(scales[j + 4] & 63)};
    }
    return {static_cast<uint8_t>((scales[j + 4] & 0x0f) | (scales[j - 4] >> 6) << 4),
            static_cast<uint8_t>((scales[j + 4] >> 4) | (scales[j] >> 6) << 4)};
}

// Inverse of k4_scale_min for all eight sub-blocks; values must be < 64.
inline void k4_pack_scale_min(const uint8_t scale[8], const uint8_t min[8], uint8_t out[kKScaleSize]) {
    for (int j = 0; j < 4; ++j) {
        out[j] = static_cast<uint8_t>(scale[j] | (scale[j + 4] >> 4) << 6);
        out[j + 4] = static_cast<uint8_t>(min[j] | (min[j + 4] >> 4) << 6);
        out[j + 8] = static_cast<uint8_t>((scale[j + 4] & 0x0f) | (min[j + 4] & 0x0f) << 4);
    }
}

template <typename B, gguf::TensorType kT, bool kFive>
struct K4 {
    using Block = B;
    static constexpr gguf::TensorType kType = kT;
    static constexpr int kBlockElems = kQK_K;

    // q of element l (< 32) of sub-block sub, whose nibbles sit at q (= qs + 32 * (sub / 2)).
    ORCD_HD static int quant(const Block& b, const uint8_t* q, int sub, int l) {
        const int low = (sub & 1) ? q[l] >> 4 : q[l] & 15;
        if constexpr (kFive) return low | ((b.qh[l] >> sub) & 1) << 4;
        return low;
    }

    // Elements k0 .. k0 + 7 (k0 a multiple of 8): y = (d * sc) * q - (dmin * m), the same sub-block for all 8.
    ORCD_HD static void decode8(const Block& b, int k0, float* out) {
        const int sub = k0 / 32;
        const ScaleMin sm = k4_scale_min(b.scales, sub);
        const float ds = mul_rn(half_to_float(b.d), static_cast<float>(sm.scale));
        const float dm = mul_rn(half_to_float(b.dmin), static_cast<float>(sm.min));
        const uint8_t* q = b.qs + 32 * (k0 / 64);
        ORCD_UNROLL
        for (int i = 0; i < 8; ++i) {
            out[i] = sub_rn(mul_rn(ds, static_cast<float>(quant(b, q, sub, k0 % 32 + i))), dm);
        }
    }

    // Sub-block c (0..7) as the CPU dot products' integer chunk.
    ORCD_HD static void unpack32(const Block& b, int c, Chunk32& k) {
        const float d = half_to_float(b.d), dmin = half_to_float(b.dmin);
        const ScaleMin sm = k4_scale_min(b.scales, c);
        const uint8_t* q = b.qs + 32 * (c / 2);
        for (int l = 0; l < 32; ++l) k.u[l] = quant(b, q, c, l);
        set_chunk_scales(k, d * sm.scale, d * sm.scale, dmin * sm.min, dmin * sm.min);
    }

#ifdef __CUDACC__
    // Group g (elements 4g .. 4g + 3; sub-block g / 8) against four values of x (the f32 matvec kernels).
    __device__ static float dot4(const Block& b, int g, float4 x) {
        using namespace cuda_bits;
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
        return half_to_float(b.d) * sm.scale * bytes_dot<0>(v, x) - half_to_float(b.dmin) * sm.min * sum4(x);
    }

    // Unit u = (j, h) = (u / 2, u % 2) is the 16 bytes qs[32j + 16h ..]: their low nibbles are elements
    // 64j + 16h + 0..15 (sub-block 2j), their high nibbles elements 64j + 32 + 16h + 0..15 (sub-block 2j + 1); Q5_K's
    // fifth bits are bits 2j and 2j + 1 of qh[16h + 0..15].
    // The int8 matvecs decode a unit once (q8_load) and multiply it with each column; the arithmetic of that product
    // is Unit<> in backend/cuda/matvec_q8_units.cuh, shared by the dp4a and the tensor-core kernel.
    static constexpr int kQ8Units = 8;
    struct Q8Unit {
        uint32_t lo[4], hi[4];  // sub-block 2j's and 2j + 1's sixteen values of this unit as bytes
        int sc0, mn0, sc1, mn1;
        float d, dmin;
        int j, h;
    };
    // Unit (q.j, q.h)'s values from its 16 quant bytes w and, for Q5_K, the 16 fifth-bit bytes qh of half q.h.
    __device__ static void q8_split(const uint32_t (&w)[4], const uint32_t (&qh)[4], Q8Unit& q) {
#pragma unroll
        for (int k = 0; k < 4; ++k) {
            q.lo[k] = w[k] & 0x0F0F0F0Fu;
            q.hi[k] = (w[k] >> 4) & 0x0F0F0F0Fu;
            if constexpr (kFive) {
                q.lo[k] |= ((qh[k] >> (2 * q.j)) & 0x01010101u) << 4;
                q.hi[k] |= ((qh[k] >> (2 * q.j + 1)) & 0x01010101u) << 4;
            }
        }
    }
    __device__ static Q8Unit q8_load(const Block& b, int u) {
        using namespace cuda_bits;
        Q8Unit q;
        q.j = u >> 1;
        q.h = u & 1;
        uint32_t w[4];
        load_words(b.qs + 32 * q.j + 16 * q.h, w);
        uint32_t qh[4];
        if constexpr (kFive) load_words(b.qh + 16 * q.h, qh);
        q8_split(w, qh, q);
        const ScaleMin m0 = k4_scale_min(b.scales, 2 * q.j), m1 = k4_scale_min(b.scales, 2 * q.j + 1);
        q.sc0 = m0.scale;
        q.mn0 = m0.min;
        q.sc1 = m1.scale;
        q.mn1 = m1.min;
        q.d = half_to_float(b.d);
        q.dmin = half_to_float(b.dmin);
        return q;
    }
#endif
};

}  // namespace orcd::quant
