#include <gtest/gtest.h>

#include <cmath>
#include <map>
#include <vector>

#include "common/error.h"
#include "engine/sampler.h"

namespace orcd::engine {
namespace {

SamplingParams plain(float temp) {
    SamplingParams p;
    p.temperature = temp;
    p.top_k = 0;
    p.top_p = 1.f;
    p.min_p = 0.f;
    p.seed = 42;
    return p;
}

TEST(Sampler, TemperatureZeroIsArgmaxWithLowestIdOnTies) {
    Sampler s(plain(0.f));
    const std::vector<float> l = {0.1f, 3.f, -2.f, 3.f, 1.f};
    for (int i = 0; i < 5; ++i) EXPECT_EQ(s.sample(l, {}), 1);
}

TEST(Sampler, SameSeedSameSequenceDifferentSeedDifferentSequence) {
    std::vector<float> l(1000);
    for (size_t i = 0; i < l.size(); ++i) l[i] = static_cast<float>(std::sin(i * 0.37) * 2);
    auto run = [&](uint64_t seed) {
        SamplingParams p;  // llama.cpp defaults: temp 0.8, top-k 40, top-p 0.95, min-p 0.05
        p.seed = seed;
        Sampler s(p);
        std::vector<TokenId> out;
        for (int i = 0; i < 64; ++i) out.push_back(s.sample(l, out));
        return out;
    };
    EXPECT_EQ(run(7), run(7));
    EXPECT_NE(run(7), run(8));
}

TEST(Sampler, UnseededRequestGetsAReportedSeedThatReproducesIt) {
    SamplingParams p = plain(1.f);
    p.seed.reset();
    Sampler a(p);
    p.seed = a.seed();
    Sampler b(p);
    const std::vector<float> l = {1, 2, 3, 2, 1, 0.5f, 2.5f};
    for (int i = 0; i < 50; ++i) EXPECT_EQ(a.sample(l, {}), b.sample(l, {}));
}

TEST(Sampler, DrawsFollowTheSoftmaxAtTheTemperature) {
    // Chi-square goodness of fit on 4 categories; the threshold (3 d.o.f., p = 1e-4) makes a false failure
    // practically impossible while a wrong temperature or an off-by-one in the draw fails clearly.
    const std::vector<float> l = {0.f, 1.f, 2.f, 0.5f};
    const float temp = 0.7f;
    Sampler s(plain(temp));
    const int n = 40000;
    std::map<TokenId, int> count;
    for (int i = 0; i < n; ++i) ++count[s.sample(l, {})];
    double z = 0;
    for (float v : l) z += std::exp(v / temp);
    double chi2 = 0;
    for (size_t i = 0; i < l.size(); ++i) {
        const double e = n * std::exp(l[i] / temp) / z;
        chi2 += (count[static_cast<TokenId>(i)] - e) * (count[static_cast<TokenId>(i)] - e) / e;
    }
    EXPECT_LT(chi2, 21.1);
}

TEST(Sampler, TopKTopPAndMinPRestrictTheCandidates) {
    const std::vector<float> l = {5.f, 4.9f, 1.f, 0.f, -1.f};
    auto support = [&](SamplingParams p) {
        Sampler s(p);
        std::map<TokenId, int> seen;
        for (int i = 0; i < 2000; ++i) ++seen[s.sample(l, {})];
        std::vector<TokenId> ids;
        for (auto& [id, c] : seen) ids.push_back(id);
        return ids;
    };
    SamplingParams p = plain(1.f);
    p.top_k = 1;
    EXPECT_EQ(support(p), std::vector<TokenId>{0});
    p = plain(1.f);
    p.top_k = 2;
    EXPECT_EQ(support(p), (std::vector<TokenId>{0, 1}));
    p = plain(1.f);
    // Probabilities: 0.518, 0.468, 0.009, 0.003, 0.001. The set ends with the first token that brings the
    // cumulated probability to top_p.
    p.top_p = 0.6f;
    EXPECT_EQ(support(p), (std::vector<TokenId>{0, 1}));
    p = plain(1.f);
    p.top_p = 0.5f;
    EXPECT_EQ(support(p), std::vector<TokenId>{0});
    p = plain(1.f);
    p.min_p = 0.5f;  // p(1)/p(0) = e^-0.1 = 0.9 kept; p(2)/p(0) = e^-4 dropped
    EXPECT_EQ(support(p), (std::vector<TokenId>{0, 1}));
    p = plain(1.f);
    EXPECT_EQ(support(p).size(), 5u);
}

TEST(Sampler, RepeatPenaltyDemotesRecentTokensOnly) {
    const std::vector<float> l = {2.0f, 1.9f, -1.f, -1.1f};
    SamplingParams p = plain(0.f);
    p.repeat_penalty = 1.5f;
    p.repeat_last_n = 2;
    Sampler s(p);
    EXPECT_EQ(s.sample(l, std::vector<TokenId>{0}), 1);        // 2.0 / 1.5 < 1.9
    EXPECT_EQ(s.sample(l, std::vector<TokenId>{0, 3, 3}), 0);  // 0 is outside the window of 2
    // Negative logits are multiplied (made more negative): -1 * 1.5 < -1.1.
    const std::vector<float> neg = {-1.f, -1.1f};
    EXPECT_EQ(s.sample(neg, std::vector<TokenId>{0}), 1);
}

// OpenAI's definition, written out independently: mu[j] - c[j] * frequency - (c[j] > 0) * presence + bias[j], with
// c[j] the count of j among the generated tokens.
TEST(Sampler, PresenceFrequencyPenaltyAndLogitBiasFollowOpenAi) {
    SamplingParams p = plain(0.f);
    p.presence_penalty = 0.5f;
    p.frequency_penalty = 0.25f;
    p.logit_bias = {{1, -100.f}, {4, 2.5f}, {99, 7.f}};  // 99: outside the vocabulary, ignored
    Sampler s(p);
    ASSERT_TRUE(s.adjusts_logits());
    const std::vector<float> raw = {1.f, 2.f, 3.f, 4.f, 5.f, -6.f};
    const std::vector<TokenId> generated = {2, 2, 2, 5, 0, 2};
    std::vector<float> got = raw;
    s.adjust(got, generated);
    for (size_t j = 0; j < raw.size(); ++j) {
        double c = 0;
        for (TokenId t : generated) c += t == static_cast<TokenId>(j);
        double want = raw[j] - c * 0.25 - (c > 0 ? 0.5 : 0.0);
        if (j == 1) want -= 100;
        if (j == 4) want += 2.5;
        EXPECT_NEAR(got[j], want, 1e-5) << "token " << j;
    }
    // The counts start from zero at every call (scratch is cleared).
    got = raw;
    s.adjust(got, std::vector<TokenId>{3});
    EXPECT_NEAR(got[3], 4.f - 0.75f, 1e-6);
    EXPECT_NEAR(got[2], 3.f, 1e-6);
    // Off by default: nothing to adjust, and the chain sees the logits as they are.
    EXPECT_FALSE(Sampler(plain(1.f)).adjusts_logits());
}

TEST(Sampler, RejectsOutOfRangeParameters) {
    SamplingParams p;
    p.top_p = 0.f;
    EXPECT_THROW(Sampler{p}, Error);
    p = {};
    p.repeat_penalty = -1.f;
    EXPECT_THROW(Sampler{p}, Error);
    p = {};
    p.min_p = 2.f;
    EXPECT_THROW(Sampler{p}, Error);
    p = {};
    p.presence_penalty = 2.5f;
    EXPECT_THROW(Sampler{p}, Error);
    p = {};
    p.frequency_penalty = -3.f;
    EXPECT_THROW(Sampler{p}, Error);
    p = {};
    p.logit_bias = {{-1, 1.f}};
    EXPECT_THROW(Sampler{p}, Error);
    p.logit_bias = {{3, 101.f}};
    EXPECT_THROW(Sampler{p}, Error);
}

}  // namespace
}  // namespace orcd::engine
