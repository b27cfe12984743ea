#pragma once
// Q2_K: super-blocks of 256 in 16 sub-blocks of 16, y = d * (scales[k] & 15) * q - dmin * (scales[k] >> 4),
// q = 2 bits. In each half of 128 elements, element 32*j + l (j = 0..3, l = 0..31) is bits 2j..2j+1 of
// qs[32*half + l].
#include <cstdint>

#include "gguf/types.h"
#include "quant/formats/block_format.h"
#include "quant/formats/k_common.h"
#include "quant/hd.h"

namespace orcd::quant {

struct BlockQ2_K {
    uint8_t scales[kQK_K / 16];
    uint8_t qs[kQK_K / 4];
    uint16_t d;
    uint16_t dmin;
};
static_assert(sizeof(BlockQ2_K) == 84);

struct Q2_K : BlockFormat<BlockQ2_K, gguf::TensorType::Q2_K, kQK_K> {
    // q (0..3) of element e.
    ORCD_HD static int quant(const Block& b, int e) {
        return (b.qs[32 * (e / 128) + e % 32] >> (2 * ((e % 128) / 32))) & 3;
    }

    // Elements k0 .. k0 + 7 (k0 a multiple of 8, one sub-block): y = (d * sc) * q - dmin * m.
    ORCD_HD static void decode8(const Block& b, int k0, float* out) {
        const uint8_t sc = b.scales[k0 / 16];
        const float ds = mul_rn(half_to_float(b.d), static_cast<float>(sc & 0x0f));
        const float dm = mul_rn(half_to_float(b.dmin), static_cast<float>(sc >> 4));
        ORCD_UNROLL
        for (int i = 0; i < 8; ++i) out[i] = sub_rn(mul_rn(ds, static_cast<float>(quant(b, k0 + i))), dm);
    }

    // Chunk c (0..7, elements 32c ..) as the CPU dot products' integer chunk: two sub-blocks of 16.
    ORCD_HD static void unpack32(const Block& b, int c, Chunk32& k) {
        const float d = half_to_float(b.d), dmin = half_to_float(b.dmin);
        for (int l = 0; l < 32; ++l) k.u[l] = quant(b, 32 * c + l);
        const uint8_t s0 = b.scales[2 * c], s1 = b.scales[2 * c + 1];
        set_chunk_scales(k, d * (s0 & 0xF), d * (s1 & 0xF), dmin * (s0 >> 4), dmin * (s1 >> 4));
    }
};

}  // namespace orcd::quant
