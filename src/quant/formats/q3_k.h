#pragma once
// Q3_K: super-blocks of 256 in 16 sub-blocks of 16, y = d * (s6 - 32) * (q2 - (hbit ? 0 : 4)). q2 is placed as in
// Q2_K; the high bit of element 128*half + 32*j + l is bit (4*half + j) of hmask[l]; s6 is a 6-bit scale unpacked by
// q3k_scale().
#include <cstdint>

#include "gguf/types.h"
#include "quant/formats/block_format.h"
#include "quant/formats/k_common.h"
#include "quant/hd.h"

namespace orcd::quant {

struct BlockQ3_K {
    uint8_t hmask[kQK_K / 8];
    uint8_t qs[kQK_K / 4];
    uint8_t scales[kKScaleSize];
    uint16_t d;
};
static_assert(sizeof(BlockQ3_K) == 110);

// Sixteen 6-bit scales (stored with a +32 bias) in 12 bytes: the low 4 bits of scale k are the low nibble of byte k
// for k < 8 and the high nibble of byte k - 8 otherwise; the top 2 bits are bits 2*(k/4)..+1 of byte 8 + k%4.
// Returns the signed scale (-32..31).
ORCD_HD inline int q3k_scale(const uint8_t scales[kKScaleSize], int sub_block) {
    const int k = sub_block;
    const int low = k < 8 ? (scales[k] & 0x0f) : (scales[k - 8] >> 4);
    const int high = (scales[8 + (k & 3)] >> (2 * (k >> 2))) & 3;
    return (low | high << 4) - 32;
}

// Inverse of q3k_scale for all sixteen sub-blocks; values must lie in -32..31.
inline void q3k_pack_scales(const int8_t scale[16], uint8_t out[kKScaleSize]) {
    for (int i = 0; i < kKScaleSize; ++i) out[i] = 0;
    for (int k = 0; k < 16; ++k) {
        const unsigned biased = static_cast<unsigned>(scale[k] + 32);
        if (k < 8) {
            out[k] = static_cast<uint8_t>(out[k] | (biased & 0x0f));
        } else {
            out[k - 8] = static_cast<uint8_t>(out[k - 8] | (biased & 0x0f) << 4);
        }
        out[8 + (k & 3)] = static_cast<uint8_t>(out[8 + (k & 3)] | (biased >> 4) << (2 * (k >> 2)));
    }
}

struct Q3_K : BlockFormat<BlockQ3_K, gguf::TensorType::Q3_K, kQK_K> {
    // The low 2 bits of element e plus 4 when its high bit is set: the value is u - 4.
    ORCD_HD static int biased_quant(const Block& b, int e) {
        const int half = e / 128, j = (e % 128) / 32, l = e % 32;
        return ((b.qs[32 * half + l] >> (2 * j)) & 3) | ((b.hmask[l] >> (4 * half + j)) & 1) << 2;
    }

    // Elements k0 .. k0 + 7 (k0 a multiple of 8, one sub-block): y = (d * scale) * q.
    ORCD_HD static void decode8(const Block& b, int k0, float* out) {
        const float ds = mul_rn(half_to_float(b.d), static_cast<float>(q3k_scale(b.scales, k0 / 16)));
        ORCD_UNROLL
        for (int i = 0; i < 8; ++i) out[i] = mul_rn(ds, static_cast<float>(biased_quant(b, k0 + i) - 4));
    }

    // Chunk c (0..7, elements 32c ..) as the CPU dot products' integer chunk: two sub-blocks of 16.
    ORCD_HD static void unpack32(const Block& b, int c, Chunk32& k) {
        const float d = half_to_float(b.d);
        for (int l = 0; l < 32; ++l) k.u[l] = biased_quant(b, 32 * c + l);
        const float d0 = d * static_cast<int8_t>(q3k_scale(b.scales, 2 * c));
        const float d1 = d * static_cast<int8_t>(q3k_scale(b.scales, 2 * c + 1));
        set_chunk_scales(k, d0, d1, 4 * d0, 4 * d1);
    }
};

}  // namespace orcd::quant
