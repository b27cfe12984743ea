#include "backend/sample_chain.h"

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <functional>
#include <limits>
#include <optional>
#include <type_traits>
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
//   precision (screen_pick) computes the bins' masses eight tokens at a time, on bins whose width follows the
//   logits' spread, and weighs only the crossing bins' tokens exactly. A crossing within the single-precision error
//   bound of a boundary (under one draw in a hundred in the benchmark's cases) runs the double-precision pass above
//   instead (bin_tokens, then top_p_pick_binned or crossing_token).
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

using Cand = std::pair<float, TokenId>;

// The chain's order: logit descending, ties by id ascending (a strict total order on finite and infinite logits).
// A function object, not a function: std::sort given a function's pointer called it through the pointer (perf showed
// the sort of a crossing bin of flat logits at half of the step), while an object's call is inlined.
struct Better {
    bool operator()(const Cand& a, const Cand& b) const {
        return a.first > b.first || (a.first == b.first && a.second < b.second);
    }
};
constexpr Better better{};

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

// Of v[0, count) (tokens of one bin, any order), the chain's first tokens up to the first whose cumulative weight,
// started at `cum`, reaches `target` (`inclusive`) or exceeds it: v is reordered so that they are v[0, j], the
// crossing token v[j] (those before it in any order), and j is returned. nullopt when no token crosses or the
// crossing lies within `margin` of either of its boundaries. A weighted selection instead of a sort: each round
// splits the range at a pivot token and keeps the side the running sum crosses in, so the work is linear in the bin
// (a crossing bin of flat logits holds tens of thousands of tokens, whose sort was most of the step). The sums run in
// another order than the definition's, which the caller's margin allows for (n units of rounding).
template <class Weight>
std::optional<size_t> crossing_in(std::vector<Cand>& v, size_t count, const Weight& weight, double cum, double target,
                                  bool inclusive, double margin) {
    struct Weighed {
        Cand c;
        double w;
    };
    auto crosses = [&](double c) { return inclusive ? c >= target : target < c; };
    std::vector<Weighed> t(count);
    for (size_t i = 0; i < count; ++i) t[i] = {v[i], weight(v[i])};
    auto wbetter = [](const Weighed& a, const Weighed& b) { return better(a.c, b.c); };
    size_t lo = 0, hi = count;
    while (hi - lo > 16) {
        // The median of three tokens as the pivot; the tokens better than it go first.
        const size_t a = lo, b = lo + (hi - lo) / 2, c = hi - 1;
        const size_t piv = wbetter(t[a], t[b]) ? (wbetter(t[b], t[c])   ? b
                                                  : wbetter(t[a], t[c]) ? c
                                                                        : a)
                                               : (wbetter(t[a], t[c])   ? a
                                                  : wbetter(t[b], t[c]) ? c
                                                                        : b);
        const Cand pc = t[piv].c;
        auto mid = static_cast<size_t>(std::partition(t.begin() + static_cast<std::ptrdiff_t>(lo),
                                                      t.begin() + static_cast<std::ptrdiff_t>(hi),
                                                      [&](const Weighed& x) { return better(x.c, pc); }) -
                                       t.begin());
        if (mid == lo) {  // the pivot is the range's best token: it alone goes first
            for (size_t i = lo; i < hi; ++i) {
                if (t[i].c == pc) std::swap(t[i], t[lo]);
            }
            mid = lo + 1;
        }
        double sum = 0;
        for (size_t i = lo; i < mid; ++i) sum += t[i].w;
        if (crosses(cum + sum)) {
            hi = mid;
        } else {
            cum += sum;
            lo = mid;
        }
    }
    std::sort(t.begin() + static_cast<std::ptrdiff_t>(lo), t.begin() + static_cast<std::ptrdiff_t>(hi), wbetter);
    for (size_t j = lo; j < hi; ++j) {
        const double prev = cum;
        cum += t[j].w;
        if (crosses(cum)) {
            if (target - prev <= margin || cum - target <= margin) return std::nullopt;
            for (size_t i = 0; i < count; ++i) v[i] = t[i].c;
            return j;
        }
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

#if defined(__AVX2__) && defined(__FMA__)
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
