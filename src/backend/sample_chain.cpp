#include "backend/sample_chain.h"

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <limits>
#include <optional>
#include <tuple>
#include <unordered_set>

#include "common/error.h"

#if defined(__AVX2__) && defined(__FMA__)
#include <immintrin.h>
#endif

// How the chain avoids sorting the vocabulary while returning the token the sorted definition (the header's contract)
// returns:
// - top-k (0 < k < n): the k best (logit descending, id ascending) are selected in one pass against the worst kept
//   one, then sorted; top-p, min-p and the pick then run exactly as on the sorted list, on the same k values.
// - top-k off: every later step only walks a prefix of the sorted list: up to the top-p crossing, up to the first
//   token under min-p, up to the token whose cumulative probability first exceeds u. That prefix is found without a
//   sort: the tokens are binned by their distance from the top logit, the bins' probability masses locate the bin
//   where the cumulative sum crosses, and only that bin (and, for a kept prefix, the bins before it) is sorted.
//   The masses are summed in a different order than the sorted definition sums them, so a crossing is accepted only
//   when it is farther from u (or top_p) than the two sums' combined rounding bound; within the bound (about one
//   draw in 10^5 at a 152k vocabulary) the chain runs the sorted definition itself. The pick is therefore the same
//   token as the sorted definition's, bit for bit, for the same logits and u.
//   Without min-p (and with top-p only at temperatures 0.5 to 2), a first pass in single precision (screen_pick)
//   computes the bins' masses eight tokens at a time and weighs only the crossing bins' tokens exactly; top-p at a
//   temperature other than 1 gets a second weight per token on the same bins. A crossing within the single-precision
//   error bound of a boundary (a few draws in a hundred) runs the double-precision pass above instead.
// - non-finite logits: NaN counts as -inf (never picked while a finite logit exists); a +inf logit, or no finite
//   logit at all, takes the sorted definition. Logits without NaN are read in place when there is no penalty.

namespace orcd::backend {

void check_sample_step(const SampleStep& s) {
    auto bad = [](const char* what, double v, const char* want) {
        throw Error(ErrorCode::InvalidArgument,
                    fmt::format("sampling: {} = {} is out of range: expected {}", what, v, want));
    };
    if (!std::isfinite(s.temperature)) bad("temperature", s.temperature, "a finite number (0 = greedy)");
    if (!(s.top_p > 0.f && s.top_p <= 1.f)) bad("top_p", s.top_p, "0 < top_p <= 1");
    if (!(s.min_p >= 0.f && s.min_p <= 1.f)) bad("min_p", s.min_p, "0 <= min_p <= 1");
    if (!(s.repeat_penalty > 0.f) || !std::isfinite(s.repeat_penalty)) {
        bad("repeat_penalty", s.repeat_penalty, "a positive number (1 = off)");
    }
    if (!(s.u >= 0.0 && s.u < 1.0)) bad("u", s.u, "0 <= u < 1");
}

TokenId argmax_token(std::span<const float> logits) {
    TokenId best = -1;
    for (size_t i = 0; i < logits.size(); ++i) {
        if (std::isnan(logits[i])) continue;
        if (best < 0 || logits[i] > logits[static_cast<size_t>(best)]) best = static_cast<TokenId>(i);
    }
    return best < 0 ? 0 : best;
}

namespace {

using Cand = std::pair<float, TokenId>;

// The chain's order: logit descending, ties by id ascending (a strict total order on finite and infinite logits).
bool better(const Cand& a, const Cand& b) { return a.first > b.first || (a.first == b.first && a.second < b.second); }

// Probabilities of sorted candidates at a temperature, as the sorted definition computes them (in double, the top
// logit subtracted).
std::vector<double> probs(const std::vector<Cand>& cand, float temp) {
    std::vector<double> p(cand.size());
    const double mx = cand[0].first;
    double z = 0;
    for (size_t i = 0; i < cand.size(); ++i) z += p[i] = std::exp((cand[i].first - mx) / temp);
    for (double& v : p) v /= z;
    return p;
}

// top-p -> min-p -> the pick on sorted candidates: the sorted definition's steps after top-k.
TokenId finish_sorted(std::vector<Cand>& cand, const SampleStep& s, bool apply_top_p) {
    if (apply_top_p && s.top_p < 1.f) {
        const auto p = probs(cand, 1.f);
        double cum = 0;
        size_t k = 0;
        while (k < p.size()) {
            cum += p[k++];
            if (cum >= s.top_p) break;
        }
        cand.resize(k);
    }
    if (s.min_p > 0.f) {
        const auto p = probs(cand, 1.f);
        size_t k = 1;
        while (k < p.size() && p[k] >= s.min_p * p[0]) ++k;
        cand.resize(k);
    }
    const auto p = probs(cand, s.temperature);
    double cum = 0;
    for (size_t i = 0; i < p.size(); ++i) {
        cum += p[i];
        if (s.u < cum) return cand[i].second;
    }
    return cand.back().second;  // u within rounding of 1
}

// dst = src with NaN replaced by -inf (src may equal dst); returns the maximum (-inf when there is none).
float copy_clean_max(const float* src, float* dst, size_t n) {
    constexpr float kNegInf = -std::numeric_limits<float>::infinity();
    size_t i = 0;
    float mx = kNegInf;
#if defined(__AVX2__) && defined(__FMA__)
    const __m256 neg_inf = _mm256_set1_ps(kNegInf);
    __m256 m = neg_inf;
    for (; i + 8 <= n; i += 8) {
        __m256 v = _mm256_loadu_ps(src + i);
        v = _mm256_blendv_ps(v, neg_inf, _mm256_cmp_ps(v, v, _CMP_UNORD_Q));
        _mm256_storeu_ps(dst + i, v);
        m = _mm256_max_ps(m, v);
    }
    alignas(32) float lanes[8];
    _mm256_store_ps(lanes, m);
    for (float v : lanes) mx = v > mx ? v : mx;
#endif
    for (; i < n; ++i) {
        const float v = src[i] != src[i] ? kNegInf : src[i];
        dst[i] = v;
        mx = v > mx ? v : mx;
    }
    return mx;
}

// The maximum of src ignoring NaN (-inf when there is none), and whether src holds a NaN: one read-only pass, so that
// logits without NaN (nearly always) are used in place instead of copied.
std::pair<float, bool> max_and_nan(const float* src, size_t n) {
    constexpr float kNegInf = -std::numeric_limits<float>::infinity();
    size_t i = 0;
    float mx = kNegInf;
    bool nan = false;
#if defined(__AVX2__) && defined(__FMA__)
    __m256 m0 = _mm256_set1_ps(kNegInf), m1 = m0;
    __m256 un = _mm256_setzero_ps();
    for (; i + 16 <= n; i += 16) {
        const __m256 a = _mm256_loadu_ps(src + i), b = _mm256_loadu_ps(src + i + 8);
        // max_ps returns its second operand when either is NaN: a NaN element leaves the running maximum as it is.
        m0 = _mm256_max_ps(a, m0);
        m1 = _mm256_max_ps(b, m1);
        un = _mm256_or_ps(un, _mm256_cmp_ps(a, b, _CMP_UNORD_Q));
    }
    alignas(32) float lanes[8];
    _mm256_store_ps(lanes, _mm256_max_ps(m0, m1));
    for (float v : lanes) mx = v > mx ? v : mx;
    nan = _mm256_movemask_ps(un) != 0;
#endif
    for (; i < n; ++i) {
        if (src[i] != src[i]) {
            nan = true;
        } else {
            mx = src[i] > mx ? src[i] : mx;
        }
    }
    return {mx, nan};
}

// The sorted definition: the whole vocabulary sorted, then truncated to top-k.
TokenId sample_sorted(std::span<const float> work, const SampleStep& s, SampleScratch& scratch) {
    ++scratch.sorted_fallbacks;
    std::vector<Cand>& cand = scratch.cand;
    const size_t n = work.size();
    cand.resize(n);
    for (size_t i = 0; i < n; ++i) cand[i] = {work[i], static_cast<TokenId>(i)};
    std::sort(cand.begin(), cand.end(), better);
    if (s.top_k > 0 && static_cast<size_t>(s.top_k) < n) cand.resize(static_cast<size_t>(s.top_k));
    return finish_sorted(cand, s, true);
}

// The k best candidates, sorted: one pass keeping a heap of the k best seen so far (its front the worst of them).
// Ids arrive in ascending order, so a later token with the front's logit never beats it: a token enters only with
// a strictly greater logit, one comparison for most of the vocabulary.
void select_top_k(std::span<const float> work, size_t k, std::vector<Cand>& cand) {
    cand.resize(k);
    for (size_t i = 0; i < k; ++i) cand[i] = {work[i], static_cast<TokenId>(i)};
    std::make_heap(cand.begin(), cand.end(), better);
    auto offer = [&](size_t i) {
        if (work[i] > cand.front().first) {
            std::pop_heap(cand.begin(), cand.end(), better);
            cand.back() = {work[i], static_cast<TokenId>(i)};
            std::push_heap(cand.begin(), cand.end(), better);
        }
    };
    // Eight at a time against the worst kept logit, which only grows: a block where none beats it (nearly all, once
    // the heap holds good tokens) costs one vector compare instead of eight compare-and-branches.
    size_t i = k;
    for (; i + 8 <= work.size(); i += 8) {
        const float worst = cand.front().first;
        bool any = false;
        for (size_t j = 0; j < 8; ++j) any |= work[i + j] > worst;
        if (!any) continue;
        for (size_t j = 0; j < 8; ++j) offer(i + j);
    }
    for (; i < work.size(); ++i) offer(i);
    std::sort(cand.begin(), cand.end(), better);
}

// Bins of the distance d = (max logit - logit) / temperature: 8 per unit, the last one (d >= 63.875) holding the
// tail, whose tokens count as weight 0 (each under e^-63.875 = 2e-28 of the top token's weight 1; the bound of all
// of them together is part of the tolerance).
constexpr int kBins = 512;
constexpr double kBinsPerUnit = 8.0;
constexpr int kTailBin = kBins - 1;

// e^(-k / 8) for each bin k (std::exp, correctly rounded to within one unit): a token's weight e^-d factors into its
// bin's e^(-k/8) and e^-(d - k/8), so the per-token work is a short polynomial and each bin's mass is one product.
const std::array<double, kBins>& bin_scale() {
    static const std::array<double, kBins> scale = [] {
        std::array<double, kBins> s{};
        for (int k = 0; k < kBins; ++k) s[k] = std::exp(-k / kBinsPerUnit);
        return s;
    }();
    return scale;
}

// e^-r for 0 <= r < 1/8: the degree-7 Taylor polynomial (remainder under r^8/8! < 1.5e-12 relative), in a form the
// compiler vectorizes.
inline double exp_small(double r) {
    const double x = -r;
    double p = 1.0 / 5040.0;
    p = p * x + 1.0 / 720.0;
    p = p * x + 1.0 / 120.0;
    p = p * x + 1.0 / 24.0;
    p = p * x + 1.0 / 6.0;
    p = p * x + 0.5;
    p = p * x + 1.0;
    return p * x + 1.0;
}

// The tokens' bins and unnormalized probabilities at a temperature (views into the scratch; a token's weight is
// scale[bin] * frac), with each bin's mass.
struct Binned {
    std::span<const double> frac;  // e^-(d - bin/8); 0 in the tail bin
    std::span<const int32_t> bin;
    const std::array<double, kBins>* scale = nullptr;
    std::array<double, kBins> mass{};
    double total = 0;
    // Bound on |cumulative sums here - the sorted definition's|, relative to the total (>= 1: the top token's weight
    // is exactly 1): both sum at most n positive terms in double (at most n units of rounding each); the polynomial
    // (1.5e-12), the bin's scale, the product and d's own rounding (d <= 64, two units) differ from std::exp by under
    // 2e-12 relative; the tail's tokens, counted as 0, weigh under n * 2e-28.
    double tolerance = 0;
    double weight(size_t i) const { return (*scale)[static_cast<size_t>(bin[i])] * frac[i]; }
};

Binned bin_tokens(std::span<const float> work, double mx, float temp, SampleScratch& scratch) {
    const size_t n = work.size();
    scratch.weight.resize(n);
    scratch.bin.resize(n);
    double* e = scratch.weight.data();
    int32_t* bin = scratch.bin.data();
    const double inv = 1.0 / temp;
    const float* w = work.data();
    for (size_t i = 0; i < n; ++i) {
        // d >= 0 (+inf for a -inf logit); the bin is floor(8 d) clamped to the tail, monotonic in the logit, so a
        // token with a higher logit never lands in a later bin. d - k/8 is exact (Sterbenz: both within 1/8).
        const double d = (mx - static_cast<double>(w[i])) * inv;
        const double t = d * kBinsPerUnit;
        const double k = std::floor(t < kTailBin ? t : double(kTailBin));
        const double f = exp_small(d - k * (1.0 / kBinsPerUnit));
        e[i] = k < kTailBin ? f : 0.0;
        bin[i] = static_cast<int32_t>(k);
    }
    Binned b;
    b.frac = scratch.weight;
    b.bin = scratch.bin;
    b.scale = &bin_scale();
    // Four interleaved histograms, so that consecutive tokens in one bin do not wait on each other's addition.
    std::array<std::array<double, kBins>, 4> part{};
    size_t i = 0;
    for (; i + 4 <= n; i += 4) {
        for (size_t j = 0; j < 4; ++j) part[j][bin[i + j]] += e[i + j];
    }
    for (; i < n; ++i) part[0][bin[i]] += e[i];
    for (int k = 0; k < kBins; ++k) b.mass[k] = (*b.scale)[k] * ((part[0][k] + part[1][k]) + (part[2][k] + part[3][k]));
    for (double m : b.mass) b.total += m;
    b.tolerance = (4.0 * static_cast<double>(n) + 64.0) * std::numeric_limits<double>::epsilon() + 2e-12 +
                  static_cast<double>(n) * 1e-27;
    return b;
}

// Appends the tokens whose bin passes `keep` to `out`, in id order. Sixteen at a time: a block without one costs a
// vector compare, and most blocks have none (the crossing bin is usually near the top); a scalar test and branch per
// token cost a third of the OpenAI default's step.
template <class Keep>
void collect_where(std::span<const float> work, std::span<const int32_t> bins, Keep keep, std::vector<Cand>& out) {
    const size_t n = bins.size();
    size_t i = 0;
    for (; i + 16 <= n; i += 16) {
        int any = 0;
        for (size_t j = 0; j < 16; ++j) any |= keep(bins[i + j]) ? 1 : 0;
        if (any == 0) continue;
        for (size_t j = i; j < i + 16; ++j) {
            if (keep(bins[j])) out.emplace_back(work[j], static_cast<TokenId>(j));
        }
    }
    for (; i < n; ++i) {
        if (keep(bins[i])) out.emplace_back(work[i], static_cast<TokenId>(i));
    }
}

// The tokens of bin k in the chain's order.
std::vector<Cand> sorted_bin(std::span<const float> work, const Binned& b, int32_t k) {
    std::vector<Cand> out;
    collect_where(
        work, b.bin, [k](int32_t bk) { return bk == k; }, out);
    std::sort(out.begin(), out.end(), better);
    return out;
}

// The first bin whose running mass crosses `target` (`inclusive`: reaches it, else exceeds it), with the mass of the
// bins before it; nullopt when rounding leaves the total short of the target.
struct BinCrossing {
    int32_t bin;
    double before;
};
std::optional<BinCrossing> crossing_bin(const Binned& b, double target, bool inclusive) {
    double before = 0;
    for (int32_t k = 0; k < kBins; ++k) {
        const double cum = before + b.mass[k];
        if (inclusive ? cum >= target : target < cum) return BinCrossing{k, before};
        before = cum;
    }
    return std::nullopt;
}

// The sorted prefix up to and including the first token whose cumulative probability (at the binning's temperature)
// exceeds `frac` (`inclusive`: reaches it). nullopt when the crossing lies within the rounding tolerance of a
// boundary, or no token crosses (rounding leaves frac beyond the total): the caller then runs the sorted definition.
// `whole_prefix` false: only the crossing token is returned (the pick needs no more).
std::optional<std::vector<Cand>> crossing_prefix(std::span<const float> work, const Binned& b, double frac,
                                                 bool inclusive, bool whole_prefix) {
    const double target = frac * b.total;
    const double margin = b.tolerance * b.total;
    auto crosses = [&](double cum) { return inclusive ? cum >= target : target < cum; };
    const std::optional<BinCrossing> at = crossing_bin(b, target, inclusive);
    if (!at) return std::nullopt;
    const int32_t bin = at->bin;
    const std::vector<Cand> inside = sorted_bin(work, b, bin);
    double cum = at->before;
    size_t j = 0;
    for (; j < inside.size(); ++j) {
        const double prev = cum;
        cum += b.weight(static_cast<size_t>(inside[j].second));
        if (crosses(cum)) {
            if (target - prev <= margin || cum - target <= margin) return std::nullopt;
            break;
        }
    }
    if (j == inside.size()) return std::nullopt;
    std::vector<Cand> out;
    if (whole_prefix) {
        collect_where(
            work, b.bin, [bin](int32_t k) { return k < bin; }, out);
        std::sort(out.begin(), out.end(), better);
        out.insert(out.end(), inside.begin(), inside.begin() + static_cast<std::ptrdiff_t>(j) + 1);
    } else {
        out.push_back(inside[j]);
    }
    return out;
}

#if defined(__AVX2__) && defined(__FMA__)
// The single-precision screen of the pick without top-k or min-p (top-p: see screen_pick). Each token's bin and
// weight come from d = (mx - l) / T as bin_tokens defines them, in f32 lanes: mx - l is split exactly into s + e
// (TwoSum), 1/T into hi + lo, so that d = s*hi + (s*lo + e*hi + the product's rounding) keeps its low bits (a plain
// f32 d would be off by up to 64 * 2^-23 units, a 4e-6 relative weight error in the tail bins). The weight
// e^-(d - k/8) is a degree-5 polynomial in r8 = 8 (d - k/8) in [0, 1), and each lane adds it to its own histogram
// (screen_histograms).
//
// Error of a token's screened weight relative to the definition's std::exp: the polynomial's truncation
// (r^6 / 720 <= 5.3e-9 at r = 1/8) and its f32 Horner rounding (under 1.14 * 2^-24 = 6.8e-8 on values >= 0.88), the
// coefficients' rounding (under 1e-8), r8's one rounding (7.5e-9), the neglected e*lo (2^-48 relative): about
// 1.0e-7 in all; a second weight e^-c(d - k/8) (screen_pick's top-p at another temperature) adds the rounding of
// c r8 and of c itself (7.5e-9 each): under 1.2e-7, taken as kScreenEps = 1.25e-7 for both. Bin masses (exact sums
// of the screened weights, times the bin's scale), their total and any sum of them are within kScreenEps of the
// definition's, up to the double sums' rounding (n * 2^-53) allowed for apart. The crossing bin's tokens are weighed
// with the definition's own expression, so the pick is the definition's token whenever the draw is farther than
// kScreenEps * (u * total + the mass before the crossing bin), plus the double sums' rounding, from the boundaries of
// the token it lands on.
constexpr double kScreenEps = 1.25e-7;

// e^(-r8/8) for r8 in [0, 1): the degree-5 Taylor polynomial, coefficients (-1/8)^i / i!.
inline __m256 screen_poly(__m256 r8) {
    __m256 f = _mm256_set1_ps(-1.f / 3932160.f);
    f = _mm256_fmadd_ps(f, r8, _mm256_set1_ps(1.f / 98304.f));
    f = _mm256_fmadd_ps(f, r8, _mm256_set1_ps(-1.f / 3072.f));
    f = _mm256_fmadd_ps(f, r8, _mm256_set1_ps(1.f / 128.f));
    f = _mm256_fmadd_ps(f, r8, _mm256_set1_ps(-1.f / 8.f));
    return _mm256_fmadd_ps(f, r8, _mm256_set1_ps(1.f));
}

// Bins (clamped to kTailBin) and f32 weights e^-(d - k/8) of 8 tokens (0 in the tail bin), d = (mx - l) / T. With
// kSecond, also e^-c(d - k/8) for a factor c in (0, 1]: the weight at a second temperature relative to its bin's
// scale e^(-c k/8), on the same bins (c r8 stays in [0, 1), so the polynomial's bound holds for it too).
struct ScreenLanes {
    __m256 mx, hi, lo, c;
    template <bool kSecond>
    void run(const float* l, __m256& frac, __m256& frac2, __m256i& bin) const {
        const __m256 b = _mm256_xor_ps(_mm256_loadu_ps(l), _mm256_set1_ps(-0.f));  // -l
        const __m256 s = _mm256_add_ps(mx, b);
        const __m256 bb = _mm256_sub_ps(s, mx);
        const __m256 e =
            _mm256_add_ps(_mm256_sub_ps(mx, _mm256_sub_ps(s, bb)), _mm256_sub_ps(b, bb));  // s + e = mx - l
        const __m256 p = _mm256_mul_ps(s, hi);
        const __m256 low = _mm256_fmadd_ps(s, lo, _mm256_fmadd_ps(e, hi, _mm256_fmsub_ps(s, hi, p)));
        const __m256 t = _mm256_mul_ps(p, _mm256_set1_ps(8.f));
        const __m256 tail = _mm256_set1_ps(static_cast<float>(kTailBin));
        const __m256 k = _mm256_min_ps(_mm256_floor_ps(t), tail);
        const __m256 r8 = _mm256_fmadd_ps(low, _mm256_set1_ps(8.f), _mm256_sub_ps(t, k));
        // The tail bin weighs 0 (a -inf logit gives NaN in r8, masked here too).
        const __m256 in_tail = _mm256_cmp_ps(k, tail, _CMP_EQ_OQ);
        frac = _mm256_andnot_ps(in_tail, screen_poly(r8));
        if constexpr (kSecond) frac2 = _mm256_andnot_ps(in_tail, screen_poly(_mm256_mul_ps(r8, c)));
        bin = _mm256_cvttps_epi32(k);
    }
};

// The screen's pass over the vocabulary: every token's bin (u16, into scratch.bin16) and the per-lane histograms of
// the weights (scratch.hist; with kSecond, the second weights interleaved: lane j's bin k at (j * kBins + k) * 2).
//
// The histograms count in units of 2^-30: a screened weight (0 or in (0.88, 1], 24 significant bits) times 2^30 is
// an integer below 2^31, converted exactly in the lanes, and integer sums are exact, so a bin's mass is the exact sum
// of its tokens' screened weights. The scatter is then one integer add to memory per token (a double histogram
// needed each weight moved out of its lane, widened and added in a scalar register), or with two weights one 128-bit
// add of both (two scalar adds per token measured about 10 % slower). Each lane has its own
// histogram so that consecutive tokens in one bin do not wait on each other's addition.
template <bool kSecond>
void screen_histograms(std::span<const float> work, const ScreenLanes& lanes, SampleScratch& scratch) {
    constexpr size_t kW = kSecond ? 2 : 1;
    const size_t n = work.size();
    std::vector<uint16_t>& bins = scratch.bin16;
    bins.resize(n);
    std::vector<uint64_t>& hist = scratch.hist;
    hist.assign(8 * kW * static_cast<size_t>(kBins), 0);
    uint64_t* const h = hist.data();
    alignas(32) int32_t kk[8];
    alignas(32) uint32_t ff[8];
    const __m256 fixed = _mm256_set1_ps(0x1.0p30f);
    alignas(32) uint64_t pairs[16];
    auto scatter = [&](__m256 frac, __m256 frac2, __m256i bin) {
        _mm256_store_si256(reinterpret_cast<__m256i*>(kk), bin);
        const __m256i f32 = _mm256_cvtps_epi32(_mm256_mul_ps(frac, fixed));
        if constexpr (!kSecond) _mm256_store_si256(reinterpret_cast<__m256i*>(ff), f32);
        if constexpr (kSecond) {
            // Each token's two weights side by side as two u64, added to its (interleaved) cell with one 128-bit add:
            // A = [t0 | t4], B = [t1 | t5], C = [t2 | t6], D = [t3 | t7] (pairs in the order 0 4 1 5 2 6 3 7).
            const __m256i g32 = _mm256_cvtps_epi32(_mm256_mul_ps(frac2, fixed));
            const __m256i z = _mm256_setzero_si256();
            const __m256i fl = _mm256_unpacklo_epi32(f32, z), fh = _mm256_unpackhi_epi32(f32, z);  // u64 f0 f1 | f4 f5
            const __m256i gl = _mm256_unpacklo_epi32(g32, z), gh = _mm256_unpackhi_epi32(g32, z);
            auto* out = reinterpret_cast<__m256i*>(pairs);
            _mm256_store_si256(out + 0, _mm256_unpacklo_epi64(fl, gl));
            _mm256_store_si256(out + 1, _mm256_unpackhi_epi64(fl, gl));
            _mm256_store_si256(out + 2, _mm256_unpacklo_epi64(fh, gh));
            _mm256_store_si256(out + 3, _mm256_unpackhi_epi64(fh, gh));
        }
        // Read back through pointers the compiler cannot see through: it would otherwise take each element out of
        // the register with an extract (two operations each) instead of one load.
        const int32_t* k = kk;
        const uint32_t* f = ff;
        const uint64_t* pr = pairs;
        asm("" : "+r"(k), "+r"(f), "+r"(pr));
        if constexpr (!kSecond) {
            for (size_t j = 0; j < 8; ++j) h[j * kBins + static_cast<size_t>(k[j])] += f[j];
        } else {
            constexpr size_t pos[8] = {0, 2, 4, 6, 1, 3, 5, 7};  // token j's pair
            for (size_t j = 0; j < 8; ++j) {
                auto* cell = reinterpret_cast<__m128i*>(h + (j * kBins + static_cast<size_t>(k[j])) * 2);
                const __m128i add = _mm_load_si128(reinterpret_cast<const __m128i*>(pr + 2 * pos[j]));
                _mm_storeu_si128(cell, _mm_add_epi64(_mm_loadu_si128(cell), add));
            }
        }
    };
    size_t i = 0;
    __m256 frac, frac2 = _mm256_setzero_ps();
    __m256i bin;
    for (; i + 8 <= n; i += 8) {
        lanes.run<kSecond>(work.data() + i, frac, frac2, bin);
        scatter(frac, frac2, bin);
        const __m256i pk = _mm256_permute4x64_epi64(_mm256_packus_epi32(bin, bin), 0x08);  // u16 k0..k7
        _mm_storeu_si128(reinterpret_cast<__m128i*>(bins.data() + i), _mm256_castsi256_si128(pk));
    }
    if (i < n) {  // the last tokens, padded with -inf (tail bin, weight 0)
        alignas(32) float pad[8];
        std::fill(pad, pad + 8, -std::numeric_limits<float>::infinity());
        std::copy(work.begin() + static_cast<std::ptrdiff_t>(i), work.end(), pad);
        lanes.run<kSecond>(pad, frac, frac2, bin);
        scatter(frac, frac2, bin);
        for (size_t j = 0; i + j < n; ++j) bins[i + j] = static_cast<uint16_t>(kk[j]);
    }
}

// Bin masses from the lanes' histograms (weight w of kW interleaved ones) times each bin's scale; returns the total.
double screen_masses(const std::vector<uint64_t>& hist, size_t kW, size_t w, const std::array<double, kBins>& scale,
                     std::array<double, kBins>& mass) {
    double total = 0;
    mass.fill(0.0);
    for (size_t k = 0; k < static_cast<size_t>(kTailBin); ++k) {
        uint64_t m = 0;
        for (size_t j = 0; j < 8; ++j) m += hist[(j * kBins + k) * kW + w];
        mass[k] = scale[k] * (static_cast<double>(m) * 0x1.0p-30);  // m < 2^48: exact in a double
        total += mass[k];
    }
    return total;
}

// The pick, and top-p before it, on the screen. Top-p weighs the tokens at temperature 1 and the pick at `temp`: at
// temperature 1 one histogram serves both; otherwise (temp in [0.5, 2], the caller checks) one pass fills two
// histograms on the same bins, binned by the larger of the two distances d and d / temp (so that the other weight's
// exponent within a bin, c times the binned one with c = min(temp, 1 / temp), stays under 1/8), the other weight's
// bin scale e^(-c k/8) a table of powers. A bin is a logit interval (the bin is monotonic in the logit), so the
// tokens before top-p's crossing token are exactly whole bins before its bin plus a prefix of it, whichever weight
// the histogram sums.
std::optional<TokenId> screen_pick(std::span<const float> work, float mx, float temp, double u, double top_p,
                                   SampleScratch& scratch) {
    const size_t n = work.size();
    const bool two = top_p < 1.0 && temp != 1.f;
    const float tb = two ? std::min(temp, 1.f) : temp;  // the binned distance's temperature
    const double c = !two ? 1.0 : temp < 1.f ? static_cast<double>(temp) : 1.0 / static_cast<double>(temp);
    const double inv = 1.0 / static_cast<double>(tb);
    const float hi = static_cast<float>(inv);
    const ScreenLanes lanes{_mm256_set1_ps(mx), _mm256_set1_ps(hi),
                            _mm256_set1_ps(static_cast<float>(inv - static_cast<double>(hi))),
                            _mm256_set1_ps(static_cast<float>(c))};
    if (two) {
        screen_histograms<true>(work, lanes, scratch);
    } else {
        screen_histograms<false>(work, lanes, scratch);
    }
    const std::vector<uint16_t>& bins = scratch.bin16;
    std::array<double, kBins> mass_b{}, mass_c{};
    const double total_b = screen_masses(scratch.hist, two ? 2 : 1, 0, bin_scale(), mass_b);
    double total_c = total_b;
    // Bounds (absolute; a total is >= 1, the top token's exact weight) of what the screen's masses neglect beyond
    // kScreenEps: the tail bin's tokens, counted as 0 (n e^-63.875 for the binned weight, n e^(-63.875 c) for the
    // other one), and the powers table's rounding (512 products, under 1e-13 relative).
    double neglect_b = static_cast<double>(n) * 1e-27, neglect_c = neglect_b;
    if (two) {
        std::array<double, kBins> scale_c{};
        const double q = std::exp(-c / kBinsPerUnit);
        scale_c[0] = 1.0;
        for (size_t k = 1; k < static_cast<size_t>(kBins); ++k) scale_c[k] = scale_c[k - 1] * q;
        total_c = screen_masses(scratch.hist, 2, 1, scale_c, mass_c);
        neglect_c = static_cast<double>(n) * std::exp(-(kTailBin / kBinsPerUnit) * c) + 1e-13 * total_c;
    }
    // Top-p's masses (temperature 1) and the pick's (temperature temp).
    const bool p_binned = !two || tb == temp;
    const std::array<double, kBins>& mass_p = p_binned ? mass_b : mass_c;
    const std::array<double, kBins>& mass_1 = !two || tb == 1.f ? mass_b : mass_c;
    const double total_p = p_binned ? total_b : total_c;
    const double total_1 = !two || tb == 1.f ? total_b : total_c;
    const double neglect_p = p_binned ? neglect_b : neglect_c;
    const double neglect_1 = !two || tb == 1.f ? neglect_b : neglect_c;
    const double mxd = mx;
    // The definition's own weights of a token: exp((l - max) / T) in double, at the pick's temperature and at 1.
    auto weight_p = [&](const Cand& t) {
        return std::exp((static_cast<double>(t.first) - mxd) / static_cast<double>(temp));
    };
    auto weight_1 = [&](const Cand& t) { return std::exp(static_cast<double>(t.first) - mxd); };
    // Bin k's tokens in the chain's order, sixteen bins compared at a time.
    auto collect = [&](size_t k, std::vector<Cand>& out) {
        out.clear();
        const __m256i want = _mm256_set1_epi16(static_cast<int16_t>(k));
        size_t t = 0;
        for (; t + 16 <= n; t += 16) {
            const __m256i v = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(bins.data() + t));
            auto hits = static_cast<uint32_t>(_mm256_movemask_epi8(_mm256_cmpeq_epi16(v, want)));
            while (hits != 0) {
                const size_t j = t + static_cast<size_t>(__builtin_ctz(hits)) / 2;
                out.emplace_back(work[j], static_cast<TokenId>(j));
                hits &= hits - 1;
                hits &= hits - 1;  // two mask bits per 16-bit lane
            }
        }
        for (; t < n; ++t) {
            if (bins[t] == k) out.emplace_back(work[t], static_cast<TokenId>(t));
        }
        std::sort(out.begin(), out.end(), better);
    };
    // The double sums' own rounding (as bin_tokens' tolerance, less its polynomial term), and what the masses neglect.
    auto tolerance = [&](double total, double neglect) {
        return (4.0 * static_cast<double>(n) + 64.0) * std::numeric_limits<double>::epsilon() * total + neglect;
    };
    // The kept set: bins [0, kept_bins) whole, then the first kept_in_top tokens of top_bin (top-p's crossing bin).
    size_t kept_bins = static_cast<size_t>(kTailBin), kept_in_top = 0;
    std::vector<Cand> top_bin;
    double kept_mass = total_p;
    if (top_p < 1.0) {
        const double tol = tolerance(total_1, neglect_1);
        const double target = top_p * total_1;
        double before = 0, before_p = 0;
        size_t kp = 0;
        for (; kp < static_cast<size_t>(kTailBin); ++kp) {
            if (before + mass_1[kp] >= target) break;
            before += mass_1[kp];
            before_p += mass_p[kp];
        }
        if (kp == static_cast<size_t>(kTailBin)) return std::nullopt;
        // 1.001: the bound on the true masses from the screened ones, (1 - kScreenEps)^-1 and the sums' rounding.
        const double margin = kScreenEps * 1.001 * (target + before) + tol;
        collect(kp, top_bin);
        double cum = before;
        kept_mass = before_p;
        for (; kept_in_top < top_bin.size(); ++kept_in_top) {
            const double prev = cum;
            cum += weight_1(top_bin[kept_in_top]);
            kept_mass += weight_p(top_bin[kept_in_top]);
            if (cum >= target) {
                if (target - prev <= margin || cum - target <= margin) return std::nullopt;
                break;
            }
        }
        if (kept_in_top == top_bin.size()) return std::nullopt;
        ++kept_in_top;
        kept_bins = kp;
    }
    // The pick: u times the kept mass. That mass is within kScreenEps of the definition's, so the draw moves by at most
    // kScreenEps * target, and the cumulative sum before the crossing bin by kScreenEps * before.
    const double tol = tolerance(total_p, neglect_p);
    const double target = u * kept_mass;
    double before = 0;
    size_t kb = 0;
    for (; kb < kept_bins; ++kb) {
        if (target < before + mass_p[kb]) break;
        before += mass_p[kb];
    }
    const double margin = kScreenEps * 1.001 * (target + before) + 2 * tol;
    std::vector<Cand>& inside = scratch.cand;
    size_t count = kept_in_top;
    if (kb < kept_bins) {
        collect(kb, inside);
        count = inside.size();
    }
    const std::vector<Cand>& walk = kb < kept_bins ? inside : top_bin;
    double cum = before;
    for (size_t t = 0; t < count; ++t) {
        const double prev = cum;
        cum += weight_p(walk[t]);
        if (target < cum) {
            if (target - prev <= margin || cum - target <= margin) return std::nullopt;
            return walk[t].second;
        }
    }
    return std::nullopt;
}
#else
std::optional<TokenId> screen_pick(std::span<const float>, float, float, double, double, SampleScratch&) {
    return std::nullopt;
}
#endif

// top-p and then the pick, both at temperature 1 and without min-p: one binning serves both, and neither the kept
// prefix nor the vocabulary is sorted, only the bin where top_p crosses and the bin where the pick's draw crosses.
// The kept set is every token of the bins before the top-p bin kp plus the first `kept` tokens (in the chain's order)
// of bin kp; the pick walks it with u times its mass. nullopt when either crossing lies within the tolerance of a
// boundary (as crossing_prefix): the caller runs the sorted definition.
std::optional<TokenId> top_p_pick_t1(std::span<const float> work, const Binned& b, double top_p, double u) {
    const double margin = b.tolerance * b.total;
    const double target = top_p * b.total;
    const std::optional<BinCrossing> at = crossing_bin(b, target, true);
    if (!at) return std::nullopt;
    const auto kp = static_cast<size_t>(at->bin);
    const std::vector<Cand> top_bin = sorted_bin(work, b, at->bin);
    double kept_mass = at->before;
    size_t kept = 0;
    for (; kept < top_bin.size(); ++kept) {
        const double prev = kept_mass;
        kept_mass += b.weight(static_cast<size_t>(top_bin[kept].second));
        if (kept_mass >= target) {
            if (target - prev <= margin || kept_mass - target <= margin) return std::nullopt;
            ++kept;
            break;
        }
    }
    if (kept_mass < target) return std::nullopt;
    // The pick: u times the kept mass, whose own error (at most the tolerance) moves the draw as much again.
    const double draw = u * kept_mass;
    const double margin2 = 2 * margin;
    auto walk = [&](const std::vector<Cand>& sorted, size_t count, double cum) -> std::optional<TokenId> {
        for (size_t j = 0; j < count; ++j) {
            const double prev = cum;
            cum += b.weight(static_cast<size_t>(sorted[j].second));
            if (draw < cum) {
                if (draw - prev <= margin2 || cum - draw <= margin2) return std::nullopt;
                return sorted[j].second;
            }
        }
        return std::nullopt;
    };
    double cum = 0;
    for (size_t k = 0; k < kp; ++k) {
        if (draw < cum + b.mass[k]) {
            const std::vector<Cand> inside = sorted_bin(work, b, static_cast<int32_t>(k));
            return walk(inside, inside.size(), cum);
        }
        cum += b.mass[k];
    }
    return walk(top_bin, kept, cum);
}

// min-p without top-p or top-k: the kept tokens are those with exp(l - max) >= min_p (the sorted definition compares
// p[k] >= min_p * p[0] with p[0] = 1/z), a threshold on the logit. Candidates are gathered just below it and sorted;
// a token within rounding of the threshold returns nullopt.
std::optional<std::vector<Cand>> min_p_survivors(std::span<const float> work, double mx, float min_p) {
    const double cut = mx + std::log(static_cast<double>(min_p)) - 1e-6;
    std::vector<Cand> g;
    for (size_t i = 0; i < work.size(); ++i) {
        if (work[i] >= cut) g.emplace_back(work[i], static_cast<TokenId>(i));
    }
    std::sort(g.begin(), g.end(), better);
    size_t k = 1;
    const double m = min_p;
    for (; k < g.size(); ++k) {
        const double e = std::exp(g[k].first - mx);
        if (std::abs(e - m) <= 1e-13 * m) return std::nullopt;
        if (e < m) break;
    }
    g.resize(k);
    return g;
}

}  // namespace

TokenId sample_on_host(std::span<const float> logits, const SampleStep& s, SampleScratch& scratch) {
    const size_t n = logits.size();
    if (n == 0) throw Error(ErrorCode::InvalidArgument, "sampler: empty logits");
    std::vector<Cand>& cand = scratch.cand;
    // The logits the chain works on, with NaN as -inf, and their maximum. Without a penalty and without NaN (nearly
    // every step) they are the caller's logits, read in place; otherwise a working copy (the repetition penalty, when
    // on, changes a few logits of the copy first).
    const bool penalty = s.repeat_penalty != 1.f && !s.penalty_window.empty();
    std::span<const float> work = logits;
    float mx = 0.f;
    bool nan = false;
    if (!penalty) std::tie(mx, nan) = max_and_nan(logits.data(), n);
    if (penalty || nan) {
        std::vector<float>& copy = scratch.work;
        copy.assign(logits.begin(), logits.end());
        if (penalty) {
            const std::unordered_set<TokenId> seen(s.penalty_window.begin(), s.penalty_window.end());
            for (TokenId t : seen) {
                if (t < 0 || static_cast<size_t>(t) >= n) continue;
                float& l = copy[static_cast<size_t>(t)];
                l = l > 0.f ? l / s.repeat_penalty : l * s.repeat_penalty;
            }
        }
        mx = copy_clean_max(copy.data(), copy.data(), n);
        work = copy;
    }

    if (s.temperature <= 0.f) {
        // Greedy: the first token equal to the maximum (ties go to the lowest id, so the choice is deterministic
        // across platforms; all -inf: token 0), found eight at a time (std::max_element's scalar compare-and-branch
        // cost 85 us of a 152k vocabulary on the development machine, this search about 10).
        size_t i = 0;
        for (; i + 8 <= n; i += 8) {
            bool hit = false;
            for (size_t j = 0; j < 8; ++j) hit |= work[i + j] == mx;
            if (hit) break;
        }
        for (; i < n; ++i) {
            if (work[i] == mx) return static_cast<TokenId>(i);
        }
        return 0;  // unreachable: mx is one of the values
    }
    if (!std::isfinite(mx)) return sample_sorted(work, s, scratch);

    if (s.top_k > 0 && static_cast<size_t>(s.top_k) < n) {
        select_top_k(work, static_cast<size_t>(s.top_k), cand);
        return finish_sorted(cand, s, true);
    }
    if (s.top_p < 1.f) {
        // The screen weighs top-p at temperature 1 and the pick at another temperature on one set of bins when the
        // two distances' ratio keeps the other weight's tail under its bound (screen_pick says how).
        if (s.min_p <= 0.f && s.temperature >= 0.5f && s.temperature <= 2.f) {
            if (const std::optional<TokenId> t = screen_pick(work, mx, s.temperature, s.u, s.top_p, scratch)) return *t;
            ++scratch.screen_fallbacks;
            if (s.temperature == 1.f) {
                const std::optional<TokenId> t = top_p_pick_t1(work, bin_tokens(work, mx, 1.f, scratch), s.top_p, s.u);
                return t ? *t : sample_sorted(work, s, scratch);
            }
        }
        const Binned b = bin_tokens(work, mx, 1.f, scratch);
        auto prefix = crossing_prefix(work, b, s.top_p, true, true);
        if (!prefix) return sample_sorted(work, s, scratch);
        cand = std::move(*prefix);
        return finish_sorted(cand, s, false);
    }
    if (s.min_p > 0.f) {
        auto kept = min_p_survivors(work, mx, s.min_p);
        if (!kept) return sample_sorted(work, s, scratch);
        cand = std::move(*kept);
        SampleStep rest = s;
        rest.min_p = 0.f;  // applied
        return finish_sorted(cand, rest, false);
    }
    if (const std::optional<TokenId> t = screen_pick(work, mx, s.temperature, s.u, 1.0, scratch)) return *t;
    ++scratch.screen_fallbacks;
    const Binned b = bin_tokens(work, mx, s.temperature, scratch);
    auto pick = crossing_prefix(work, b, s.u, false, false);
    if (!pick) return sample_sorted(work, s, scratch);
    return pick->front().second;
}

TokenId sample_on_host(std::span<const float> logits, const SampleStep& step) {
    thread_local SampleScratch scratch;
    return sample_on_host(logits, step, scratch);
}

}  // namespace orcd::backend
