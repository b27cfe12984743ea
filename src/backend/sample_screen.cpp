// The single-precision screen of the host sampling chain (screen_pick, declared in sample_internal.h): the AVX2 pass
// that bins and weighs the whole vocabulary eight tokens at a time for the pick after top-p and min-p, leaving the
// chain's double-precision pass only the draws within its error bound of a boundary. Apart from sample_chain.cpp
// because it is a self-contained SIMD path of its own (about half the chain's code); without AVX2 and FMA
// screen_pick returns nullopt and the chain takes the double-precision pass.
#include "backend/sample_internal.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <optional>
#include <span>
#include <type_traits>
#include <vector>

#if defined(__AVX2__) && defined(__FMA__)
#include <immintrin.h>
#endif

namespace orcd::backend::detail {

#if defined(__AVX2__) && defined(__FMA__)
namespace {

// The screen's bins: twice the double pass's, so that flat logits (a spread of about 4.5 units) get 128 bins per unit
// instead of 64 and a crossing bin half the tokens to weigh exactly and select among (the flat benchmark 231 -> 205
// us; 2048 bins measured no better). The last is the tail bin.
constexpr int kScreenBins = 1024;
constexpr int kScreenTail = kScreenBins - 1;

// The single-precision screen of the pick without top-k (top-p and min-p: see screen_pick). Each token's bin and
// weight come from d = (mx - l) / T in f32 lanes: mx - l is split exactly into s + e (TwoSum), 1/T into hi + lo, so
// that d = s*hi + (s*lo + e*hi + the product's rounding) keeps its low bits (a plain f32 d would be off by up to
// 64 * 2^-23 units). Each token's weight is added to its bin's count (screen_histograms).
//
// The bin width adapts to the logits' spread (ScreenBins): b = 8, 16, ..., 256 bins per unit of d, the largest whose
// 1023 bins still hold every finite token (d <= the spread of the finite logits / T), else 8 with the tail bin as in
// bin_tokens. Flat logits (a spread of a few units) get fine bins, so a crossing bin holds a few thousand tokens
// instead of tens of thousands, and each weight is computed nearer 1, where f32 is more accurate.
//
// A token's weight is its bin's e^(-k/b) (a double table) times e^-x, x = r/b, r = b d - k in [0, 1), screened as
// 1 + q with q = sum_{i=1..5} (-r/b)^i / i! (Horner in f32, then 2^30 (1 + q) rounded to an integer). Its error
// against std::exp, absolute on e^-x: q's evaluation (five FMA roundings and a product, terms shrinking by 1/16 or
// more: under 2.1 * 2^-24 |q|, |q| <= 1.0001 / b), r's one rounding (2^-24 / b), the truncation ((1.0001 / b)^6 /
// 720: 5.3e-9 at b = 8), the fixed point's rounding (2^-31), d's own (about 2^-37 / b) and the table's (1e-15): at
// most 3.1 * 2^-24 / b + (1.0001 / b)^6 / 720 + 4.8e-10. Relative to e^-x >= e^(-1.0001 / b), times 1.1 for slack,
// that is eps = 3.6e-8 at b = 8 and 3.8e-9 at b = 64 (the fixed 1.25e-7 of a degree-5 polynomial of the weight itself
// before). From b = 64 on the sum stops at i = 3 (screen_degree): the truncation is then (1.0001 / b)^4 / 24 (2.5e-9
// at b = 64, 1.6e-10 at 128), and the evaluation's roundings only fewer; eps = 6.5e-9 at b = 64, 2.3e-9 at 128 (2.1e-9
// with degree 5). Bin masses (exact integer sums of the screened weights, times the bin's scale), their total and any
// sum of them are within eps of the definition's, up to the double sums' rounding (n * 2^-53) allowed for apart. The
// crossing bin's tokens are weighed with the definition's own expression, so the pick is the definition's token
// whenever the draw is farther than eps * (u * total + the mass before the crossing bin), plus the double sums'
// rounding, from the boundaries of the token it lands on.

// The polynomial's degree for a weight e^(-r/B), B = per_unit: 3 from B = 64 on, where the truncation
// (1.0001 / B)^4 / 24 is at most 2.5e-9, 1.6e-10 at B = 128 (a flat vocabulary's bins), under the f32 roundings'
// 1.4e-9 there; 5 below. Two FMAs per weight fewer, and four fewer coefficients held in registers.
int screen_degree(double per_unit) { return per_unit >= 64.0 ? 3 : 5; }

// The relative bound of a screened weight e^(-r/B) (the derivation above; `rounding` counts the f32 roundings of q, r
// and the coefficients, in units of 2^-24 |q|; the truncation is that of screen_degree(B), and a pass that evaluates a
// higher degree stays within it).
double screen_eps(double per_unit, double rounding) {
    const double x = 1.0001 / per_unit;
    const double truncation = screen_degree(per_unit) == 3 ? std::pow(x, 4) / 24.0 : std::pow(x, 6) / 720.0;
    return 1.1 * (rounding * 0x1.0p-24 / per_unit + truncation + 4.8e-10) / std::exp(-x);
}

// A screen binning: its bins per unit of d, their scales e^(-k/b), its relative weight bound and whether finite tokens
// can land in the tail bin (which counts them as 0: under n e^-127.875, only possible at b = 8).
struct ScreenBins {
    float per_unit = 8.f;
    const std::array<double, kScreenBins>* scale = nullptr;
    double eps = 0;
    bool tail = true;
};

// The binning for tokens whose d spans at most `spread` (+inf: unknown): the largest b with spread * b <= 1020, so
// that the f32 bins (t = d b rounded, at most 1021) stay below the tail bin; 8 with a tail otherwise.
ScreenBins screen_bins(double spread) {
    constexpr int kWidths = 6;  // b = 8 << j
    static const auto tables = [] {
        std::array<std::array<double, kScreenBins>, kWidths> t{};
        for (int j = 0; j < kWidths; ++j) {
            for (int k = 0; k < kScreenBins; ++k) t[j][k] = std::exp(-k / (kBinsPerUnit * (1 << j)));
        }
        return t;
    }();
    int j = kWidths - 1;
    while (j > 0 && !(spread * kBinsPerUnit * (1 << j) <= 1020.0)) --j;
    ScreenBins sb;
    const double b = kBinsPerUnit * (1 << j);
    sb.per_unit = static_cast<float>(b);
    sb.scale = &tables[static_cast<size_t>(j)];
    sb.tail = !(spread * b <= 1020.0);
    sb.eps = screen_eps(b, 3.1);
    return sb;
}

// Bins (clamped to kScreenTail) and fixed-point weights 2^30 e^-(d - k/b) of 8 tokens (0 in the tail bin),
// d = (mx - l) / T. A masked lane (`out`) goes to the tail bin with weight 0.
//
// With a second temperature T2 (Two), each token also gets e^-(r / (b T2)), r as above: its weight at T2 is its bin's
// e^(-k / (b T2)) times that, so one pass also fills a histogram at T2 on the same bins (which are logit intervals at
// either temperature). The same bound holds with b T2 for b (b T2 >= 8 keeps the terms shrinking by 1/16), plus one
// rounding of the coefficients -1/(b T2) and 1/(2 (b T2)^2), which are no longer exact.
struct ScreenLanes {
    __m256 mx, hi, lo, per_unit, c1, c2, c3, c4, c5;
    bool unit = false;          // temperature 1: hi = 1, lo = 0
    bool cubic = false;         // every weight's B (b, and b T2 with a second weight) is at least 64: degree 3
    __m256 t1, t2, t3, t4, t5;  // the second weight's coefficients
    // 2^30 (-1/B)^i / i! (the scaling by 2^30 is exact: it changes no rounding of q and saves a product per vector).
    static void coefficients(double c, __m256& a1, __m256& a2, __m256& a3, __m256& a4, __m256& a5) {
        a1 = _mm256_set1_ps(static_cast<float>(0x1.0p30 * c));
        a2 = _mm256_set1_ps(static_cast<float>(0x1.0p30 * c * c / 2));
        a3 = _mm256_set1_ps(static_cast<float>(0x1.0p30 * c * c * c / 6));
        a4 = _mm256_set1_ps(static_cast<float>(0x1.0p30 * c * c * c * c / 24));
        a5 = _mm256_set1_ps(static_cast<float>(0x1.0p30 * c * c * c * c * c / 120));
    }
    ScreenLanes(float max_logit, float temp, float bins_per_unit, float temp2 = 1.f) {
        const double inv = 1.0 / static_cast<double>(temp);
        const float h = static_cast<float>(inv);
        mx = _mm256_set1_ps(max_logit);
        hi = _mm256_set1_ps(h);
        lo = _mm256_set1_ps(static_cast<float>(inv - static_cast<double>(h)));
        unit = temp == 1.f;
        cubic = screen_degree(bins_per_unit) == 3 &&
                screen_degree(static_cast<double>(bins_per_unit) * static_cast<double>(temp2)) == 3;
        per_unit = _mm256_set1_ps(bins_per_unit);
        // (-1/b)^i / i!: c1 and c2 are exact (b is a power of 2).
        coefficients(-1.0 / bins_per_unit, c1, c2, c3, c4, c5);
        coefficients(-1.0 / (static_cast<double>(bins_per_unit) * static_cast<double>(temp2)), t1, t2, t3, t4, t5);
    }
    // 2^30 (1 + q), rounded, from 2^30 q / r by Horner (the coefficients a1..a5, or a1..a3 when Cubic).
    template <bool Cubic>
    static __m256i weigh(__m256 r, __m256 a1, __m256 a2, __m256 a3, __m256 a4, __m256 a5) {
        __m256 q = a3;
        if constexpr (!Cubic) q = _mm256_fmadd_ps(_mm256_fmadd_ps(a5, r, a4), r, a3);
        q = _mm256_fmadd_ps(q, r, a2);
        q = _mm256_fmadd_ps(q, r, a1);
        return _mm256_add_epi32(_mm256_set1_epi32(1 << 30), _mm256_cvtps_epi32(_mm256_mul_ps(q, r)));
    }
    // Unit: the temperature is 1 (hi = 1, lo = 0), where p = s and low = e exactly, so the product's three roundings
    // are left out with the same result (a -inf logit's NaN in r is masked either way). Clean: every logit is finite
    // and the bins hold the whole spread (t < 1022, below the tail bin), so no lane needs the tail's mask.
    template <bool Two, bool Masked, bool Unit = false, bool Clean = false, bool Cubic = false>
    void run(const float* l, __m256 out, __m256i& fixed, __m256i& fixed2, __m256i& bin) const {
        const __m256 b = _mm256_xor_ps(_mm256_loadu_ps(l), _mm256_set1_ps(-0.f));  // -l
        const __m256 s = _mm256_add_ps(mx, b);
        const __m256 bb = _mm256_sub_ps(s, mx);
        const __m256 e =
            _mm256_add_ps(_mm256_sub_ps(mx, _mm256_sub_ps(s, bb)), _mm256_sub_ps(b, bb));  // s + e = mx - l
        const __m256 p = Unit ? s : _mm256_mul_ps(s, hi);
        const __m256 low = Unit ? e : _mm256_fmadd_ps(s, lo, _mm256_fmadd_ps(e, hi, _mm256_fmsub_ps(s, hi, p)));
        const __m256 t = _mm256_mul_ps(p, per_unit);  // exact: b is a power of 2
        const __m256 tail = _mm256_set1_ps(static_cast<float>(kScreenTail));
        // The tail bin weighs 0 (a -inf logit gives t = +inf and NaN in r, masked here too), as does a masked lane.
        __m256 k, in_tail = _mm256_setzero_ps();
        if constexpr (Clean) {
            static_assert(!Masked);
            k = _mm256_floor_ps(t);
        } else if constexpr (Masked) {
            in_tail = _mm256_or_ps(out, _mm256_cmp_ps(t, tail, _CMP_NLT_UQ));
            k = _mm256_blendv_ps(_mm256_floor_ps(t), tail, in_tail);
        } else {
            k = _mm256_min_ps(_mm256_floor_ps(t), tail);
            in_tail = _mm256_cmp_ps(k, tail, _CMP_EQ_OQ);
        }
        const __m256 r = _mm256_fmadd_ps(low, per_unit, _mm256_sub_ps(t, k));
        fixed = weigh<Cubic>(r, c1, c2, c3, c4, c5);
        if constexpr (Two) fixed2 = weigh<Cubic>(r, t1, t2, t3, t4, t5);
        if constexpr (!Clean) {
            fixed = _mm256_andnot_si256(_mm256_castps_si256(in_tail), fixed);
            if constexpr (Two) fixed2 = _mm256_andnot_si256(_mm256_castps_si256(in_tail), fixed2);
        }
        bin = _mm256_cvttps_epi32(k);
    }
};

// The screen's pass over `logits`: every token's bin (u16) and the histogram of the weights. With `mask` (the bins of
// an earlier pass over the same tokens), the tokens whose earlier bin is `from` or later go to the tail bin with
// weight 0: a second pass over the kept whole bins of the first without gathering them.
//
// The histogram counts in units of 2^-30: a screened weight (0, or 2^30 (1 + q) rounded, at most 2^30) is an integer,
// and integer sums are exact, so a bin's mass is the exact sum of its tokens' screened weights. The scatter is then
// one integer add to memory per token. One histogram for all lanes (kSlots counts, the last 8 the tail's per lane):
// eight per-lane histograms (64 KiB with two weights) did not fit the development machine's L1 cache and cost more
// than the rare wait of two consecutive tokens in one bin (a bin of flat logits on fine bins holds about 1 % of them).
// With Two, both weights of a bin sit side by side (hist[2 k + 0 / 1]): one 128-bit add.
constexpr size_t kSlots = kScreenBins + 8;
//
// `clean`: every logit is finite and the binning has no tail (ScreenBins::tail false), so no token lands in the tail
// bin and the lanes skip its masks (ScreenLanes::run's Clean).
template <bool Two = false>
void screen_histograms(std::span<const float> logits, const ScreenLanes& lanes, bool clean, std::vector<uint16_t>& bins,
                       std::vector<uint64_t>& hist, const uint16_t* mask = nullptr, size_t from = 0) {
    constexpr size_t kStride = Two ? 2 : 1;
    const size_t n = logits.size();
    bins.resize(n);
    uint16_t* const bp = bins.data();  // held here: through the vector, each store reloaded its data pointer
    hist.assign(kStride * kSlots, 0);
    uint64_t* const h = hist.data();
    // A token's histogram slot: its bin, except that the tail bin's tokens (weight 0, and never read) go to a slot of
    // their lane's own, so that a masked vocabulary (most tokens -inf) does not chain every addition on one address.
    const __m256i tail_bin = _mm256_set1_epi32(kScreenTail);
    const __m256i lane_slot = _mm256_setr_epi32(kScreenBins, kScreenBins + 1, kScreenBins + 2, kScreenBins + 3,
                                                kScreenBins + 4, kScreenBins + 5, kScreenBins + 6, kScreenBins + 7);
    // Eight tokens' slots and weights are stored to a staging buffer and added to the histogram one step of the loop
    // later: scalar loads right after the vector stores they read waited on store-to-load forwarding (perf put a
    // quarter of the flat case's step on the first of them), while a step later the stores have reached the cache.
    struct Staged {
        alignas(32) int32_t offset[8];  // the tokens' slots in bytes from the histogram's start
        alignas(32) uint32_t weight[16];
    };
    // Both zeroed: the first step adds the other buffer's zero weights to bin 0, which saves a test in every step.
    std::array<Staged, 2> stage{};
    size_t cur = 0;
    auto stage_one = [&](__m256i fixed, __m256i fixed2, __m256i bin, auto clean_lanes) {
        Staged& st = stage[cur];
        __m256i slot = bin;
        if constexpr (!decltype(clean_lanes)::value) {
            slot = _mm256_blendv_epi8(bin, lane_slot, _mm256_cmpeq_epi32(bin, tail_bin));
        }
        // In bytes here, one vector shift, so that each token's address is one base-plus-index operand.
        _mm256_store_si256(reinterpret_cast<__m256i*>(st.offset), _mm256_slli_epi32(slot, Two ? 4 : 3));
        if constexpr (Two) {
            // Each token's two weights side by side, so that one zero-extending load makes the pair added to its
            // bin's two counts. The in-lane interleaves leave the pairs in token order 0 1 4 5 2 3 6 7 (kPairOf);
            // putting them in order took two lane-crossing permutes (perf: a tenth of the flat case's pass).
            _mm256_store_si256(reinterpret_cast<__m256i*>(st.weight), _mm256_unpacklo_epi32(fixed, fixed2));
            _mm256_store_si256(reinterpret_cast<__m256i*>(st.weight + 8), _mm256_unpackhi_epi32(fixed, fixed2));
        } else {
            _mm256_store_si256(reinterpret_cast<__m256i*>(st.weight), fixed);
        }
    };
    auto add_staged = [&](const Staged& st) {
        // Read back through pointers the compiler cannot see through: it would otherwise take each element out of
        // the register with an extract (two operations each) instead of one load.
        const int32_t* k = st.offset;
        const uint32_t* f = st.weight;
        asm("" : "+r"(k), "+r"(f));
        // The token of each staged pair (stage_one's interleaves); with one weight, token j is at weight[j].
        constexpr std::array<size_t, 8> kPairOf = {0, 1, 4, 5, 2, 3, 6, 7};
        for (size_t j = 0; j < 8; ++j) {
            auto* at = reinterpret_cast<uint64_t*>(reinterpret_cast<char*>(h) + k[Two ? kPairOf[j] : j]);
            if constexpr (Two) {
                const __m128i pair = _mm_cvtepu32_epi64(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(f + 2 * j)));
                _mm_storeu_si128(reinterpret_cast<__m128i*>(at),
                                 _mm_add_epi64(_mm_loadu_si128(reinterpret_cast<const __m128i*>(at)), pair));
            } else {
                at[0] += f[j];
            }
        }
    };
    auto scatter = [&](__m256i fixed, __m256i fixed2, __m256i bin, auto clean_lanes) {
        stage_one(fixed, fixed2, bin, clean_lanes);
        add_staged(stage[cur ^ 1]);
        cur ^= 1;
    };
    const __m256i last = _mm256_set1_epi32(static_cast<int32_t>(from) - 1);
    size_t i = 0;
    __m256i fixed, fixed2 = _mm256_setzero_si256(), bin;
    // The loop once per case, so that the unmasked pass (nearly every one) carries no mask test, the pass at
    // temperature 1 (top-p's first pass, the OpenAI default's) no product by 1 / T, a clean one no tail masks, and a
    // pass on fine bins the cubic.
    auto loop = [&](auto masked, auto unit, auto clean_lanes, auto cubic) {
        constexpr bool kMasked = decltype(masked)::value, kUnit = decltype(unit)::value;
        constexpr bool kClean = decltype(clean_lanes)::value, kCubic = decltype(cubic)::value;
        if constexpr (!kMasked && (!Two || kCubic)) {
            // Sixteen tokens a step when unmasked: the two groups' arithmetic chains (the Horner steps wait on each
            // other) are independent and interleave (OpenAI default 137 -> 122 us). With two weights of degree 5 the
            // sixteen tokens' values did not fit the registers (the flat case went from 231 to 294 us); with two
            // cubics and no tail masks they do (flat 181 -> 172 us).
            for (; i + 16 <= n; i += 16) {
                const __m256 none = _mm256_setzero_ps();
                __m256i fa, fa2 = _mm256_setzero_si256(), ba, fb, fb2 = _mm256_setzero_si256(), bb;
                lanes.run<Two, false, kUnit, kClean, kCubic>(logits.data() + i, none, fa, fa2, ba);
                lanes.run<Two, false, kUnit, kClean, kCubic>(logits.data() + i + 8, none, fb, fb2, bb);
                scatter(fa, fa2, ba, clean_lanes);
                scatter(fb, fb2, bb, clean_lanes);
                const __m256i pk = _mm256_permute4x64_epi64(_mm256_packus_epi32(ba, bb), 0xd8);  // u16 a0..a7 b0..b7
                _mm256_storeu_si256(reinterpret_cast<__m256i*>(bp + i), pk);
            }
        }
        for (; i + 8 <= n; i += 8) {
            __m256 out = _mm256_setzero_ps();
            if constexpr (kMasked) {
                const __m256i m = _mm256_cvtepu16_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(mask + i)));
                out = _mm256_castsi256_ps(_mm256_cmpgt_epi32(m, last));
            }
            lanes.run<Two, kMasked, kUnit, kClean, kCubic>(logits.data() + i, out, fixed, fixed2, bin);
            scatter(fixed, fixed2, bin, clean_lanes);
            const __m256i pk = _mm256_permute4x64_epi64(_mm256_packus_epi32(bin, bin), 0x08);  // u16 k0..k7
            _mm_storeu_si128(reinterpret_cast<__m128i*>(bp + i), _mm256_castsi256_si128(pk));
        }
    };
    using Y = std::true_type;
    using N = std::false_type;
    auto unmasked = [&](auto unit) {
        if (!clean) {
            if (lanes.cubic) {
                loop(N{}, unit, N{}, Y{});
            } else {
                loop(N{}, unit, N{}, N{});
            }
        } else if (lanes.cubic) {
            loop(N{}, unit, Y{}, Y{});
        } else {
            loop(N{}, unit, Y{}, N{});
        }
    };
    if (mask != nullptr) {
        loop(Y{}, N{}, N{}, N{});
    } else if (lanes.unit) {
        unmasked(Y{});
    } else {
        unmasked(N{});
    }
    if (i < n) {  // the last tokens, padded with -inf (tail bin, weight 0)
        alignas(32) float pad[8];
        alignas(16) uint16_t pad_mask[8] = {};
        std::fill(pad, pad + 8, -std::numeric_limits<float>::infinity());
        std::copy(logits.begin() + static_cast<std::ptrdiff_t>(i), logits.end(), pad);
        __m256 out = _mm256_setzero_ps();
        if (mask != nullptr) {
            std::copy(mask + i, mask + n, pad_mask);
            const __m256i m = _mm256_cvtepu16_epi32(_mm_load_si128(reinterpret_cast<const __m128i*>(pad_mask)));
            out = _mm256_castsi256_ps(_mm256_cmpgt_epi32(m, last));
        }
        lanes.run<Two, true>(pad, out, fixed, fixed2, bin);
        scatter(fixed, fixed2, bin, N{});
        alignas(32) int32_t kb[8];
        _mm256_store_si256(reinterpret_cast<__m256i*>(kb), bin);
        for (size_t j = 0; i + j < n; ++j) bp[i + j] = static_cast<uint16_t>(kb[j]);
    }
    add_staged(stage[cur ^ 1]);
}

// Bins [0, count)'s masses from the histogram (weight `which` of `stride`) times each bin's scale, the others
// 0; returns their total.
double screen_masses(const std::vector<uint64_t>& hist, const double* scale, std::array<double, kScreenBins>& mass,
                     size_t count = kScreenTail, size_t stride = 1, size_t which = 0) {
    double total = 0;
    mass.fill(0.0);
    for (size_t k = 0; k < count; ++k) {
        const uint64_t m = hist[k * stride + which];
        mass[k] = scale[k] * (static_cast<double>(m) * 0x1.0p-30);  // m < 2^48: exact in a double
        total += mass[k];
    }
    return total;
}

// The tokens in bin k (bins[j] == k), in id order: logits[j] and id ids[j] (j itself when ids is null).
// Sixty-four bins are compared at a time, four vectors of sixteen whose compares are or-ed into one test: a block
// without one (most: a bin of flat logits on fine bins holds well under 1 % of the tokens) costs four compares and
// one branch (one per sixteen before: the flat case's two scans 8 % of its step).
void collect_bin(std::span<const uint16_t> bins, std::span<const float> logits, const int32_t* ids, size_t k,
                 std::vector<Cand>& out) {
    out.clear();
    const size_t n = bins.size();
    auto id = [&](size_t j) { return ids != nullptr ? ids[j] : static_cast<TokenId>(j); };
    const __m256i want = _mm256_set1_epi16(static_cast<int16_t>(k));
    const uint16_t* const b = bins.data();
    auto take = [&](size_t t, __m256i eq) {
        auto hits = static_cast<uint32_t>(_mm256_movemask_epi8(eq));
        while (hits != 0) {
            const size_t j = t + static_cast<size_t>(__builtin_ctz(hits)) / 2;
            out.emplace_back(logits[j], id(j));
            hits &= hits - 1;
            hits &= hits - 1;  // two mask bits per 16-bit lane
        }
    };
    auto eq_at = [&](size_t t) {
        return _mm256_cmpeq_epi16(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(b + t)), want);
    };
    size_t t = 0;
    for (; t + 64 <= n; t += 64) {
        const __m256i e0 = eq_at(t), e1 = eq_at(t + 16), e2 = eq_at(t + 32), e3 = eq_at(t + 48);
        const __m256i any = _mm256_or_si256(_mm256_or_si256(e0, e1), _mm256_or_si256(e2, e3));
        if (_mm256_testz_si256(any, any)) continue;
        take(t, e0);
        take(t + 16, e1);
        take(t + 32, e2);
        take(t + 48, e3);
    }
    for (; t + 16 <= n; t += 16) take(t, eq_at(t));
    for (; t < n; ++t) {
        if (bins[t] == k) out.emplace_back(logits[t], id(t));
    }
}

// For each mask of 8 lanes, the positions of its set lanes in order (then zeros): the permutation that packs them.
const std::array<std::array<int32_t, 8>, 256>& pack_table() {
    alignas(32) static const std::array<std::array<int32_t, 8>, 256> table = [] {
        std::array<std::array<int32_t, 8>, 256> t{};
        for (size_t m = 0; m < 256; ++m) {
            size_t c = 0;
            for (int32_t j = 0; j < 8; ++j) {
                if ((m >> j) & 1) t[m][c++] = j;
            }
        }
        return t;
    }();
    return table;
}

// The tokens whose bin is below kc, packed in id order into scratch.kept_logit / kept_id (their count returned), and
// those of bin kc appended to `edge` (in id order). Eight at a time: the lanes' mask picks a permutation that moves
// the kept lanes to the front, and both vectors are stored whole (the buffers have 8 elements of slack), so a token
// costs no branch of its own.
// Not inlined: inside screen_pick its loop kept its pointers on the stack (perf showed the reloads).
__attribute__((noinline)) size_t gather_below(std::span<const uint16_t> bins, std::span<const float> work, size_t kc,
                                              SampleScratch& scratch, std::vector<Cand>& edge) {
    const size_t n = work.size();
    scratch.kept_logit.resize(n + 8);
    scratch.kept_id.resize(n + 8);
    float* const out_l = scratch.kept_logit.data();
    int32_t* const out_id = scratch.kept_id.data();
    const auto& table = pack_table();
    const __m256i limit = _mm256_set1_epi16(static_cast<int16_t>(kc));
    size_t c = 0, i = 0;
    auto pack8 = [&](size_t at, uint32_t mask) {
        const __m256i perm = _mm256_load_si256(reinterpret_cast<const __m256i*>(table[mask].data()));
        _mm256_storeu_ps(out_l + c, _mm256_permutevar8x32_ps(_mm256_loadu_ps(work.data() + at), perm));
        _mm256_storeu_si256(reinterpret_cast<__m256i*>(out_id + c),
                            _mm256_add_epi32(perm, _mm256_set1_epi32(static_cast<int32_t>(at))));
        c += static_cast<size_t>(__builtin_popcount(mask));
    };
    for (; i + 16 <= n; i += 16) {
        const __m256i v = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(bins.data() + i));
        // Bins are below 1024, so the signed compare is the unsigned one; packing the 16-bit results to bytes puts
        // tokens 0-7 in mask bits 0-7 and tokens 8-15 in bits 16-23 (the equal ones in bits 8-15 and 24-31).
        const __m256i lt = _mm256_cmpgt_epi16(limit, v);
        const __m256i eq = _mm256_cmpeq_epi16(limit, v);
        const auto m = static_cast<uint32_t>(_mm256_movemask_epi8(_mm256_packs_epi16(lt, eq)));
        if (m == 0) continue;
        if ((m & 0xff) != 0) pack8(i, m & 0xff);
        if (((m >> 16) & 0xff) != 0) pack8(i + 8, (m >> 16) & 0xff);
        for (uint32_t e = ((m >> 8) & 0xff) | ((m >> 16) & 0xff00); e != 0; e &= e - 1) {
            const size_t j = i + static_cast<size_t>(__builtin_ctz(e));
            edge.emplace_back(work[j], static_cast<TokenId>(j));
        }
    }
    for (; i < n; ++i) {
        if (bins[i] < kc) {
            out_l[c] = work[i];
            out_id[c++] = static_cast<int32_t>(i);
        } else if (bins[i] == kc) {
            edge.emplace_back(work[i], static_cast<TokenId>(i));
        }
    }
    return c;
}

}  // namespace

// The pick, after top-p and min-p (top-k off, the caller checks), on the screen. A first pass bins every token at
// temperature 1 when top-p is on (its cut is defined there) and at the pick's temperature otherwise. A bin is a logit
// interval (the bin is monotonic in the logit), so the kept set, a prefix of the chain's order, is whole bins [0, kc)
// and then the chain's first m tokens of bin kc (edge[0, m) in any order, collected and weighed exactly, found by
// crossing_in): top-p's crossing bin, or min-p's threshold bin (a fixed distance -ln(min_p) from the top, every token
// of it tested exactly) when that comes first. At a pick temperature other than 1, a second screen pass bins and
// weighs the kept whole bins' tokens at that temperature: gathered first when they are a small part of the
// vocabulary (a peaked distribution), or in place, the others masked to the tail bin, when they are most of it (flat
// logits: the gather cost as much as the pass). The pick then walks the second pass's bins, and the edge after them.
// `mn` is the smallest finite logit (it sets the bin width); `finite`: every logit is (no -inf). The sorted
// definition's token, or nullopt when a crossing lies within the screen's error bound of a boundary (or min-p's
// threshold within rounding of a token or a bin boundary).
std::optional<TokenId> screen_pick(std::span<const float> work, float mx, float mn, bool finite, const SampleStep& st,
                                   SampleScratch& scratch) {
    const size_t n = work.size();
    const bool cut = st.top_p < 1.f;
    const float temp = st.temperature;
    const double spread = static_cast<double>(mx) - static_cast<double>(mn);
    const ScreenBins sb1 = screen_bins(cut ? spread : spread / static_cast<double>(temp));
    // Top-p at a pick temperature T other than 1, on fine bins (a narrow spread: flat logits, where top-p keeps most
    // of the vocabulary): the first pass weighs every token at T too (ScreenLanes' second weight), on the same bins,
    // instead of a second pass over the kept tokens. On wide bins (a language model's usual spread, where the kept set
    // is a small part of the vocabulary) the second weight costs more than a second pass over the kept tokens alone.
    const double per_unit_t = static_cast<double>(sb1.per_unit) * static_cast<double>(temp);
    // Fine bins here: b >= 64, a spread under 16 units (it was b >= 32 with 512 bins: the same spreads).
    const bool two = cut && temp != 1.f && sb1.per_unit >= 64.f && per_unit_t >= 8.0;
    const bool clean = finite && !sb1.tail;
    if (two) {
        screen_histograms<true>(work, ScreenLanes(mx, 1.f, sb1.per_unit, temp), clean, scratch.bin16, scratch.hist);
    } else {
        screen_histograms(work, ScreenLanes(mx, cut ? 1.f : temp, sb1.per_unit), clean, scratch.bin16, scratch.hist);
    }
    const size_t stride = two ? 2 : 1;
    std::array<double, kScreenBins> mass{};
    const double total = screen_masses(scratch.hist, sb1.scale->data(), mass, kScreenTail, stride);
    // What the masses neglect beyond eps (absolute; a total is >= 1, the top token's exact weight): the tail bin's
    // finite tokens, counted as 0, under n e^-127.875 together (none when the bins hold the whole spread; 1e-27 a
    // token is the double pass's bound, e^-63.875, kept as the larger).
    auto neglect_of = [](const ScreenBins& sb, size_t count) {
        return sb.tail ? static_cast<double>(count) * 1e-27 : 0;
    };
    const double neglect = neglect_of(sb1, n);
    const double mxd = mx;
    // The definition's own weights of a token: exp((l - max) / T) in double, at temperature 1 and the pick's.
    auto weight_1 = [&](const Cand& t) { return std::exp(static_cast<double>(t.first) - mxd); };
    auto weight_t = [&](const Cand& t) {
        return std::exp((static_cast<double>(t.first) - mxd) / static_cast<double>(temp));
    };
    // The double sums' own rounding (as bin_tokens' tolerance, less its polynomial term), and what the masses neglect.
    auto tolerance = [&](double tot, double neg) {
        return (4.0 * static_cast<double>(n) + 64.0) * std::numeric_limits<double>::epsilon() * tot + neg;
    };
    const std::span<const uint16_t> bins = scratch.bin16;
    size_t kc = static_cast<size_t>(kScreenTail), m = 0;
    std::vector<Cand>& edge = scratch.edge;  // reused: a flat vocabulary's edge holds thousands of tokens
    edge.clear();
    // At a pick temperature other than 1 the kept whole bins get a second pass; gathered (by the same scan that
    // collects the edge) when they hold under a quarter of the vocabulary.
    const bool second = cut && temp != 1.f && !two;
    bool gathered = false;
    size_t kept = 0;
    if (cut) {
        const double tol = tolerance(total, neglect);
        const double target = st.top_p * total;
        double before = 0;
        size_t kp = 0;
        for (; kp < static_cast<size_t>(kScreenTail); ++kp) {
            if (before + mass[kp] >= target) break;
            before += mass[kp];
        }
        if (kp == static_cast<size_t>(kScreenTail)) return std::nullopt;
        // Min-p keeps p >= min_p * p_max, i.e. e^(l - max) >= min_p: the tokens within dm = -ln(min_p) of the top,
        // bins [0, km) whole and some of bin km. A threshold on a bin boundary is left to the exact pass (which side
        // a token at the boundary lands on is the f32 binning's rounding).
        const double mp = st.min_p;
        size_t km = static_cast<size_t>(kScreenTail) + 1;  // none
        if (mp > 0.0) {
            const double tb = -std::log(mp) * static_cast<double>(sb1.per_unit);
            // A token's f32 bin t = fl(mx - l) b (temperature 1) is within 2^-24 t of d b (1e-6 bins, the
            // bound before, is exceeded from t = 16.8 on); 3e-7 (t + 1) leaves room.
            if (std::abs(tb - std::round(tb)) < 3e-7 * (tb + 1)) return std::nullopt;
            km = static_cast<size_t>(std::min(std::floor(tb), static_cast<double>(kScreenTail) + 1));
        }
        kc = std::min(kp, km);
        if (second) {
            // The kept whole bins' token count, within 1 - e^(-1/b) below (each weight is at most 2^30 in fixed point
            // and above e^(-1/b) 2^30).
            uint64_t w = 0;
            for (size_t k = 0; k < kc; ++k) w += scratch.hist[k];
            gathered = static_cast<double>(w) * 0x1.0p-30 < 0.25 * static_cast<double>(n);
        }
        if (gathered) {
            kept = gather_below(bins, work, kc, scratch, edge);
        } else {
            collect_bin(bins, work, nullptr, kc, edge);
        }
        m = edge.size();
        if (kc == kp) {
            // 1.001: the bound on the true masses from the screened ones, (1 - eps)^-1 and the sums' rounding.
            const double margin = sb1.eps * 1.001 * (target + before) + tol;
            const std::optional<size_t> j = crossing_in(edge, edge.size(), weight_1, before, target, true, margin);
            if (!j) return std::nullopt;
            m = *j + 1;
        }
        if (km == kc) {
            // The first token of the edge under min-p ends the kept set (within rounding of it: the exact pass; the
            // definition compares p[k] >= min_p * p[0], both divided by the sum).
            size_t keep = 0;
            for (size_t j = 0; j < m; ++j) {
                const double e = weight_1(edge[j]);
                if (std::abs(e - mp) <= 1e-13 * mp) return std::nullopt;
                if (e >= mp) std::swap(edge[keep++], edge[j]);
            }
            m = keep;
        }
    }

    // The pick over bins [0, kc) (masses `pm`, bins `pb` of the tokens `pl` / ids `pid`, error bound `eps`) and then
    // edge[0, m).
    auto pick = [&](const std::array<double, kScreenBins>& pm, double whole, std::span<const uint16_t> pb,
                    std::span<const float> pl, const int32_t* pid, double eps, double neg) -> std::optional<TokenId> {
        double kept_mass = whole;
        for (size_t j = 0; j < m; ++j) kept_mass += weight_t(edge[j]);
        // The kept mass is within eps of the definition's, so the draw moves by at most eps * target, and the
        // cumulative sum before the crossing bin by eps * before.
        const double tol = tolerance(std::max(kept_mass, total), neg);
        const double target = st.u * kept_mass;
        double before = 0;
        size_t kb = 0;
        for (; kb < kc; ++kb) {
            if (target < before + pm[kb]) break;
            before += pm[kb];
        }
        const double margin = eps * 1.001 * (target + before) + 2 * tol;
        std::vector<Cand>& inside = scratch.cand;
        size_t count = m;
        if (kb < kc) {
            collect_bin(pb, pl, pid, kb, inside);
            count = inside.size();
        }
        std::vector<Cand>& walk = kb < kc ? inside : edge;
        const std::optional<size_t> j = crossing_in(walk, count, weight_t, before, target, false, margin);
        if (!j) return std::nullopt;
        return walk[*j].second;
    };
    if (two) {
        // The kept whole bins' masses at T from the first pass's second weight: bin k scaled by e^(-k / (b T)).
        std::array<double, kScreenBins> scale_t{};
        for (size_t k = 0; k < kc; ++k) scale_t[k] = std::exp(-static_cast<double>(k) / per_unit_t);
        std::array<double, kScreenBins> mass_t{};
        const double whole = screen_masses(scratch.hist, scale_t.data(), mass_t, kc, 2, 1);
        return pick(mass_t, whole, bins, work, nullptr, screen_eps(per_unit_t, 4.2), neglect);
    }
    if (!second) {
        double whole = 0;
        for (size_t k = 0; k < kc; ++k) whole += mass[k];
        return pick(mass, whole, bins, work, nullptr, sb1.eps, neglect);
    }
    // The pick at its own temperature over the kept whole bins' tokens: their second pass's bins are again logit
    // intervals, all before the edge's tokens, so those bins then the edge are the kept set in the chain's order. The
    // kept tokens' d at temperature 1 is below kc / b (the f32 bin, rounded down), which bounds their spread.
    const double kept_spread = std::min(spread, (static_cast<double>(kc) + 1) / static_cast<double>(sb1.per_unit));
    const ScreenBins sb2 = screen_bins(kept_spread / static_cast<double>(temp));
    const ScreenLanes lanes2(mx, temp, sb2.per_unit);
    std::array<double, kScreenBins> mass_t{};
    const size_t pass2_n = gathered ? kept : n;
    if (gathered) {
        // The gathered tokens are of bins below the first pass's tail: all finite.
        screen_histograms(std::span<const float>(scratch.kept_logit.data(), kept), lanes2, !sb2.tail, scratch.kept_bin,
                          scratch.hist);
    } else {
        screen_histograms(work, lanes2, false, scratch.kept_bin, scratch.hist, bins.data(), kc);
    }
    const double whole = screen_masses(scratch.hist, sb2.scale->data(), mass_t);
    kc = static_cast<size_t>(kScreenTail);  // the second pass's bins: all of them are kept
    const std::span<const float> pl = gathered ? std::span<const float>(scratch.kept_logit.data(), kept) : work;
    return pick(mass_t, whole, scratch.kept_bin, pl, gathered ? scratch.kept_id.data() : nullptr, sb2.eps,
                neglect_of(sb2, pass2_n));
}
#else
std::optional<TokenId> screen_pick(std::span<const float>, float, float, bool, const SampleStep&, SampleScratch&) {
    return std::nullopt;
}
#endif

}  // namespace orcd::backend::detail
