#pragma once
// Byte layouts of the GGML quantization blocks as the CPU kernels read them, and a scalar "unpack one 32-value chunk"
// per type that the scalar kernels use and the AVX2 kernels mirror.
//
// Every type is expressed in one form: within a chunk of 32 weights, w_j = sc[h] * u_j - mn[h], where u_j is a small
// non-negative integer (0..63; Q8_0 is the exception: a signed int8) and h = j / 16 picks the half (the K-quants with
// 16-wide sub-blocks have two scales per chunk). Offsets such as Q4_0's "- 8" become a minimum mn = 8 * d, so the
// integer products are always unsigned-by-signed (AVX2's maddubs) and offsets cost one multiply by the activation's
// block sum.
//
// Sizes and offsets come from gguf/quant_blocks.h, GGML's layouts byte for byte.
#include <cstddef>
#include <cstdint>
#include <cstring>

#include "common/half.h"
#include "gguf/quant_blocks.h"

namespace orcd::backend::cpu::layout {

inline float f16_at(const uint8_t* p) {
    uint16_t h;
    std::memcpy(&h, p, 2);
    return fp16_to_fp32(h);
}
inline uint32_t u32_at(const uint8_t* p) {
    uint32_t v;
    std::memcpy(&v, p, 4);
    return v;
}

// Bytes per block, from GGML's layouts in gguf/quant_blocks.h (which also provides the scale unpackers used here).
inline constexpr int kQ4_0 = sizeof(gguf::BlockQ4_0);
inline constexpr int kQ4_1 = sizeof(gguf::BlockQ4_1);
inline constexpr int kQ5_0 = sizeof(gguf::BlockQ5_0);
inline constexpr int kQ5_1 = sizeof(gguf::BlockQ5_1);
inline constexpr int kQ8_0 = sizeof(gguf::BlockQ8_0);
inline constexpr int kQ2_K = sizeof(gguf::BlockQ2_K);
inline constexpr int kQ3_K = sizeof(gguf::BlockQ3_K);
inline constexpr int kQ4_K = sizeof(gguf::BlockQ4_K);
inline constexpr int kQ5_K = sizeof(gguf::BlockQ5_K);
inline constexpr int kQ6_K = sizeof(gguf::BlockQ6_K);

// Field offsets the kernels read through byte pointers (blocks sit at arbitrary 2-byte-aligned file offsets).
inline constexpr int kQ2_K_qs = offsetof(gguf::BlockQ2_K, qs), kQ2_K_d = offsetof(gguf::BlockQ2_K, d);
inline constexpr int kQ3_K_qs = offsetof(gguf::BlockQ3_K, qs), kQ3_K_scales = offsetof(gguf::BlockQ3_K, scales),
                     kQ3_K_d = offsetof(gguf::BlockQ3_K, d);
inline constexpr int kQ4_K_scales = offsetof(gguf::BlockQ4_K, scales), kQ4_K_qs = offsetof(gguf::BlockQ4_K, qs);
inline constexpr int kQ5_K_scales = offsetof(gguf::BlockQ5_K, scales), kQ5_K_qh = offsetof(gguf::BlockQ5_K, qh),
                     kQ5_K_qs = offsetof(gguf::BlockQ5_K, qs);
inline constexpr int kQ6_K_qh = offsetof(gguf::BlockQ6_K, qh), kQ6_K_scales = offsetof(gguf::BlockQ6_K, scales),
                     kQ6_K_d = offsetof(gguf::BlockQ6_K, d);

// Q4_K / Q5_K: the 6-bit scale and min of sub-block j (0..7).
inline void scale_min_k4(int j, const uint8_t* packed, uint8_t& sc, uint8_t& m) {
    const gguf::ScaleMin sm = gguf::k4_scale_min(packed, j);
    sc = sm.scale;
    m = sm.min;
}

// Q3_K: the sixteen signed scales (-32..31).
inline void scales_q3k(const uint8_t* packed, int8_t out[16]) {
    for (int k = 0; k < 16; ++k) out[k] = static_cast<int8_t>(gguf::q3k_scale(packed, k));
}

// Scalar unpack of chunk c (0 for 32-blocks; 0..7 for super-blocks) of the block at b: u[32], sc[2], mn[2].
struct Chunk {
    int u[32];
    float sc[2];
    float mn[2];
};

inline void set_scales(Chunk& k, float sc0, float sc1, float mn0, float mn1) {
    k.sc[0] = sc0, k.sc[1] = sc1, k.mn[0] = mn0, k.mn[1] = mn1;
}

inline void unpack_q4_0(const uint8_t* b, int, Chunk& k) {
    const float d = f16_at(b);
    for (int l = 0; l < 16; ++l) k.u[l] = b[2 + l] & 0xF, k.u[l + 16] = b[2 + l] >> 4;
    set_scales(k, d, d, 8 * d, 8 * d);
}
inline void unpack_q4_1(const uint8_t* b, int, Chunk& k) {
    const float d = f16_at(b), m = f16_at(b + 2);
    for (int l = 0; l < 16; ++l) k.u[l] = b[4 + l] & 0xF, k.u[l + 16] = b[4 + l] >> 4;
    set_scales(k, d, d, -m, -m);
}
inline void unpack_q5_0(const uint8_t* b, int, Chunk& k) {
    const float d = f16_at(b);
    const uint32_t qh = u32_at(b + 2);
    for (int l = 0; l < 16; ++l) {
        k.u[l] = (b[6 + l] & 0xF) | (((qh >> l) & 1) << 4);
        k.u[l + 16] = (b[6 + l] >> 4) | (((qh >> (l + 16)) & 1) << 4);
    }
    set_scales(k, d, d, 16 * d, 16 * d);
}
inline void unpack_q5_1(const uint8_t* b, int, Chunk& k) {
    const float d = f16_at(b), m = f16_at(b + 2);
    const uint32_t qh = u32_at(b + 4);
    for (int l = 0; l < 16; ++l) {
        k.u[l] = (b[8 + l] & 0xF) | (((qh >> l) & 1) << 4);
        k.u[l + 16] = (b[8 + l] >> 4) | (((qh >> (l + 16)) & 1) << 4);
    }
    set_scales(k, d, d, -m, -m);
}
inline void unpack_q8_0(const uint8_t* b, int, Chunk& k) {
    const float d = f16_at(b);
    for (int l = 0; l < 32; ++l) k.u[l] = static_cast<int8_t>(b[2 + l]);
    set_scales(k, d, d, 0, 0);
}
inline void unpack_q2_k(const uint8_t* b, int c, Chunk& k) {
    const float d = f16_at(b + kQ2_K_d), dmin = f16_at(b + kQ2_K_d + 2);
    const int n = c / 4, j = c % 4, is = 8 * n + 2 * j;
    const uint8_t* q = b + kQ2_K_qs + 32 * n;
    for (int l = 0; l < 32; ++l) k.u[l] = (q[l] >> (2 * j)) & 3;
    const uint8_t s0 = b[is], s1 = b[is + 1];
    set_scales(k, d * (s0 & 0xF), d * (s1 & 0xF), dmin * (s0 >> 4), dmin * (s1 >> 4));
}
inline void unpack_q3_k(const uint8_t* b, int c, Chunk& k) {
    const float d = f16_at(b + kQ3_K_d);
    int8_t sc[16];
    scales_q3k(b + kQ3_K_scales, sc);
    const int n = c / 4, j = c % 4, is = 8 * n + 2 * j;
    const uint8_t* q = b + kQ3_K_qs + 32 * n;
    // u = low two bits + 4 when the high bit is set; the value is u - 4 (GGML subtracts 4 where the bit is clear).
    for (int l = 0; l < 32; ++l) k.u[l] = ((q[l] >> (2 * j)) & 3) | (((b[l] >> c) & 1) << 2);
    const float d0 = d * sc[is], d1 = d * sc[is + 1];
    set_scales(k, d0, d1, 4 * d0, 4 * d1);
}
inline void unpack_q4_k(const uint8_t* b, int c, Chunk& k) {
    const float d = f16_at(b), dmin = f16_at(b + 2);
    uint8_t sc, m;
    scale_min_k4(c, b + kQ4_K_scales, sc, m);
    const uint8_t* q = b + kQ4_K_qs + 32 * (c / 2);
    const int shift = (c % 2) * 4;
    for (int l = 0; l < 32; ++l) k.u[l] = (q[l] >> shift) & 0xF;
    set_scales(k, d * sc, d * sc, dmin * m, dmin * m);
}
inline void unpack_q5_k(const uint8_t* b, int c, Chunk& k) {
    const float d = f16_at(b), dmin = f16_at(b + 2);
    uint8_t sc, m;
    scale_min_k4(c, b + kQ4_K_scales, sc, m);
    const uint8_t* qh = b + kQ5_K_qh;
    const uint8_t* q = b + kQ5_K_qs + 32 * (c / 2);
    const int shift = (c % 2) * 4;
    for (int l = 0; l < 32; ++l) k.u[l] = ((q[l] >> shift) & 0xF) | (((qh[l] >> c) & 1) << 4);
    set_scales(k, d * sc, d * sc, dmin * m, dmin * m);
}
inline void unpack_q6_k(const uint8_t* b, int c, Chunk& k) {
    const float d = f16_at(b + kQ6_K_d);
    const int n = c / 4, j = c % 4;
    const uint8_t* ql = b + 64 * n + (j % 2) * 32;
    const uint8_t* qh = b + kQ6_K_qh + 32 * n;
    const int8_t* sc = reinterpret_cast<const int8_t*>(b + kQ6_K_scales) + 8 * n + 2 * j;
    const int lshift = (j / 2) * 4, hshift = 2 * j;
    for (int l = 0; l < 32; ++l) k.u[l] = ((ql[l] >> lshift) & 0xF) | (((qh[l] >> hshift) & 3) << 4);
    const float d0 = d * sc[0], d1 = d * sc[1];
    set_scales(k, d0, d1, 32 * d0, 32 * d1);
}

}  // namespace orcd::backend::cpu::layout
