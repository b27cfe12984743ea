#include "quant/convert.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <iterator>
#include <numeric>
#include <optional>
#include <string>

#include "common/error.h"
#include "common/half.h"
#include "quant/formats.h"
#include "quant/row_blocks.h"

// How the quantizers choose scales, and the error bound that follows (the tests check each bound):
//
// * Every scale is derived from the block's range and then rounded *outward* to its stored precision (a half is
//   rounded up in magnitude, an integer sub-block scale is rounded up with ceil, a stored minimum is rounded down).
//   The stored grid therefore always reaches the data's extremes, so nothing is clipped and each element's error is
//   at most half of its grid step, with no dependence on how the rounding of a scale happened to fall.
// * Quants are then rounded to nearest against the *stored* (rounded) scales, not the ideal ones, so the rounding of
//   a scale never adds error on top of the half-step bound.
// * Symmetric formats with one more negative level than positive ones (Q4_0, Q5_0, Q3_K, Q6_K: q in [-N, N-1]) map
//   the element of largest magnitude to -N, as GGML does, which gains one level. Elements of the opposite sign within
//   half a step of N*step cannot reach +N and are clipped to N-1: their error is at most one step.
// * Affine K-quants (Q2_K, Q4_K, Q5_K) store y = d*sc*q - dmin*m with unsigned m, so each sub-block's offset is
//   taken as min(0, min(x)); positive-only sub-blocks leave their lowest levels unused, like GGML's reference.
// No iterative search is done: a Phi-3-mini-sized model has 3.8e9 weights to write in well under a minute.

namespace orcd::quant {

using detail::block_count;
using detail::store_block;

namespace {

// ---------------------------------------------------------------------------------------------------------------
// Quantization helpers.

// Clamps to [lo, hi]; a NaN becomes lo, so the int conversion that follows is always defined.
inline float clamp_to(float x, float lo, float hi) {
    x = x > lo ? x : lo;
    return x < hi ? x : hi;
}

// Round to nearest of a value already clamped to a small integer range.
inline int round_clamped(float x, int lo, int hi) {
    return static_cast<int>(std::floor(clamp_to(x, static_cast<float>(lo), static_cast<float>(hi)) + 0.5f));
}

constexpr uint16_t kLargestHalf = 0x7bff;  // 65504

// The smallest half >= x for x >= 0; saturates at the largest finite half, so a block whose range the format cannot
// hold is clipped instead of turning into inf/NaN.
uint16_t half_at_least(float x) {
    if (!(x > 0.0f)) return 0;
    uint16_t h = fp32_to_fp16(x);
    if (h >= 0x7c00) return kLargestHalf;
    if (fp16_to_fp32(h) < x) ++h;  // next half up; for a positive half the bit pattern increases with the value
    return h > kLargestHalf ? kLargestHalf : h;
}

// The largest half <= x, saturating at -65504 (the stored minimum of Q4_1/Q5_1 must not exceed the block minimum).
uint16_t half_at_most(float x) {
    if (!(x < 0.0f)) {  // 0 <= x: round down in magnitude
        const uint16_t h = fp32_to_fp16(x);
        if (h >= 0x7c00) return kLargestHalf;
        return (h != 0 && fp16_to_fp32(h) > x) ? static_cast<uint16_t>(h - 1) : h;
    }
    return static_cast<uint16_t>(0x8000u | half_at_least(-x));
}

// The element of largest magnitude, sign kept (the first one on ties, so results do not depend on vector width).
float signed_extremum(const float* x, int n) {
    float best = 0.0f, best_abs = 0.0f;
    for (int i = 0; i < n; ++i) {
        const float a = std::fabs(x[i]);
        if (a > best_abs) {
            best_abs = a;
            best = x[i];
        }
    }
    return best;
}

float max_abs(const float* x, int n) {
    float m = 0.0f;
    for (int i = 0; i < n; ++i) m = std::max(m, std::fabs(x[i]));
    return m;
}

inline float inverse_or_zero(float step) { return step != 0.0f ? 1.0f / step : 0.0f; }

// A half-precision step for the symmetric grid q in [-levels_below, levels_below - 1] whose end -levels_below*step
// lands on (or just beyond) the extremum. The sign makes the extremum the negative end, as in GGML.
uint16_t symmetric_step(const float* x, int n, int levels_below) {
    const float v = signed_extremum(x, n);
    const uint16_t magnitude = half_at_least(std::fabs(v) / static_cast<float>(levels_below));
    return v > 0.0f ? static_cast<uint16_t>(magnitude | 0x8000u) : magnitude;
}

// Integer quants of n elements on the grid x ~= step*q, q in [lo, hi].
void quantize_symmetric(const float* x, int n, float step, int lo, int hi, int* q) {
    const float inv = inverse_or_zero(step);
    for (int i = 0; i < n; ++i) q[i] = round_clamped(x[i] * inv, lo, hi);
}

// Integer quants of n elements on the grid x ~= offset + step*q, q in [0, hi].
void quantize_affine(const float* x, int n, float step, float offset, int hi, int* q) {
    const float inv = inverse_or_zero(step);
    for (int i = 0; i < n; ++i) q[i] = round_clamped((x[i] - offset) * inv, 0, hi);
}

// ---------------------------------------------------------------------------------------------------------------
// Super-block scale selection for the K-quants.

// Affine K-quants: y = d*scale[k]*q - dmin*min[k], scale/min in [0, code_max], q in [0, q_max]. The mins are chosen
// first (each rounded up so the offset reaches the sub-block minimum), then each sub-block's step is sized to reach
// its maximum from that offset and rounded up, so every element lies inside its sub-block's stored grid.
struct AffineKScales {
    uint16_t d = 0, dmin = 0;
    uint8_t scale[16] = {}, min[16] = {};
};

AffineKScales choose_affine_k_scales(const float* x, int n_sub, int sub_len, int q_max, int code_max) {
    float need_offset[16], high[16];
    float max_offset = 0.0f;
    for (int k = 0; k < n_sub; ++k) {
        const float* s = x + k * sub_len;
        float lo = 0.0f, hi = -INFINITY;
        for (int i = 0; i < sub_len; ++i) {
            lo = std::min(lo, s[i]);
            hi = std::max(hi, s[i]);
        }
        need_offset[k] = -lo;
        high[k] = hi;
        max_offset = std::max(max_offset, need_offset[k]);
    }
    AffineKScales out;
    out.dmin = half_at_least(max_offset / static_cast<float>(code_max));
    const float dmin = fp16_to_fp32(out.dmin);
    const float inv_dmin = inverse_or_zero(dmin);

    float need_step[16];
    float max_step = 0.0f;
    for (int k = 0; k < n_sub; ++k) {
        const float m = std::ceil(clamp_to(need_offset[k] * inv_dmin, 0.0f, static_cast<float>(code_max)));
        out.min[k] = static_cast<uint8_t>(m);
        need_step[k] = std::max(0.0f, (high[k] + dmin * m) / static_cast<float>(q_max));
        max_step = std::max(max_step, need_step[k]);
    }
    out.d = half_at_least(max_step / static_cast<float>(code_max));
    const float inv_d = inverse_or_zero(fp16_to_fp32(out.d));
    for (int k = 0; k < n_sub; ++k) {
        out.scale[k] =
            static_cast<uint8_t>(std::ceil(clamp_to(need_step[k] * inv_d, 0.0f, static_cast<float>(code_max))));
    }
    return out;
}

// An affine K super-block's scales (choose_affine_k_scales) and the quants 0..q_max of its elements against the
// stored scales.
AffineKScales quantize_affine_k(const float* x, int n_sub, int sub_len, int q_max, int code_max, int* q) {
    const AffineKScales s = choose_affine_k_scales(x, n_sub, sub_len, q_max, code_max);
    const float d = fp16_to_fp32(s.d), dmin = fp16_to_fp32(s.dmin);
    for (int k = 0; k < n_sub; ++k) {
        quantize_affine(x + k * sub_len, sub_len, d * s.scale[k], -dmin * s.min[k], q_max, q + k * sub_len);
    }
    return s;
}

// Symmetric K-quants (Q3_K, Q6_K): y = d*scale[k]*q, q in [-levels_below, levels_below-1], signed integer scales
// with |scale| <= code_max. Each sub-block's ideal step puts its extremum on -levels_below; d is sized so the largest
// step fits code_max, and every integer scale is rounded up in magnitude, keeping the extremum reachable.
struct SymmetricKScales {
    uint16_t d = 0;
    int scale[16] = {};
};

SymmetricKScales choose_symmetric_k_scales(const float* x, int n_sub, int sub_len, int levels_below, int code_max) {
    float step[16];
    float max_step = 0.0f;
    for (int k = 0; k < n_sub; ++k) {
        step[k] = -signed_extremum(x + k * sub_len, sub_len) / static_cast<float>(levels_below);
        max_step = std::max(max_step, std::fabs(step[k]));
    }
    SymmetricKScales out;
    out.d = half_at_least(max_step / static_cast<float>(code_max));
    const float inv_d = inverse_or_zero(fp16_to_fp32(out.d));
    for (int k = 0; k < n_sub; ++k) {
        const int magnitude =
            static_cast<int>(std::ceil(clamp_to(std::fabs(step[k]) * inv_d, 0.0f, static_cast<float>(code_max))));
        out.scale[k] = step[k] < 0.0f ? -magnitude : magnitude;
    }
    return out;
}

// A symmetric K super-block's scales (choose_symmetric_k_scales) and the quants of its elements against the stored
// scales.
SymmetricKScales quantize_symmetric_k(const float* x, int n_sub, int sub_len, int levels_below, int code_max, int* q) {
    const SymmetricKScales s = choose_symmetric_k_scales(x, n_sub, sub_len, levels_below, code_max);
    const float d = fp16_to_fp32(s.d);
    for (int k = 0; k < n_sub; ++k) {
        quantize_symmetric(x + k * sub_len, sub_len, d * static_cast<float>(s.scale[k]), -levels_below,
                           levels_below - 1, q + k * sub_len);
    }
    return s;
}

// ---------------------------------------------------------------------------------------------------------------
// Quantization: one function per block layout; each computes integer quants with the helpers above and packs them
// as described in the format headers (formats/).

void pack_nibbles_32(const int* q, uint8_t qs[16]) {
    for (int l = 0; l < 16; ++l) qs[l] = static_cast<uint8_t>(q[l] | q[l + 16] << 4);
}

void pack_fifth_bits_32(const int* q, uint8_t qh[4]) {
    uint32_t bits = 0;
    for (int l = 0; l < 32; ++l) bits |= static_cast<uint32_t>(q[l] >> 4) << l;
    for (int i = 0; i < 4; ++i) qh[i] = static_cast<uint8_t>(bits >> (8 * i));
}

// The 32 quants of a Q4_x block (0..15) or a Q5_x block (0..31: low nibbles in qs, fifth bits in qh) packed into it.
template <typename Block>
void pack_32(const int* q, Block& b) {
    if constexpr (requires { b.qh; }) {
        int low[32];
        for (int l = 0; l < 32; ++l) low[l] = q[l] & 0x0f;
        pack_nibbles_32(low, b.qs);
        pack_fifth_bits_32(q, b.qh);
    } else {
        pack_nibbles_32(q, b.qs);
    }
}

// Q4_0/Q5_0: symmetric quants in [-half, half - 1], stored plus half.
template <typename Block>
Block quantize_offset(const float* x, int half) {
    Block b{};
    b.d = symmetric_step(x, 32, half);
    int q[32];
    quantize_symmetric(x, 32, fp16_to_fp32(b.d), -half, half - 1, q);
    for (int& v : q) v += half;
    pack_32(q, b);
    return b;
}

BlockQ4_0 quantize_q4_0(const float* x) { return quantize_offset<BlockQ4_0>(x, 8); }
BlockQ5_0 quantize_q5_0(const float* x) { return quantize_offset<BlockQ5_0>(x, 16); }

// Q4_1/Q5_1: minimum rounded down to a half, step rounded up so the maximum stays on the grid.
template <typename Block>
Block quantize_min_step(const float* x, int q_max) {
    float lo = x[0], hi = x[0];
    for (int i = 1; i < 32; ++i) {
        lo = std::min(lo, x[i]);
        hi = std::max(hi, x[i]);
    }
    Block b{};
    b.m = half_at_most(lo);
    const float m = fp16_to_fp32(b.m);
    b.d = half_at_least((hi - m) / static_cast<float>(q_max));
    int q[32];
    quantize_affine(x, 32, fp16_to_fp32(b.d), m, q_max, q);
    pack_32(q, b);
    return b;
}

BlockQ4_1 quantize_q4_1(const float* x) { return quantize_min_step<BlockQ4_1>(x, 15); }
BlockQ5_1 quantize_q5_1(const float* x) { return quantize_min_step<BlockQ5_1>(x, 31); }

BlockQ8_0 quantize_q8_0(const float* x) {
    BlockQ8_0 b{};
    b.d = half_at_least(max_abs(x, 32) / 127.0f);
    int q[32];
    quantize_symmetric(x, 32, fp16_to_fp32(b.d), -127, 127, q);
    for (int l = 0; l < 32; ++l) b.qs[l] = static_cast<int8_t>(q[l]);
    return b;
}

// Q8_1 is Q8_0's block plus s = d * (sum of the quants).
BlockQ8_1 quantize_q8_1(const float* x) {
    const BlockQ8_0 q = quantize_q8_0(x);
    BlockQ8_1 b{};
    b.d = q.d;
    std::copy(std::begin(q.qs), std::end(q.qs), b.qs);
    const int sum = std::accumulate(std::begin(q.qs), std::end(q.qs), 0);
    b.s = fp32_to_fp16(fp16_to_fp32(q.d) * static_cast<float>(sum));
    return b;
}

// Q2_K and Q3_K keep each quant's low 2 bits (`crumbs`, 0..3) the same way: element e of the super-block is in byte
// 32 * (e / 128) + e % 32 of qs, at bit 2 * ((e % 128) / 32).
void pack_crumbs_k(const int* crumbs, uint8_t* qs) {
    for (int e = 0; e < kQK_K; ++e) {
        const int half = e / 128, j = (e % 128) / 32, l = e % 32;
        qs[32 * half + l] = static_cast<uint8_t>(qs[32 * half + l] | (crumbs[e] & 3) << (2 * j));
    }
}

BlockQ2_K quantize_q2_k(const float* x) {
    int q[kQK_K];
    const AffineKScales s = quantize_affine_k(x, 16, 16, 3, 15, q);
    BlockQ2_K b{};
    b.d = s.d;
    b.dmin = s.dmin;
    for (int k = 0; k < 16; ++k) b.scales[k] = static_cast<uint8_t>(s.scale[k] | s.min[k] << 4);
    pack_crumbs_k(q, b.qs);
    return b;
}

BlockQ3_K quantize_q3_k(const float* x) {
    int q[kQK_K];
    const SymmetricKScales s = quantize_symmetric_k(x, 16, 16, 4, 31, q);
    BlockQ3_K b{};
    b.d = s.d;
    int8_t scales[16];
    for (int k = 0; k < 16; ++k) scales[k] = static_cast<int8_t>(s.scale[k]);
    q3k_pack_scales(scales, b.scales);
    int biased[kQK_K];  // 0..7: low 2 bits in qs, bit 2 in hmask (set means "no -4")
    for (int e = 0; e < kQK_K; ++e) {
        biased[e] = q[e] + 4;
        const int half = e / 128, j = (e % 128) / 32, l = e % 32;
        b.hmask[l] = static_cast<uint8_t>(b.hmask[l] | (biased[e] >> 2) << (4 * half + j));
    }
    pack_crumbs_k(biased, b.qs);
    return b;
}

// Q4_K / Q5_K: 4 or 5 bits per quant; the fifth bit of Q5_K goes to qh.
template <typename Block, bool kFive>
Block quantize_k4(const float* x) {
    constexpr int q_max = kFive ? 31 : 15;
    int q[kQK_K];
    const AffineKScales s = quantize_affine_k(x, 8, 32, q_max, 63, q);
    Block b{};
    b.d = s.d;
    b.dmin = s.dmin;
    k4_pack_scale_min(s.scale, s.min, b.scales);
    for (int chunk = 0; chunk < 4; ++chunk) {
        for (int l = 0; l < 32; ++l) {
            const int q_lo = q[64 * chunk + l], q_hi = q[64 * chunk + 32 + l];
            b.qs[32 * chunk + l] = static_cast<uint8_t>((q_lo & 0x0f) | (q_hi & 0x0f) << 4);
            if constexpr (kFive) {
                b.qh[l] = static_cast<uint8_t>(b.qh[l] | (q_lo >> 4) << (2 * chunk) | (q_hi >> 4) << (2 * chunk + 1));
            }
        }
    }
    return b;
}
BlockQ4_K quantize_q4_k(const float* x) { return quantize_k4<BlockQ4_K, false>(x); }
BlockQ5_K quantize_q5_k(const float* x) { return quantize_k4<BlockQ5_K, true>(x); }

BlockQ6_K quantize_q6_k(const float* x) {
    int q[kQK_K];
    const SymmetricKScales s = quantize_symmetric_k(x, 16, 16, 32, 127, q);
    BlockQ6_K b{};
    b.d = s.d;
    for (int k = 0; k < 16; ++k) b.scales[k] = static_cast<int8_t>(s.scale[k]);
    for (int e = 0; e < kQK_K; ++e) {
        const int half = e / 128, r = (e % 128) / 32, l = e % 32;
        const int biased = q[e] + 32;  // 0..63
        uint8_t& low_byte = b.ql[64 * half + 32 * (r & 1) + l];
        low_byte = static_cast<uint8_t>(low_byte | (biased & 0x0f) << (r < 2 ? 0 : 4));
        b.qh[32 * half + l] = static_cast<uint8_t>(b.qh[32 * half + l] | (biased >> 4) << (2 * r));
    }
    return b;
}

// Q8_K's scale is a float32, so it needs no outward rounding: d = amax/127 exactly as computed.
BlockQ8_K quantize_q8_k(const float* x) {
    BlockQ8_K b{};
    b.d = max_abs(x, kQK_K) / 127.0f;
    int q[kQK_K];
    quantize_symmetric(x, kQK_K, b.d, -127, 127, q);
    for (int k = 0; k < 16; ++k) {
        int sum = 0;
        for (int i = 0; i < 16; ++i) {
            b.qs[16 * k + i] = static_cast<int8_t>(q[16 * k + i]);
            sum += q[16 * k + i];
        }
        b.bsums[k] = static_cast<int16_t>(sum);
    }
    return b;
}

template <typename Block, Block (*quantize_block)(const float*)>
void quantize_blocks(const float* src, void* dst, int64_t n_blocks, int block_elems) {
    for (int64_t i = 0; i < n_blocks; ++i) store_block(dst, i, quantize_block(src + i * block_elems));
}

template <uint16_t (*convert)(float)>
void narrow_floats(const float* src, void* dst, int64_t n) {
    auto* out = static_cast<unsigned char*>(dst);
    for (int64_t i = 0; i < n; ++i) {
        const uint16_t h = convert(src[i]);
        std::memcpy(out + 2 * i, &h, 2);
    }
}

}  // namespace

bool can_quantize(TensorType type) {
    switch (type) {
        case TensorType::F32:
        case TensorType::F16:
        case TensorType::BF16:
        case TensorType::Q4_0:
        case TensorType::Q4_1:
        case TensorType::Q5_0:
        case TensorType::Q5_1:
        case TensorType::Q8_0:
        case TensorType::Q8_1:
        case TensorType::Q2_K:
        case TensorType::Q3_K:
        case TensorType::Q4_K:
        case TensorType::Q5_K:
        case TensorType::Q6_K:
        case TensorType::Q8_K: return true;
    }
    return false;
}

void quantize_row(TensorType type, const float* src, void* dst, int64_t n) {
    if (!can_quantize(type)) {
        throw Error(ErrorCode::UnsupportedTensorType,
                    "quantize_row: no quantizer for tensor type id " + std::to_string(static_cast<uint32_t>(type)));
    }
    const int64_t blocks = block_count(type, n, "quantize_row");
    if (blocks == 0) return;
    switch (type) {
        case TensorType::F32: std::memcpy(dst, src, static_cast<size_t>(n) * sizeof(float)); return;
        case TensorType::F16: narrow_floats<fp32_to_fp16>(src, dst, n); return;
        case TensorType::BF16: narrow_floats<fp32_to_bf16>(src, dst, n); return;
        case TensorType::Q4_0: quantize_blocks<BlockQ4_0, quantize_q4_0>(src, dst, blocks, 32); return;
        case TensorType::Q4_1: quantize_blocks<BlockQ4_1, quantize_q4_1>(src, dst, blocks, 32); return;
        case TensorType::Q5_0: quantize_blocks<BlockQ5_0, quantize_q5_0>(src, dst, blocks, 32); return;
        case TensorType::Q5_1: quantize_blocks<BlockQ5_1, quantize_q5_1>(src, dst, blocks, 32); return;
        case TensorType::Q8_0: quantize_blocks<BlockQ8_0, quantize_q8_0>(src, dst, blocks, 32); return;
        case TensorType::Q8_1: quantize_blocks<BlockQ8_1, quantize_q8_1>(src, dst, blocks, 32); return;
        case TensorType::Q2_K: quantize_blocks<BlockQ2_K, quantize_q2_k>(src, dst, blocks, kQK_K); return;
        case TensorType::Q3_K: quantize_blocks<BlockQ3_K, quantize_q3_k>(src, dst, blocks, kQK_K); return;
        case TensorType::Q4_K: quantize_blocks<BlockQ4_K, quantize_q4_k>(src, dst, blocks, kQK_K); return;
        case TensorType::Q5_K: quantize_blocks<BlockQ5_K, quantize_q5_k>(src, dst, blocks, kQK_K); return;
        case TensorType::Q6_K: quantize_blocks<BlockQ6_K, quantize_q6_k>(src, dst, blocks, kQK_K); return;
        case TensorType::Q8_K: quantize_blocks<BlockQ8_K, quantize_q8_k>(src, dst, blocks, kQK_K); return;
    }
}

}  // namespace orcd::quant
