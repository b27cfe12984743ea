#include "backend/sample_chain.h"

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <functional>
#include <limits>
#include <optional>
#include <unordered_set>

#include "backend/sample_internal.h"
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
//   sort: the tokens are binned by their distance from the top logit (a bin is a logit interval), the bins' masses
//   locate the bin where the cumulative sum crosses, and within that bin a weighted selection (crossing_in) finds the
//   crossing token; the kept set of top-p / min-p is whole bins plus the first tokens of one bin, and at a pick
//   temperature other than 1 the kept whole bins' tokens are weighed again at it (on the same bins, by a second
//   weight in the first pass, when the bins are fine; otherwise binned again in a second pass).
//   The masses are summed in a different order than the sorted definition sums them, so a crossing is accepted only
//   when it is farther from u (or top_p) than the two sums' combined rounding bound; within the bound (about one
//   draw in 10^5 at a 152k vocabulary) the chain runs the sorted definition itself. The pick is therefore the same
//   token as the sorted definition's, bit for bit, for the same logits and u.
//   Except for min-p alone (min_p_survivors: a logit threshold, its few survivors sorted), a first pass in single
//   precision (screen_pick, in sample_screen.cpp) computes the bins' masses eight tokens at a time, on bins whose
//   width follows the logits' spread, and weighs only the crossing bins' tokens exactly. A crossing within the
//   single-precision error bound of a boundary (under one draw in a hundred in the benchmark's cases) runs the
//   double-precision pass above instead (bin_tokens, then top_p_pick_binned or crossing_token).
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

namespace {

using detail::better;
using detail::Cand;
using detail::crossing_in;
using detail::kBins;
using detail::kBinsPerUnit;
using detail::kTailBin;
using detail::screen_pick;

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

// The logits' maximum and smallest finite value (ignoring NaN and -inf; -inf and +inf when there is none), which set
// the screen's bin width, and whether there is a NaN.
struct Extent {
    float mx = -std::numeric_limits<float>::infinity();
    float mn = std::numeric_limits<float>::infinity();
    bool nan = false;
    bool neg_inf = true;  // whether a value is -inf (true where not looked for: the screen's lanes then mask the tail)
};

// dst = src with NaN replaced by -inf (src may equal dst), and the extent of the result.
Extent copy_clean_extent(const float* src, float* dst, size_t n) {
    constexpr float kNegInf = -std::numeric_limits<float>::infinity();
    size_t i = 0;
    Extent x;
    bool seen_neg_inf = false;
#if defined(__AVX2__) && defined(__FMA__)
    constexpr float kPosInf = std::numeric_limits<float>::infinity();
    const __m256 neg_inf = _mm256_set1_ps(kNegInf), pos_inf = _mm256_set1_ps(kPosInf);
    __m256 m = neg_inf, lo = pos_inf, any_neg_inf = _mm256_setzero_ps();
    for (; i + 8 <= n; i += 8) {
        __m256 v = _mm256_loadu_ps(src + i);
        v = _mm256_blendv_ps(v, neg_inf, _mm256_cmp_ps(v, v, _CMP_UNORD_Q));
        _mm256_storeu_ps(dst + i, v);
        m = _mm256_max_ps(m, v);
        const __m256 is_neg_inf = _mm256_cmp_ps(v, neg_inf, _CMP_EQ_OQ);
        any_neg_inf = _mm256_or_ps(any_neg_inf, is_neg_inf);
        lo = _mm256_min_ps(lo, _mm256_blendv_ps(v, pos_inf, is_neg_inf));
    }
    seen_neg_inf = _mm256_movemask_ps(any_neg_inf) != 0;
    alignas(32) float lanes[8], low[8];
    _mm256_store_ps(lanes, m);
    _mm256_store_ps(low, lo);
    for (size_t j = 0; j < 8; ++j) {
        x.mx = lanes[j] > x.mx ? lanes[j] : x.mx;
        x.mn = low[j] < x.mn ? low[j] : x.mn;
    }
#endif
    for (; i < n; ++i) {
        const float v = src[i] != src[i] ? kNegInf : src[i];
        dst[i] = v;
        x.mx = v > x.mx ? v : x.mx;
        if (v != kNegInf) x.mn = v < x.mn ? v : x.mn;
        seen_neg_inf |= v == kNegInf;
    }
    x.neg_inf = seen_neg_inf;
    return x;
}

// The smallest value of src above -inf (+inf when there is none; NaN is skipped).
float min_finite(const float* src, size_t n) {
    constexpr float kNegInf = -std::numeric_limits<float>::infinity();
    constexpr float kPosInf = std::numeric_limits<float>::infinity();
    size_t i = 0;
    float mn = kPosInf;
#if defined(__AVX2__) && defined(__FMA__)
    const __m256 neg_inf = _mm256_set1_ps(kNegInf), pos_inf = _mm256_set1_ps(kPosInf);
    __m256 lo = pos_inf;
    for (; i + 8 <= n; i += 8) {
        const __m256 v = _mm256_loadu_ps(src + i);
        lo = _mm256_min_ps(_mm256_blendv_ps(v, pos_inf, _mm256_cmp_ps(v, neg_inf, _CMP_EQ_OQ)), lo);
    }
    alignas(32) float low[8];
    _mm256_store_ps(low, lo);
    for (float v : low) mn = v < mn ? v : mn;
#endif
    for (; i < n; ++i) {
        if (src[i] > kNegInf && src[i] < mn) mn = src[i];
    }
    return mn;
}

// The extent of src: one read-only pass, so that logits without NaN (nearly always) are used in place instead of
// copied. The smallest finite value only with Min (the screen's paths; greedy, top-k and min-p alone do not pay for
// it): the pass takes the plain minimum, and only when that is -inf (a masked vocabulary) a second pass skips -inf.
template <bool Min>
Extent extent_of(const float* src, size_t n) {
    constexpr float kNegInf = -std::numeric_limits<float>::infinity();
    size_t i = 0;
    Extent x;
#if defined(__AVX2__) && defined(__FMA__)
    __m256 m0 = _mm256_set1_ps(kNegInf), m1 = m0, l0 = _mm256_set1_ps(-kNegInf), l1 = l0;
    __m256 un = _mm256_setzero_ps();
    for (; i + 16 <= n; i += 16) {
        const __m256 a = _mm256_loadu_ps(src + i), b = _mm256_loadu_ps(src + i + 8);
        // max_ps and min_ps return their second operand when either is NaN: a NaN element leaves the running values
        // as they are.
        m0 = _mm256_max_ps(a, m0);
        m1 = _mm256_max_ps(b, m1);
        if constexpr (Min) {
            l0 = _mm256_min_ps(a, l0);
            l1 = _mm256_min_ps(b, l1);
        }
        un = _mm256_or_ps(un, _mm256_cmp_ps(a, b, _CMP_UNORD_Q));
    }
    alignas(32) float lanes[8], low[8];
    _mm256_store_ps(lanes, _mm256_max_ps(m0, m1));
    _mm256_store_ps(low, _mm256_min_ps(l0, l1));
    for (size_t j = 0; j < 8; ++j) {
        x.mx = lanes[j] > x.mx ? lanes[j] : x.mx;
        x.mn = low[j] < x.mn ? low[j] : x.mn;
    }
    x.nan = _mm256_movemask_ps(un) != 0;
#endif
    for (; i < n; ++i) {
        if (src[i] != src[i]) {
            x.nan = true;
        } else {
            x.mx = src[i] > x.mx ? src[i] : x.mx;
            x.mn = src[i] < x.mn ? src[i] : x.mn;
        }
    }
    if constexpr (Min) {
        x.neg_inf = x.mn == kNegInf;
        if (x.neg_inf) x.mn = min_finite(src, n);
    }
    return x;
}

// Greedy's pick: the first token equal to the maximum mx (ties go to the lowest id, so the choice is deterministic
// across platforms), found eight at a time (std::max_element's scalar compare-and-branch cost 85 us of a 152k
// vocabulary on the development machine, this search about 10). Token 0 when no value equals mx (all NaN).
TokenId first_equal_to(std::span<const float> values, float mx) {
    const size_t n = values.size();
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        bool hit = false;
        for (size_t j = 0; j < 8; ++j) hit |= values[i + j] == mx;
        if (hit) break;
    }
    for (; i < n; ++i) {
        if (values[i] == mx) return static_cast<TokenId>(i);
    }
    return 0;
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

// Appends (logit, id) of every token that `keep` accepts, in id order. `floor` bounds keep from below (keep(x) implies
// x >= floor): the logits go eight at a time, and a block with none at or above floor (most of them) costs one vector
// compare.
template <typename Keep>
void gather_kept(std::span<const float> work, float floor, Keep keep, std::vector<Cand>& out) {
    const size_t n = work.size();
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        bool any = false;
        for (size_t j = 0; j < 8; ++j) any |= work[i + j] >= floor;
        if (!any) continue;
        for (size_t j = i; j < i + 8; ++j) {
            if (keep(work[j])) out.emplace_back(work[j], static_cast<TokenId>(j));
        }
    }
    for (; i < n; ++i) {
        if (keep(work[i])) out.emplace_back(work[i], static_cast<TokenId>(i));
    }
}

// The k best candidates, sorted, for a wide k, where the heap's insertions (about k ln(n / k) of them, each log k)
// cost more than a pass: a threshold from a strided sample of the logits (the rank that would leave about 1.5 k + 64
// tokens at or above it in the whole vocabulary, were the sample typical), every token at or above it gathered, and
// the k best of those sorted. Whenever at least k tokens were gathered, the k-th best is at or above the threshold, so
// the k best overall are all among them; otherwise (an untypical sample) false, and the caller runs the heap.
bool select_top_k_wide(std::span<const float> work, size_t k, std::vector<Cand>& cand) {
    const size_t n = work.size();
    const size_t sn = std::min<size_t>(n, 4096);
    std::vector<float> sample(sn);
    for (size_t i = 0; i < sn; ++i) sample[i] = work[i * n / sn];
    const size_t want = std::min(n, k + k / 2 + 64);
    const size_t r = std::min(sn - 1, want * sn / n);
    std::nth_element(sample.begin(), sample.begin() + static_cast<std::ptrdiff_t>(r), sample.end(),
                     std::greater<float>());
    const float t = sample[r];
    cand.clear();
    gather_kept(
        work, t, [t](float x) { return x >= t; }, cand);
    if (cand.size() < k) return false;
    std::partial_sort(cand.begin(), cand.begin() + static_cast<std::ptrdiff_t>(k), cand.end(), better);
    cand.resize(k);
    return true;
}

// From this k on, top-k selects by a sampled threshold instead of a heap (select_top_k_wide): at k = 40 the heap took
// 51 us of a 152k step and the threshold 58, at k = 1000 the heap 482 and the threshold 80 (the bound between them is
// a guess, not measured).
constexpr size_t kWideTopK = 128;

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

// The pick without top-k, top-p or min-p in double precision, on a binning of the whole vocabulary at the pick's
// temperature: the token whose cumulative weight first exceeds u times the total. nullopt when the crossing lies within
// the rounding tolerance of a boundary, or no token crosses (rounding leaves u beyond the total): the caller then runs
// the sorted definition.
std::optional<TokenId> crossing_token(std::span<const float> work, const Binned& b, double u) {
    const double target = u * b.total;
    const std::optional<BinCrossing> at = crossing_bin(b, target, false);
    if (!at) return std::nullopt;
    std::vector<Cand> inside;
    collect_where(
        work, b.bin, [k = at->bin](int32_t bk) { return bk == k; }, inside);
    auto weight = [&](const Cand& c) { return b.weight(static_cast<size_t>(c.second)); };
    const std::optional<size_t> j =
        crossing_in(inside, inside.size(), weight, at->before, target, false, b.tolerance * b.total);
    return j ? std::optional<TokenId>(inside[*j].second) : std::nullopt;
}

// The chain's bin of min-p's threshold on a binning at temperature 1 (8 per unit of distance from the top logit): the
// kept tokens are those with e^(l - max) >= min_p, within dm = -ln(min_p) of the top, so bins [0, km) whole and some of
// bin km; km = kTailBin + 1 when min-p is off. nullopt when the threshold lies on a bin boundary (which side a token
// there lands on is the binning's rounding).
std::optional<size_t> min_p_bin(double min_p) {
    if (min_p <= 0.0) return static_cast<size_t>(kTailBin) + 1;
    const double t8 = -std::log(min_p) * kBinsPerUnit;
    if (std::abs(t8 - std::round(t8)) < 1e-6) return std::nullopt;
    return static_cast<size_t>(std::min(std::floor(t8), static_cast<double>(kTailBin) + 1));
}

// Of edge[0, m) (tokens of min-p's threshold bin, any order), those min-p keeps moved to the front; returns their
// count, or nullopt when a token's e^(l - max) is within rounding of min_p (the definition compares p[k] >=
// min_p * p[0], both divided by the sum).
std::optional<size_t> min_p_keep(std::vector<Cand>& edge, size_t m, double mx, double min_p) {
    size_t keep = 0;
    for (size_t j = 0; j < m; ++j) {
        const double e = std::exp(static_cast<double>(edge[j].first) - mx);
        if (std::abs(e - min_p) <= 1e-13 * min_p) return std::nullopt;
        if (e >= min_p) std::swap(edge[keep++], edge[j]);
    }
    return keep;
}

// Top-p (with min-p, at any temperature) and then the pick in double precision: the draws the screen leaves (a
// crossing within its bound of a boundary). As screen_pick, on a binning at temperature 1 with the kept set as whole
// bins [0, kc) and then the chain's first m tokens of bin kc (found by crossing_in, not sorted); at another
// temperature the kept whole bins' tokens are gathered and binned again at it. nullopt when a crossing lies within
// the tolerance of a boundary: the caller runs the sorted definition.
std::optional<TokenId> top_p_pick_binned(std::span<const float> work, double mx, const SampleStep& s,
                                         SampleScratch& scratch) {
    const Binned b = bin_tokens(work, mx, 1.f, scratch);
    const double margin = b.tolerance * b.total;
    const double target = s.top_p * b.total;
    const std::optional<BinCrossing> at = crossing_bin(b, target, true);
    const std::optional<size_t> km = min_p_bin(s.min_p);
    if (!at || !km) return std::nullopt;
    const auto kp = static_cast<size_t>(at->bin);
    const size_t kc = std::min(kp, *km);
    std::vector<Cand> edge;
    collect_where(
        work, b.bin, [kc](int32_t k) { return static_cast<size_t>(k) == kc; }, edge);
    auto weight_b = [&](const Cand& c) { return b.weight(static_cast<size_t>(c.second)); };
    size_t m = edge.size();
    if (kc == kp) {
        const std::optional<size_t> j = crossing_in(edge, edge.size(), weight_b, at->before, target, true, margin);
        if (!j) return std::nullopt;
        m = *j + 1;
    }
    if (*km == kc) {
        const std::optional<size_t> keep = min_p_keep(edge, m, mx, s.min_p);
        if (!keep) return std::nullopt;
        m = *keep;
    }
    // The pick: u times the kept mass, whose own error (at most the tolerance) moves the draw as much again.
    const double margin2 = 2 * margin;
    if (s.temperature == 1.f) {
        double whole = 0;
        for (size_t k = 0; k < kc; ++k) whole += b.mass[k];
        double kept_mass = whole;
        for (size_t j = 0; j < m; ++j) kept_mass += weight_b(edge[j]);
        const double draw = s.u * kept_mass;
        double cum = 0;
        for (size_t k = 0; k < kc; ++k) {
            if (draw < cum + b.mass[k]) {
                std::vector<Cand> inside;
                collect_where(
                    work, b.bin, [k](int32_t bk) { return static_cast<size_t>(bk) == k; }, inside);
                const std::optional<size_t> j = crossing_in(inside, inside.size(), weight_b, cum, draw, false, margin2);
                return j ? std::optional<TokenId>(inside[*j].second) : std::nullopt;
            }
            cum += b.mass[k];
        }
        const std::optional<size_t> j = crossing_in(edge, m, weight_b, cum, draw, false, margin2);
        return j ? std::optional<TokenId>(edge[*j].second) : std::nullopt;
    }
    // Another temperature: the kept whole bins' tokens binned again at it (ids replaced by their index among them
    // while their bins are walked), the edge weighed with the definition's own exp.
    std::vector<Cand> kept;
    collect_where(
        work, b.bin, [kc](int32_t k) { return static_cast<size_t>(k) < kc; }, kept);
    std::vector<float> kept_logit(kept.size());
    for (size_t i = 0; i < kept.size(); ++i) kept_logit[i] = kept[i].first;
    const double relative = b.tolerance;
    const Binned bt = bin_tokens(kept_logit, mx, s.temperature, scratch);  // b's arrays are reused here
    auto weight_t = [&](const Cand& c) {
        return std::exp((static_cast<double>(c.first) - mx) / static_cast<double>(s.temperature));
    };
    double kept_mass = bt.total;
    for (size_t j = 0; j < m; ++j) kept_mass += weight_t(edge[j]);
    const double draw = s.u * kept_mass;
    const double margin_t = 2 * relative * std::max(kept_mass, 1.0);
    const std::optional<BinCrossing> in = crossing_bin(bt, draw, false);
    if (in && in->bin < kTailBin) {
        std::vector<Cand> inside;
        collect_where(
            kept_logit, bt.bin, [k = in->bin](int32_t bk) { return bk == k; }, inside);  // ids: indices into kept
        auto weight_i = [&](const Cand& c) { return bt.weight(static_cast<size_t>(c.second)); };
        // The chain's order among these is by (logit, index), the same as by (logit, id): kept is in id order.
        const std::optional<size_t> j = crossing_in(inside, inside.size(), weight_i, in->before, draw, false, margin_t);
        return j ? std::optional<TokenId>(kept[static_cast<size_t>(inside[*j].second)].second) : std::nullopt;
    }
    const std::optional<size_t> j = crossing_in(edge, m, weight_t, bt.total, draw, false, margin_t);
    return j ? std::optional<TokenId>(edge[*j].second) : std::nullopt;
}

// min-p without top-p or top-k: the kept tokens are those with exp(l - max) >= min_p (the sorted definition compares
// p[k] >= min_p * p[0] with p[0] = 1/z), a threshold on the logit. Candidates are gathered just below it and sorted;
// a token within rounding of the threshold returns nullopt.
// The scan tests eight logits at a time against the cut rounded down to a float (a block without a survivor, nearly
// all of them, costs one vector compare), and is kept out of line: inlined into sample_on_host, the scalar test per
// token reloaded the cut from the stack each time (min-p alone took a third longer).
__attribute__((noinline)) std::optional<std::vector<Cand>> min_p_survivors(std::span<const float> work, double mx,
                                                                           float min_p) {
    const double cut = mx + std::log(static_cast<double>(min_p)) - 1e-6;
    float cf = static_cast<float>(cut);  // at or below cut: every survivor's block passes the block test
    if (static_cast<double>(cf) > cut) cf = std::nextafter(cf, -std::numeric_limits<float>::infinity());
    std::vector<Cand> g;
    gather_kept(
        work, cf, [cut](float x) { return static_cast<double>(x) >= cut; }, g);
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

// The maximum ignoring NaN (extent_of's pass, eight lanes at a time), then its first index: the same pick as the
// host sampler's greedy path.
TokenId argmax_token(std::span<const float> logits) {
    return first_equal_to(logits, extent_of<false>(logits.data(), logits.size()).mx);
}

TokenId sample_on_host(std::span<const float> logits, const SampleStep& s, SampleScratch& scratch) {
    const size_t n = logits.size();
    if (n == 0) throw Error(ErrorCode::InvalidArgument, "sampler: empty logits");
    std::vector<Cand>& cand = scratch.cand;
    // The logits the chain works on, with NaN as -inf, and their maximum. Without a penalty and without NaN (nearly
    // every step) they are the caller's logits, read in place; otherwise a working copy (the repetition penalty, when
    // on, changes a few logits of the copy first).
    const bool penalty = s.repeat_penalty != 1.f && !s.penalty_window.empty();
    std::span<const float> work = logits;
    // The smallest finite logit sets the screen's bin width; the paths without the screen do not need it.
    const bool top_k = s.top_k > 0 && static_cast<size_t>(s.top_k) < n;
    const bool screen = s.temperature > 0.f && !top_k && (s.top_p < 1.f || !(s.min_p > 0.f));
    Extent x;
    if (!penalty) x = screen ? extent_of<true>(logits.data(), n) : extent_of<false>(logits.data(), n);
    if (penalty || x.nan) {
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
        x = copy_clean_extent(copy.data(), copy.data(), n);
        work = copy;
    }
    const float mx = x.mx;

    if (s.temperature <= 0.f) return first_equal_to(work, mx);
    if (!std::isfinite(mx)) return sample_sorted(work, s, scratch);

    if (top_k) {
        const auto k = static_cast<size_t>(s.top_k);
        if (k < kWideTopK || !select_top_k_wide(work, k, cand)) select_top_k(work, k, cand);
        return finish_sorted(cand, s, true);
    }
    if (s.top_p < 1.f) {
        // Top-p, with or without min-p, at any temperature: on the screen (screen_pick says how).
        if (const std::optional<TokenId> t = screen_pick(work, mx, x.mn, !x.neg_inf, s, scratch)) return *t;
        ++scratch.screen_fallbacks;
        const std::optional<TokenId> t = top_p_pick_binned(work, mx, s, scratch);
        return t ? *t : sample_sorted(work, s, scratch);
    }
    if (s.min_p > 0.f) {
        auto kept = min_p_survivors(work, mx, s.min_p);
        if (!kept) return sample_sorted(work, s, scratch);
        cand = std::move(*kept);
        SampleStep rest = s;
        rest.min_p = 0.f;  // applied
        return finish_sorted(cand, rest, false);
    }
    if (const std::optional<TokenId> t = screen_pick(work, mx, x.mn, !x.neg_inf, s, scratch)) return *t;
    ++scratch.screen_fallbacks;
    const Binned b = bin_tokens(work, mx, s.temperature, scratch);
    const std::optional<TokenId> t = crossing_token(work, b, s.u);
    return t ? *t : sample_sorted(work, s, scratch);
}

TokenId sample_on_host(std::span<const float> logits, const SampleStep& step) {
    thread_local SampleScratch scratch;
    return sample_on_host(logits, step, scratch);
}

}  // namespace orcd::backend
