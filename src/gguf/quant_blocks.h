#pragma once
// The on-disk block layouts of GGML's quantized tensor types, byte for byte as GGML publishes them, plus the small
// bit-unpacking helpers that every decoder (CPU reference, CPU kernels, CUDA kernels) must agree on. Half-precision
// fields are kept as raw uint16_t bits so this header stays free of any half type and is includable from .cu files.
//
// Every struct is a plain aggregate of fixed-width integers with no padding; the static_asserts pin each size to the
// block_bytes that gguf/types.cpp reports, so a layout edit here cannot silently disagree with the file reader.
#include <cstdint>

#ifdef __CUDACC__
#define ORCD_HD __host__ __device__
#else
#define ORCD_HD
#endif

namespace orcd::gguf {

inline constexpr int kQK4_0 = 32;
inline constexpr int kQK4_1 = 32;
inline constexpr int kQK5_0 = 32;
inline constexpr int kQK5_1 = 32;
inline constexpr int kQK8_0 = 32;
inline constexpr int kQK8_1 = 32;
inline constexpr int kQK_K = 256;       // elements per K-quant super-block
inline constexpr int kKScaleSize = 12;  // bytes of packed 6-bit scales/mins in Q3_K, Q4_K and Q5_K

// y = d * (q - 8), q = 4 bits. Element j < 16 is the low nibble of qs[j], element j + 16 its high nibble.
struct BlockQ4_0 {
    uint16_t d;
    uint8_t qs[kQK4_0 / 2];
};

// y = d * q + m, q = 4 bits, nibble order as Q4_0.
struct BlockQ4_1 {
    uint16_t d;
    uint16_t m;
    uint8_t qs[kQK4_1 / 2];
};

// y = d * (q - 16), q = 5 bits: low 4 bits as Q4_0, the fifth bit of element j is bit j of qh read little-endian.
struct BlockQ5_0 {
    uint16_t d;
    uint8_t qh[4];
    uint8_t qs[kQK5_0 / 2];
};

// y = d * q + m, q = 5 bits packed as Q5_0.
struct BlockQ5_1 {
    uint16_t d;
    uint16_t m;
    uint8_t qh[4];
    uint8_t qs[kQK5_1 / 2];
};

// y = d * q, q signed 8 bits.
struct BlockQ8_0 {
    uint16_t d;
    int8_t qs[kQK8_0];
};

// As Q8_0 plus s = d * sum(qs), which dot-product kernels use to fold in another block's offset.
struct BlockQ8_1 {
    uint16_t d;
    uint16_t s;
    int8_t qs[kQK8_1];
};

// 16 sub-blocks of 16: y = d * (scales[k] & 15) * q - dmin * (scales[k] >> 4), q = 2 bits. In each half of 128
// elements, element 32*j + l (j = 0..3, l = 0..31) is bits 2j..2j+1 of qs[32*half + l].
struct BlockQ2_K {
    uint8_t scales[kQK_K / 16];
    uint8_t qs[kQK_K / 4];
    uint16_t d;
    uint16_t dmin;
};

// 16 sub-blocks of 16: y = d * (s6 - 32) * (q2 - (hbit ? 0 : 4)). q2 is placed as in Q2_K; the high bit of element
// 128*half + 32*j + l is bit (4*half + j) of hmask[l]; s6 is a 6-bit scale unpacked by q3k_scale().
struct BlockQ3_K {
    uint8_t hmask[kQK_K / 8];
    uint8_t qs[kQK_K / 4];
    uint8_t scales[kKScaleSize];
    uint16_t d;
};

// 8 sub-blocks of 32: y = d * sc * q - dmin * m, q = 4 bits, (sc, m) 6-bit pairs unpacked by k4_scale_min(). In each
// chunk of 64 elements, the first 32 are the low nibbles of qs[32*chunk + l], the next 32 the high nibbles.
struct BlockQ4_K {
    uint16_t d;
    uint16_t dmin;
    uint8_t scales[kKScaleSize];
    uint8_t qs[kQK_K / 2];
};

// As Q4_K with a fifth bit: for chunk c, element 64c + l takes bit 2c of qh[l], element 64c + 32 + l bit 2c + 1.
struct BlockQ5_K {
    uint16_t d;
    uint16_t dmin;
    uint8_t scales[kKScaleSize];
    uint8_t qh[kQK_K / 8];
    uint8_t qs[kQK_K / 2];
};

// 16 sub-blocks of 16: y = d * scales[k] * (q - 32), q = 6 bits. In each half of 128 elements, quarter r (32
// elements, l = 0..31) takes its low 4 bits from ql[64*half + l + 32*(r & 1)] (low nibble for r < 2, high nibble
// otherwise) and its top 2 bits from bits 2r..2r+1 of qh[32*half + l].
struct BlockQ6_K {
    uint8_t ql[kQK_K / 2];
    uint8_t qh[kQK_K / 4];
    int8_t scales[kQK_K / 16];
    uint16_t d;
};

// y = d * q with a float32 d; bsums[k] is the sum of qs over elements 16k..16k+15 (for dot products).
struct BlockQ8_K {
    float d;
    int8_t qs[kQK_K];
    int16_t bsums[kQK_K / 16];
};

static_assert(sizeof(BlockQ4_0) == 18);
static_assert(sizeof(BlockQ4_1) == 20);
static_assert(sizeof(BlockQ5_0) == 22);
static_assert(sizeof(BlockQ5_1) == 24);
static_assert(sizeof(BlockQ8_0) == 34);
static_assert(sizeof(BlockQ8_1) == 36);
static_assert(sizeof(BlockQ2_K) == 84);
static_assert(sizeof(BlockQ3_K) == 110);
static_assert(sizeof(BlockQ4_K) == 144);
static_assert(sizeof(BlockQ5_K) == 176);
static_assert(sizeof(BlockQ6_K) == 210);
static_assert(sizeof(BlockQ8_K) == 292);

// Reads the 32 high bits of Q5_0/Q5_1 byte by byte: the field is only 2-byte aligned inside the block.
ORCD_HD inline uint32_t q5_high_bits(const uint8_t qh[4]) {
    return static_cast<uint32_t>(qh[0]) | static_cast<uint32_t>(qh[1]) << 8 | static_cast<uint32_t>(qh[2]) << 16 |
           static_cast<uint32_t>(qh[3]) << 24;
}

struct ScaleMin {
    uint8_t scale;
    uint8_t min;
};

// Q4_K/Q5_K pack eight 6-bit scales and eight 6-bit mins into 12 bytes: sub-blocks 0..3 keep all 6 bits in the low
// bits of bytes 0..3 (scales) and 4..7 (mins); sub-blocks 4..7 keep their low 4 bits in the nibbles of bytes 8..11
// (scale low, min high) and their top 2 bits in bits 6..7 of bytes 0..3 (scales) and 4..7 (mins).
ORCD_HD inline ScaleMin k4_scale_min(const uint8_t scales[kKScaleSize], int sub_block) {
    const int j = sub_block;
    if (j < 4) {
        return {static_cast<uint8_t>(scales[j] & 63), static_cast<uint8_t>(scales[j + 4] & 63)};
    }
    return {static_cast<uint8_t>((scales[j + 4] & 0x0f) | (scales[j - 4] >> 6) << 4),
            static_cast<uint8_t>((scales[j + 4] >> 4) | (scales[j] >> 6) << 4)};
}

// Inverse of k4_scale_min for all eight sub-blocks; values must be < 64.
ORCD_HD inline void k4_pack_scale_min(const uint8_t scale[8], const uint8_t min[8], uint8_t out[kKScaleSize]) {
    for (int j = 0; j < 4; ++j) {
        out[j] = static_cast<uint8_t>(scale[j] | (scale[j + 4] >> 4) << 6);
        out[j + 4] = static_cast<uint8_t>(min[j] | (min[j + 4] >> 4) << 6);
        out[j + 8] = static_cast<uint8_t>((scale[j + 4] & 0x0f) | (min[j + 4] & 0x0f) << 4);
    }
}

// Q3_K packs sixteen 6-bit scales (stored with a +32 bias) into 12 bytes: the low 4 bits of scale k are the low
// nibble of byte k for k < 8 and the high nibble of byte k - 8 otherwise; the top 2 bits are bits 2*(k/4)..+1 of
// byte 8 + k%4. Returns the signed scale (-32..31).
ORCD_HD inline int q3k_scale(const uint8_t scales[kKScaleSize], int sub_block) {
    const int k = sub_block;
    const int low = k < 8 ? (scales[k] & 0x0f) : (scales[k - 8] >> 4);
    const int high = (scales[8 + (k & 3)] >> (2 * (k >> 2))) & 3;
    return (low | high << 4) - 32;
}

// Inverse of q3k_scale for all sixteen sub-blocks; values must lie in -32..31.
ORCD_HD inline void q3k_pack_scales(const int8_t scale[16], uint8_t out[kKScaleSize]) {
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

}  // namespace orcd::gguf
