#pragma once
// The family of Q4_0, Q4_1, Q5_0 and Q5_1: blocks of 32 elements whose low 4 bits are nibbles of qs[16] (element
// j < 16 the low nibble of qs[j], element j + 16 its high nibble), with a fifth bit for the Q5 types (bit j of the
// 32-bit little-endian qh), and either y = d * (q - offset) or y = d * q + m. Each member's header (q4_0.h, ...) holds
// its block layout and instantiates Nibble32; every decoder of these formats is here.
#include <cstdint>

#include "gguf/types.h"
#include "quant/hd.h"
#ifdef __CUDACC__
#include "quant/cuda_bits.cuh"
#endif

namespace orcd::quant {

// Reads the 32 high bits of Q5_0/Q5_1 byte by byte: the field is only 2-byte aligned inside the block.
ORCD_HD inline uint32_t q5_high_bits(const uint8_t qh[4]) {
    return static_cast<uint32_t>(qh[0]) | static_cast<uint32_t>(qh[1]) << 8 | static_cast<uint32_t>(qh[2]) << 16 |
           static_cast<uint32_t>(qh[3]) << 24;
}

// kOffset is subtracted from q (0 with kMin); kFive adds the fifth bit; kMin says y = d*q + m instead of y = d*q.
template <typename B, gguf::TensorType kT, int kOffset, bool kFive, bool kMin>
struct Nibble32 {
    using Block = B;
    static constexpr gguf::TensorType kType = kT;
    static constexpr int kBlockElems = 32;

    ORCD_HD static int quant(const Block& b, uint32_t high_bits, int k) {
        if constexpr (kFive) return nibble32(b.qs, k) | static_cast<int>((high_bits >> k) & 1u) << 4;
        return nibble32(b.qs, k);
    }
    ORCD_HD static uint32_t high_bits(const Block& b) {
        if constexpr (kFive) return q5_high_bits(b.qh);
        return 0;
    }

    // Elements k0 .. k0 + 7 (k0 a multiple of 8): the reference values dequantize_row writes.
    ORCD_HD static void decode8(const Block& b, int k0, float* out) {
        const float d = half_to_float(b.d);
        const uint32_t hb = high_bits(b);
        ORCD_UNROLL
        for (int i = 0; i < 8; ++i) {
            if constexpr (kMin) {
                out[i] = add_rn(mul_rn(d, static_cast<float>(quant(b, hb, k0 + i))), half_to_float(b.m));
            } else {
                out[i] = mul_rn(d, static_cast<float>(quant(b, hb, k0 + i) - kOffset));
            }
        }
    }

    // The block as the CPU dot products' integer chunk (c is always 0).
    ORCD_HD static void unpack32(const Block& b, int, Chunk32& k) {
        const float d = half_to_float(b.d);
        const uint32_t hb = high_bits(b);
        for (int l = 0; l < 32; ++l) k.u[l] = quant(b, hb, l);
        if constexpr (kMin) {
            const float m = half_to_float(b.m);
            set_chunk_scales(k, d, d, -m, -m);
        } else {
            set_chunk_scales(k, d, d, kOffset * d, kOffset * d);
        }
    }

#ifdef __CUDACC__
    // Group g (elements 4g .. 4g + 3) against four values of x, decoded in registers (the f32 matvec kernels).
    __device__ static float dot4(const Block& b, int g, float4 x) {
        using namespace cuda_bits;
        uint32_t w[1];
        load_words(b.qs + 4 * (g & 3), w);
        uint32_t v = (w[0] >> (4 * (g >> 2))) & 0x0F0F0F0Fu;
        if constexpr (kFive) {
            uint32_t qh[1];
            load_words(b.qh, qh);
            v |= spread4(qh[0] >> (4 * g)) << 4;
        }
        const float s = bytes_dot<kOffset>(v, x);
        if constexpr (kMin) return half_to_float(b.d) * s + half_to_float(b.m) * sum4(x);
        return half_to_float(b.d) * s;
    }

    // The int8 matvecs: a unit is the whole block, decoded once (q8_load) and multiplied with each column (Unit<> in
    // backend/cuda/matvec_q8_units.cuh).
    static constexpr int kQ8Units = 1;
    struct Q8Unit {
        uint32_t lo[4], hi[4];  // elements 4k .. 4k + 3 and 16 + 4k .. 16 + 4k + 3 as bytes
        float d, m;
    };
    __device__ static Q8Unit q8_load(const Block& b, int) {
        using namespace cuda_bits;
        Q8Unit q;
        uint32_t w[4];
        load_words(b.qs, w);
        uint32_t h[1] = {0};
        if constexpr (kFive) load_words(b.qh, h);
#pragma unroll
        for (int k = 0; k < 4; ++k) {
            q.lo[k] = w[k] & 0x0F0F0F0Fu;
            q.hi[k] = (w[k] >> 4) & 0x0F0F0F0Fu;
            if constexpr (kFive) {
                q.lo[k] |= spread4(h[0] >> (4 * k)) << 4;
                q.hi[k] |= spread4(h[0] >> (16 + 4 * k)) << 4;
            }
        }
        q.d = half_to_float(b.d);
        if constexpr (kMin) q.m = half_to_float(b.m);
        return q;
    }
#endif
};

}  // namespace orcd::quant
