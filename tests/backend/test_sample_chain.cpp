// The host sampling chain against its definition: a straightforward implementation kept here (the whole vocabulary
// sorted by logit descending, ties by id ascending, then top-k, top-p, min-p and the pick as sample_chain.h states
// them; the algorithm the chain used before it stopped sorting) run on the same logits, parameters and draws. The
// two must pick the same token every time: random logits of several shapes (gaussian, peaked, heavy ties, -inf,
// NaN, +inf), every parameter combination, random draws, and draws placed exactly on cumulative boundaries.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <random>
#include <unordered_set>
#include <vector>

#include "backend/sample_chain.h"
#include "common/error.h"

namespace orcd::backend {
namespace {

using Cand = std::pair<float, TokenId>;

struct Reference {
    std::vector<Cand> cand;
    std::vector<double> last_cum;  // the pick's cumulative probabilities, for boundary draws

    std::vector<double> probs(float temp) const {
        std::vector<double> p(cand.size());
        const double mx = cand[0].first;
        double z = 0;
        for (size_t i = 0; i < cand.size(); ++i) z += p[i] = std::exp((cand[i].first - mx) / temp);
        for (double& v : p) v /= z;
        return p;
    }

    TokenId sample(std::vector<float> work, const SampleStep& s) {
        const size_t n = work.size();
        for (float& l : work) {
            if (std::isnan(l)) l = -std::numeric_limits<float>::infinity();
        }
        if (s.repeat_penalty != 1.f) {
            const std::unordered_set<TokenId> seen(s.penalty_window.begin(), s.penalty_window.end());
            for (TokenId t : seen) {
                if (t < 0 || static_cast<size_t>(t) >= n) continue;
                float& l = work[static_cast<size_t>(t)];
                l = l > 0.f ? l / s.repeat_penalty : l * s.repeat_penalty;
            }
        }
        if (s.temperature <= 0.f)
            return static_cast<TokenId>(std::max_element(work.begin(), work.end()) - work.begin());
        cand.resize(n);
        for (size_t i = 0; i < n; ++i) cand[i] = {work[i], static_cast<TokenId>(i)};
        std::sort(cand.begin(), cand.end(), [](const Cand& a, const Cand& b) {
            return a.first > b.first || (a.first == b.first && a.second < b.second);
        });
        if (s.top_k > 0 && static_cast<size_t>(s.top_k) < n) cand.resize(static_cast<size_t>(s.top_k));
        if (s.top_p < 1.f) {
            const auto p = probs(1.f);
            double cum = 0;
            size_t k = 0;
            while (k < p.size()) {
                cum += p[k++];
                if (cum >= s.top_p) break;
            }
            cand.resize(k);
        }
        if (s.min_p > 0.f) {
            const auto p = probs(1.f);
            size_t k = 1;
            while (k < p.size() && p[k] >= s.min_p * p[0]) ++k;
            cand.resize(k);
        }
        const auto p = probs(s.temperature);
        last_cum.clear();
        double cum = 0;
        for (double v : p) last_cum.push_back(cum += v);
        for (size_t i = 0; i < p.size(); ++i) {
            if (s.u < last_cum[i]) return cand[i].second;
        }
        return cand.back().second;
    }
};

enum class Shape { Gaussian, Peaked, Ties, WithNegInf, WithNaN, WithPosInf, Flat };

std::vector<float> make_logits(Shape shape, size_t n, std::mt19937_64& rng) {
    std::normal_distribution<float> g(0.f, 3.f);
    std::uniform_int_distribution<size_t> pick(0, n - 1);
    std::vector<float> l(n);
    for (float& v : l) v = g(rng);
    switch (shape) {
        case Shape::Gaussian: break;
        case Shape::Peaked:
            for (int i = 0; i < 3; ++i) l[pick(rng)] += 15.f;
            break;
        case Shape::Ties:
            for (float& v : l) v = std::round(v);  // a handful of distinct values, thousands of ties
            break;
        case Shape::WithNegInf:
            for (size_t i = 0; i < n / 3; ++i) l[pick(rng)] = -std::numeric_limits<float>::infinity();
            break;
        case Shape::WithNaN:
            for (size_t i = 0; i < 1 + n / 10; ++i) l[pick(rng)] = std::numeric_limits<float>::quiet_NaN();
            break;
        case Shape::WithPosInf: l[pick(rng)] = std::numeric_limits<float>::infinity(); break;
        case Shape::Flat:
            for (float& v : l) v = 0.5f;
            break;
    }
    return l;
}

TEST(SampleChain, SameTokenAsTheSortedDefinition) {
    std::mt19937_64 rng(20261203);
    std::uniform_real_distribution<double> unit(0.0, 1.0);
    const float temps[] = {0.f, 0.3f, 0.8f, 1.f, 1.7f};
    const int32_t ks[] = {0, 1, 40, 300, -1 /* n */, -2 /* n + 3 */};
    const float top_ps[] = {1.f, 0.95f, 0.5f, 0.05f};
    const float min_ps[] = {0.f, 0.05f, 0.3f};
    const size_t sizes[] = {1, 2, 7, 100, 1000};
    const Shape shapes[] = {Shape::Gaussian, Shape::Peaked,     Shape::Ties, Shape::WithNegInf,
                            Shape::WithNaN,  Shape::WithPosInf, Shape::Flat};
    SampleScratch scratch;
    Reference ref;
    size_t draws = 0, finite_draws = 0, finite_fallbacks = 0;
    for (size_t n : sizes) {
        for (Shape shape : shapes) {
            for (int rep = 0; rep < 2; ++rep) {
                const auto logits = make_logits(shape, n, rng);
                // Flat vectors put top-p cuts exactly on a cumulative boundary (0.5 of 2 equal tokens): a real
                // ambiguity that the sorted definition resolves, so they are not counted as fast-path draws.
                const bool finite = shape != Shape::WithPosInf && shape != Shape::WithNaN && shape != Shape::Flat;
                std::vector<TokenId> window;
                for (int i = 0; i < 20; ++i) window.push_back(static_cast<TokenId>(rng() % (n + 5)) - 2);
                for (float temp : temps) {
                    for (int32_t k : ks) {
                        for (float top_p : top_ps) {
                            for (float min_p : min_ps) {
                                SampleStep s;
                                s.temperature = temp;
                                s.top_k = k == -1 ? static_cast<int32_t>(n) : k == -2 ? static_cast<int32_t>(n + 3) : k;
                                s.top_p = top_p;
                                s.min_p = min_p;
                                s.repeat_penalty = rep == 1 ? 1.3f : 1.f;
                                s.penalty_window = window;
                                s.u = unit(rng);
                                const TokenId want = ref.sample(logits, s);
                                const uint64_t before = scratch.sorted_fallbacks;
                                ASSERT_EQ(sample_on_host(logits, s, scratch), want)
                                    << "n=" << n << " shape=" << int(shape) << " temp=" << temp << " k=" << s.top_k
                                    << " top_p=" << top_p << " min_p=" << min_p << " u=" << s.u;
                                if (finite && temp > 0.f) {
                                    ++finite_draws;
                                    if (scratch.sorted_fallbacks != before) ++finite_fallbacks;
                                }
                                // Draws on and beside the boundaries the definition computes (the fast path's
                                // ambiguous zone), at most a few per vector.
                                const std::vector<double> cum = ref.last_cum;
                                for (size_t b = 0; b < std::min<size_t>(cum.size(), 1); ++b) {
                                    const double c = cum[rng() % cum.size()];
                                    for (double u : {c, std::nextafter(c, 0.0), std::nextafter(c, 2.0)}) {
                                        if (!(u >= 0.0 && u < 1.0)) continue;
                                        s.u = u;
                                        ASSERT_EQ(sample_on_host(logits, s, scratch), ref.sample(logits, s))
                                            << "boundary u=" << u << " n=" << n << " shape=" << int(shape);
                                        ++draws;
                                    }
                                }
                                ++draws;
                            }
                        }
                    }
                }
            }
        }
    }
    EXPECT_GT(draws, 30000u);
    // The comparison is with the fast paths, not with the fallback: random draws on finite logits almost never take
    // the sorted definition.
    EXPECT_LT(finite_fallbacks, finite_draws / 1000) << "of " << finite_draws;
    // The boundary draws reach the fallback (the margin check is exercised).
    EXPECT_GT(scratch.sorted_fallbacks, finite_fallbacks);
}

// The OpenAI default (temperature 1, no top-k, top-p or min-p) at a real vocabulary size, many draws per vector:
// the path that bins the vocabulary instead of sorting it.
TEST(SampleChain, FullVocabularyDrawsMatchAt152k) {
    std::mt19937_64 rng(7);
    std::uniform_real_distribution<double> unit(0.0, 1.0);
    SampleScratch scratch;
    Reference ref;
    for (Shape shape : {Shape::Gaussian, Shape::Peaked, Shape::Ties}) {
        const auto logits = make_logits(shape, 151936, rng);
        for (float top_p : {1.f, 0.9f}) {
            SampleStep s;
            s.temperature = 1.f;
            s.top_k = 0;
            s.top_p = top_p;
            s.min_p = 0.f;
            for (int d = 0; d < 4; ++d) {
                s.u = unit(rng);
                ASSERT_EQ(sample_on_host(logits, s, scratch), ref.sample(logits, s)) << "u=" << s.u;
            }
        }
    }
}

// A top-p / min-p step at a temperature, top-k off (the binned and flat draw tests' parameter sets).
struct DrawCase {
    float temp, top_p, min_p;
};
SampleStep step_of(const DrawCase& c) {
    SampleStep s;
    s.temperature = c.temp;
    s.top_k = 0;
    s.top_p = c.top_p;
    s.min_p = c.min_p;
    return s;
}

// The paths that bin instead of sorting, at a real vocabulary size: the single-precision screen (no top-k, top-p or
// min-p) at several temperatures, top-p then the pick on one binning (temperature 1), and top-p (with and without
// min-p) at temperature 1 with the pick at another temperature, on a second pass over the kept tokens. Random draws
// match the definition and mostly stay on the fast path; a draw exactly on one of the definition's cumulative
// boundaries is within any rounding of it, so the fast path must leave it to an exact one (its error bound is what
// decides), and the draws beside it must still pick the definition's token.
TEST(SampleChain, BinnedDrawsMatchAndLeaveBoundariesToAnExactPass) {
    std::mt19937_64 rng(11);
    std::uniform_real_distribution<double> unit(0.0, 1.0);
    SampleScratch scratch;
    Reference ref;
    uint64_t random_draws = 0, on_boundary = 0, near_boundary = 0, exact_pass_decided = 0;
    // Random draws with top-p or min-p at a temperature other than 1 (the second pass), and how many of them the
    // screen left to an exact pass.
    uint64_t second_pass_draws = 0, second_pass_fallbacks = 0;
    auto fallbacks = [&] { return scratch.screen_fallbacks + scratch.sorted_fallbacks; };
    using Case = DrawCase;
    // min_p -1: min-p's threshold placed just inside top-p's cut (the two cuts in one bin, most of the time).
    const Case cases[] = {{0.7f, 1.f, 0.f},    {1.f, 1.f, 0.f},     {1.3f, 1.f, 0.f},     {1.f, 0.9f, 0.f},
                          {1.f, 0.5f, 0.f},    {0.7f, 0.9f, 0.f},   {0.5f, 0.95f, 0.f},   {1.3f, 0.9f, 0.f},
                          {2.f, 0.5f, 0.f},    {0.3f, 0.9f, 0.f},   {0.1f, 0.95f, 0.f},   {3.f, 0.9f, 0.f},
                          {0.7f, 0.9f, 0.05f}, {1.f, 0.95f, 0.02f}, {0.8f, 0.95f, 1e-5f}, {2.5f, 0.9f, -1.f}};
    for (Shape shape : {Shape::Gaussian, Shape::Peaked, Shape::WithNegInf}) {
        const auto logits = make_logits(shape, 151936, rng);
        for (const Case& c : cases) {
            SampleStep s = step_of(c);
            if (c.min_p < 0.f) {
                // The reference's top-p survivors: the last one's e^(l - max), raised a little.
                s.min_p = 0.f;
                s.temperature = 1.f;
                (void)ref.sample(logits, s);
                s.temperature = c.temp;
                s.min_p = static_cast<float>(std::exp(ref.cand.back().first - ref.cand.front().first + 0.01));
            }
            const uint64_t fallbacks_before = fallbacks();
            for (int d = 0; d < 8; ++d) {
                s.u = unit(rng);
                const uint64_t before = fallbacks();
                ASSERT_EQ(sample_on_host(logits, s, scratch), ref.sample(logits, s))
                    << "u=" << s.u << " T=" << c.temp << " top_p=" << c.top_p << " min_p=" << s.min_p;
                ++random_draws;
                if (s.top_p < 1.f && c.temp != 1.f) {
                    ++second_pass_draws;
                    if (fallbacks() != before) ++second_pass_fallbacks;
                }
            }
            // The screen decides the pick's crossing for most draws. Top-p's crossing is one per logits vector: when
            // it lies within the screen's error bound of a boundary (bulk tokens of 1e-6 each near the cut), every
            // draw on that vector takes the exact pass, so no rate is asked of it.
            if (c.top_p == 1.f) {
                EXPECT_LE(fallbacks() - fallbacks_before, 2u) << "T=" << c.temp;
            }
            for (int b = 0; b < 3; ++b) {
                const std::vector<double> cum = ref.last_cum;
                const double at = cum[rng() % std::min<size_t>(cum.size(), 2000)];  // the first 2000 hold most mass
                if (!(at < 1.0)) continue;
                for (double u : {at, std::nextafter(at, 0.0), std::nextafter(at, 2.0)}) {
                    s.u = u;
                    const uint64_t before = fallbacks();
                    ASSERT_EQ(sample_on_host(logits, s, scratch), ref.sample(logits, s))
                        << "boundary u=" << u << " T=" << c.temp << " top_p=" << c.top_p << " min_p=" << s.min_p;
                    if (u == at) {
                        EXPECT_GT(fallbacks(), before) << "a fast path decided a draw on a boundary, T=" << c.temp
                                                       << " top_p=" << c.top_p << " min_p=" << s.min_p;
                        ++on_boundary;
                    }
                }
                // Draws 1e-9 (relative) beside a boundary: inside the screen's bound (1.3e-9 at its finest bins,
                // 3.6e-8 at its widest, times the draw and the mass before it), outside the double-precision pass's
                // (about 2.7e-10 of the total at this size, so for draws above 0.5), so that pass, not the sorted
                // definition, decides most of them.
                for (double u : {at * (1 - 1e-9), at * (1 + 1e-9)}) {
                    if (!(at > 0.5 && u < 1.0)) continue;
                    s.u = u;
                    const uint64_t screen_before = scratch.screen_fallbacks, sorted_before = scratch.sorted_fallbacks;
                    ASSERT_EQ(sample_on_host(logits, s, scratch), ref.sample(logits, s))
                        << "u=" << u << " T=" << c.temp << " top_p=" << c.top_p << " min_p=" << s.min_p;
                    ++near_boundary;
                    if (scratch.screen_fallbacks != screen_before && scratch.sorted_fallbacks == sorted_before) {
                        ++exact_pass_decided;
                    }
                }
            }
        }
    }
    EXPECT_GT(on_boundary, 60u);
    EXPECT_GT(exact_pass_decided, near_boundary / 2) << "of " << near_boundary;
    EXPECT_GT(random_draws, 300u);
    // The second pass decides most of its draws (a vector whose top-p cut lies within the bound of a boundary sends
    // all of its draws to the exact pass, so a few vectors' worth may).
    EXPECT_LT(second_pass_fallbacks, second_pass_draws / 2) << "of " << second_pass_draws;
}

// What check_draws ran: random draws, those the screen left to an exact pass, and draws exactly on a boundary.
struct DrawCounts {
    uint64_t random = 0, random_fallbacks = 0, on_boundary = 0;
};

// Twelve random draws of step s (its parameters, a fresh u each) against the definition, then draws on and beside up to
// six of the definition's cumulative boundaries: each must pick the definition's token, and a draw exactly on a
// boundary must leave the fast paths. Fatal failures stop it (callers wrap it in ASSERT_NO_FATAL_FAILURE).
void check_draws(const std::vector<float>& logits, SampleStep s, SampleScratch& scratch, Reference& ref,
                 std::mt19937_64& rng, DrawCounts& n) {
    std::uniform_real_distribution<double> unit(0.0, 1.0);
    auto fallbacks = [&] { return scratch.screen_fallbacks + scratch.sorted_fallbacks; };
    const auto params = [&] {
        return testing::Message() << " T=" << s.temperature << " top_p=" << s.top_p << " min_p=" << s.min_p;
    };
    for (int d = 0; d < 12; ++d) {
        s.u = unit(rng);
        const uint64_t before = fallbacks();
        ASSERT_EQ(sample_on_host(logits, s, scratch), ref.sample(logits, s)) << "u=" << s.u << params();
        ++n.random;
        if (fallbacks() != before) ++n.random_fallbacks;
    }
    for (int b = 0; b < 6; ++b) {
        const std::vector<double> cum = ref.last_cum;
        const double at = cum[rng() % cum.size()];
        if (!(at < 1.0)) continue;
        for (double u : {at, std::nextafter(at, 0.0), std::nextafter(at, 2.0), at * (1 - 1e-9), at * (1 + 1e-9)}) {
            if (!(u < 1.0)) continue;
            s.u = u;
            const uint64_t before = fallbacks();
            ASSERT_EQ(sample_on_host(logits, s, scratch), ref.sample(logits, s)) << "boundary u=" << u << params();
            if (u == at) {
                EXPECT_GT(fallbacks(), before) << "a fast path decided a draw on a boundary," << params();
                ++n.on_boundary;
            }
        }
    }
}

// check_draws for each (temperature, top-p, min-p), top-k off, on one scratch (as a sequence's steps share it).
void check_cases(const std::vector<float>& logits, std::initializer_list<DrawCase> cases, std::mt19937_64& rng,
                 DrawCounts& n) {
    SampleScratch scratch;
    Reference ref;
    for (const DrawCase& c : cases) ASSERT_NO_FATAL_FAILURE(check_draws(logits, step_of(c), scratch, ref, rng, n));
}

// Flat logits at a real vocabulary size (a gaussian of sd 0.5: a spread of about 4.5 units, so the screen takes its
// finest bins, and top-p 0.9 keeps most of the vocabulary): top-p at temperatures other than 1 (the first pass's second
// weight on fine bins; at T 0.1 too coarse for it, a second pass in place over the kept tokens), at temperature 1,
// with min-p inside the kept set, and the pick alone. Random draws must match the definition and nearly all stay on
// the screen; draws exactly on the definition's boundaries must leave it, and the draws beside them must still match.
TEST(SampleChain, FlatLogitsDrawsMatchAt152k) {
    std::mt19937_64 rng(17);
    std::normal_distribution<float> g(0.f, 0.5f);
    std::vector<float> logits(151936);
    for (float& v : logits) v = g(rng);
    DrawCounts n;
    ASSERT_NO_FATAL_FAILURE(check_cases(logits,
                                        {{0.7f, 0.9f, 0.f},
                                         {0.3f, 0.9f, 0.f},
                                         {1.3f, 0.95f, 0.f},
                                         {0.1f, 0.9f, 0.f},
                                         {1.f, 0.9f, 0.f},
                                         {0.7f, 0.9f, 0.5f},
                                         {0.7f, 1.f, 0.f},
                                         {1.f, 1.f, 0.f}},
                                        rng, n));
    EXPECT_GT(n.on_boundary, 40u);
    // The screen's bound on these fine bins is about 4e-9 of the total, each token about 7e-6 of it: a random draw
    // lands within the bound of a boundary about once in a thousand (the top-p cut, one per vector, may too).
    EXPECT_LE(n.random_fallbacks, 2u) << "of " << n.random;
}

// Flat logits with most of the vocabulary masked to -inf (as a grammar's token mask leaves it), at a size that is not
// a multiple of eight: the screen's pass sends the masked tokens to per-lane slots of the tail bin (weight 0) rather
// than one count, and its last eight tokens are padded; the histogram must still hold exactly the unmasked tokens'
// weights. Top-p with the second weight, at temperature 1, and the pick alone; random draws and draws on and beside
// the definition's boundaries.
TEST(SampleChain, MaskedFlatLogitsDrawsMatch) {
    std::mt19937_64 rng(19);
    std::normal_distribution<float> g(0.f, 0.5f);
    std::vector<float> logits(151939);
    for (float& v : logits) v = g(rng);
    for (size_t i = 0; i < logits.size(); ++i) {
        if (rng() % 10 != 0) logits[i] = -std::numeric_limits<float>::infinity();
    }
    logits.back() = 0.25f;  // a kept token among the padded last ones
    DrawCounts n;
    ASSERT_NO_FATAL_FAILURE(check_cases(
        logits, {{0.7f, 0.9f, 0.f}, {0.3f, 0.9f, 0.f}, {1.f, 0.9f, 0.f}, {0.7f, 1.f, 0.f}, {1.f, 1.f, 0.f}}, rng, n));
    EXPECT_GT(n.on_boundary, 20u);
    // About 15,000 unmasked tokens: a random draw lands within the screen's bound of a boundary far less often than
    // at the full vocabulary.
    EXPECT_LE(n.random_fallbacks, 2u) << "of " << n.random;
}

// The screen's pass variants at a size that leaves eleven tokens after the sixteen-token steps (one step of eight, then
// three padded): logits of sd 0.5, 1 and 2.5 take bins of 128, 64 and 32 per unit, so the passes run the cubic with two
// weights (T 0.7 and 1.3 at 128, T 1.3 at 64), degree 5 with two weights (T 0.7 at 64: b T under 64), the cubic with
// one weight (T 1 at 128 and 64) and degree 5 with one (at 32, and its gathered second pass at T 0.7), all without the
// tail's masks (every logit finite); then the flat logits with a few NaN (read as -inf: the masked lanes, cubic).
// Random draws and draws on and beside the definition's boundaries, as in check_draws.
TEST(SampleChain, ScreenPassVariantsMatchAtAnOddSize) {
    std::mt19937_64 rng(23);
    DrawCounts n;
    for (const float sd : {0.5f, 1.f, 2.5f}) {
        std::normal_distribution<float> g(0.f, sd);
        std::vector<float> logits(151947);
        for (float& v : logits) v = g(rng);
        ASSERT_NO_FATAL_FAILURE(check_cases(
            logits, {{0.7f, 0.9f, 0.f}, {1.3f, 0.9f, 0.f}, {1.f, 0.9f, 0.f}, {0.7f, 1.f, 0.f}, {1.f, 1.f, 0.f}}, rng,
            n))
            << "sd " << sd;
        if (sd == 0.5f) {
            for (size_t i = 0; i < 40; ++i) logits[rng() % logits.size()] = std::numeric_limits<float>::quiet_NaN();
            ASSERT_NO_FATAL_FAILURE(check_cases(logits, {{0.7f, 0.9f, 0.f}, {1.f, 1.f, 0.f}}, rng, n)) << "with NaN";
        }
    }
    EXPECT_GT(n.on_boundary, 60u);
    EXPECT_LE(n.random_fallbacks, 3u) << "of " << n.random;
}

// A wide top-k (the sampled threshold instead of the heap) at a real vocabulary size, with top-p and the pick at
// another temperature after it: random draws and draws on and beside the definition's boundaries. The last vector
// puts a high logit exactly where the threshold's strided sample looks, so that fewer than k tokens reach the
// threshold and the heap must take over.
TEST(SampleChain, WideTopKMatchesAt152k) {
    std::mt19937_64 rng(13);
    std::uniform_real_distribution<double> unit(0.0, 1.0);
    SampleScratch scratch;
    Reference ref;
    constexpr size_t n = 151936;
    std::vector<std::vector<float>> vectors;
    for (Shape shape : {Shape::Gaussian, Shape::Peaked, Shape::Ties, Shape::WithNegInf}) {
        vectors.push_back(make_logits(shape, n, rng));
    }
    auto untypical = make_logits(Shape::Gaussian, n, rng);
    for (size_t i = 0; i < 4096; ++i) untypical[i * n / 4096] = 40.f + static_cast<float>(i % 7);
    vectors.push_back(untypical);
    for (const auto& logits : vectors) {
        for (int32_t k : {200, 1000, 5000, 20000}) {
            for (const auto& [temp, top_p] : {std::pair{0.7f, 0.9f}, {1.f, 1.f}, {1.3f, 0.95f}}) {
                SampleStep s;
                s.temperature = temp;
                s.top_k = k;
                s.top_p = top_p;
                s.min_p = 0.f;
                for (int d = 0; d < 3; ++d) {
                    s.u = unit(rng);
                    ASSERT_EQ(sample_on_host(logits, s, scratch), ref.sample(logits, s))
                        << "u=" << s.u << " k=" << k << " T=" << temp << " top_p=" << top_p;
                }
                const std::vector<double> cum = ref.last_cum;
                const double at = cum[rng() % cum.size()];
                for (double u : {at, std::nextafter(at, 0.0), std::nextafter(at, 2.0)}) {
                    if (!(u < 1.0)) continue;
                    s.u = u;
                    ASSERT_EQ(sample_on_host(logits, s, scratch), ref.sample(logits, s))
                        << "boundary u=" << u << " k=" << k << " T=" << temp << " top_p=" << top_p;
                }
            }
        }
    }
}

// argmax_token against the scalar definition (the first index of the largest non-NaN value; 0 when there is none)
// on every logit shape, at sizes around the eight- and sixteen-lane steps, and on all-NaN and all -inf rows.
TEST(SampleChain, ArgmaxTokenIsTheFirstLargestNonNaN) {
    auto definition = [](const std::vector<float>& l) {
        TokenId best = -1;
        for (size_t i = 0; i < l.size(); ++i) {
            if (!std::isnan(l[i]) && (best < 0 || l[i] > l[static_cast<size_t>(best)])) best = static_cast<TokenId>(i);
        }
        return best < 0 ? 0 : best;
    };
    std::mt19937_64 rng(17);
    int checked = 0;
    for (const size_t n : {1, 7, 8, 9, 15, 16, 17, 31, 33, 1000, 152064}) {
        for (const Shape shape : {Shape::Gaussian, Shape::Peaked, Shape::Ties, Shape::WithNegInf, Shape::WithNaN,
                                  Shape::WithPosInf, Shape::Flat}) {
            for (int rep = 0; rep < (n > 1000 ? 2 : 20); ++rep) {
                const std::vector<float> l = make_logits(shape, n, rng);
                ASSERT_EQ(argmax_token(l), definition(l)) << "n " << n << " shape " << static_cast<int>(shape);
                ++checked;
            }
        }
        const float nan = std::numeric_limits<float>::quiet_NaN(), inf = std::numeric_limits<float>::infinity();
        std::vector<float> l(n, nan);
        EXPECT_EQ(argmax_token(l), 0) << "all NaN, n " << n;
        l.assign(n, -inf);
        EXPECT_EQ(argmax_token(l), 0) << "all -inf, n " << n;
        l[n - 1] = 0.f;
        if (n > 1) l[0] = nan;
        EXPECT_EQ(argmax_token(l), static_cast<TokenId>(n - 1)) << "one finite value last, n " << n;
        l.assign(n, 1.f);
        EXPECT_EQ(argmax_token(l), 0) << "all tied, n " << n;
    }
    EXPECT_EQ(argmax_token({}), 0);
    EXPECT_GT(checked, 1000);
}

TEST(SampleChain, EmptyLogitsThrow) {
    SampleStep s;
    EXPECT_THROW((void)sample_on_host(std::span<const float>(), s), Error);
}

}  // namespace
}  // namespace orcd::backend
