// The AVX2 + FMA + F16C kernels: compiled with -mavx2 -mfma -mf16c whatever the project's -march, and reached only
// through the dispatch in quant_dot.cpp after the CPU said it has them. The kernels themselves are quant_dot_x86.h.
#include <immintrin.h>

#include <cstdint>

#include "backend/cpu/quant_dot.h"

namespace orcd::backend::cpu {
namespace {

// maddubs: u8 x i8 -> saturating i16 sums of adjacent pairs; madd against ones: i32 sums of adjacent i16 pairs.
inline __m256i dot4(__m256i u, __m256i s) {
    return _mm256_madd_epi16(_mm256_maddubs_epi16(u, s), _mm256_set1_epi16(1));
}

// The same four-product sums added to acc.
inline __m256i dot4_acc(__m256i acc, __m256i u, __m256i s) { return _mm256_add_epi32(acc, dot4(u, s)); }

// Eight regrouped signed weight blocks (quant_dot_x86.h, transpose8) against the activation's regrouped group: lane j
// receives block j's sum of w * q. maddubs needs an unsigned operand, so the weights' signs move onto the activation
// (|w| x sign(q, w)) for each column.
class SignedGroup {
public:
    // Whether dot_signed regroups for a single column too: the regrouping costs more than it saves for one column (bench_cpu: 31.5 -> 29 GMAC/s).
    static constexpr bool kForOneColumn = false;
    explicit SignedGroup(const __m256i (&wt)[8]) {
        for (int m = 0; m < 8; ++m) {
            w_[m] = wt[m];
            aw_[m] = _mm256_sign_epi8(wt[m], wt[m]);
        }
    }
    __m256i sums(const int8_t* xq, const int32_t* /*sum128: unused*/) const {
        __m256i p = _mm256_setzero_si256();
        for (int m = 0; m < 8; ++m) {
            const __m256i q = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(xq + 32 * m));
            p = dot4_acc(p, aw_[m], _mm256_sign_epi8(q, w_[m]));
        }
        return p;
    }

private:
    __m256i w_[8], aw_[8];
};

}  // namespace
}  // namespace orcd::backend::cpu

#include "backend/cpu/quant_dot_x86.h"

namespace orcd::backend::cpu::detail {

QuantDotFn quant_dot_avx2(TensorType t) { return quant_kernels(t); }
FloatDotFn float_dot_avx2(TensorType t) { return float_kernels(t); }

void quantize_activation_avx2(const float* x, int64_t n, ActBlock* out) {
    const __m256 sign = _mm256_set1_ps(-0.0f);
    const __m256i perm = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
    for (int64_t b = 0; b < n / kActBlock; ++b) {
        const float* xb = x + b * kActBlock;
        __m256 v[4];
        __m256 amax = _mm256_setzero_ps();
        for (int k = 0; k < 4; ++k) {
            v[k] = _mm256_loadu_ps(xb + 8 * k);
            amax = _mm256_max_ps(amax, _mm256_andnot_ps(sign, v[k]));
        }
        __m128 m = _mm_max_ps(_mm256_castps256_ps128(amax), _mm256_extractf128_ps(amax, 1));
        m = _mm_max_ps(m, _mm_movehl_ps(m, m));
        m = _mm_max_ss(m, _mm_movehdup_ps(m));
        const float mx = _mm_cvtss_f32(m);
        // Same arithmetic as the scalar path (x * (127 / amax), round half to even), so both give identical blocks.
        const __m256 id = _mm256_set1_ps(mx > 0.f ? 127.f / mx : 0.f);
        __m256i q[4];
        for (int k = 0; k < 4; ++k) {
            q[k] = _mm256_cvtps_epi32(
                _mm256_round_ps(_mm256_mul_ps(v[k], id), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
        }
        // packs interleave 128-bit lanes; the permute puts the 32 bytes back in order.
        const __m256i p = _mm256_packs_epi16(_mm256_packs_epi32(q[0], q[1]), _mm256_packs_epi32(q[2], q[3]));
        ActBlock& o = out[b];
        _mm256_storeu_si256(reinterpret_cast<__m256i*>(o.q), _mm256_permutevar8x32_epi32(p, perm));
        o.d = mx / 127.f;
        // Sums of each half: widen to i16 and add horizontally.
        const __m256i w16lo = _mm256_cvtepi8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(o.q)));
        const __m256i w16hi = _mm256_cvtepi8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(o.q + 16)));
        const __m256i s32 = _mm256_hadd_epi32(_mm256_madd_epi16(w16lo, _mm256_set1_epi16(1)),
                                              _mm256_madd_epi16(w16hi, _mm256_set1_epi16(1)));
        // s32 lanes: [lo0+lo1, lo2+lo3, hi0+hi1, hi2+hi3 | lo4+lo5, lo6+lo7, hi4+hi5, hi6+hi7]
        alignas(32) int32_t t[8];
        _mm256_store_si256(reinterpret_cast<__m256i*>(t), s32);
        o.sum[0] = static_cast<int16_t>(t[0] + t[1] + t[4] + t[5]);
        o.sum[1] = static_cast<int16_t>(t[2] + t[3] + t[6] + t[7]);
    }
}
}  // namespace orcd::backend::cpu::detail
