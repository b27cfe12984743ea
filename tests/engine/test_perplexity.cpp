#include <gtest/gtest.h>

#include <cmath>
#include <random>

#include "backend/cpu/cpu_backend.h"
#include "common/error.h"
#include "engine/perplexity.h"
#include "model/model.h"
#include "tiny_models.h"

namespace orcd::engine {
namespace {

std::vector<backend::TokenId> random_tokens(size_t n, uint32_t n_vocab, unsigned seed) {
    std::mt19937 rng(seed);
    std::uniform_int_distribution<backend::TokenId> d(0, static_cast<backend::TokenId>(n_vocab) - 1);
    std::vector<backend::TokenId> t(n);
    for (auto& v : t) v = d(rng);
    return t;
}

TEST(Perplexity, BatchedScoringMatchesLogSoftmaxOfOneForward) {
    const model::Model m = model::open_model(test::tiny_model("qwen2.5-tiny", synth::FileType::F32));
    auto be = backend::cpu::make_cpu_backend(m, {.n_threads = 2});
    const auto toks = random_tokens(40, m.config.n_vocab, 1);
    auto seq = be->new_sequence({.n_ctx = 64});
    const PerplexityResult r = score_tokens(*seq, toks, /*batch=*/7);
    ASSERT_EQ(r.nll.size(), toks.size() - 1);
    ASSERT_EQ(r.argmax.size(), toks.size() - 1);
    auto seq2 = be->new_sequence({.n_ctx = 64});
    const auto logits = seq2->prefill(toks, true);
    const size_t V = m.config.n_vocab;
    double sum = 0;
    for (size_t i = 0; i + 1 < toks.size(); ++i) {
        const auto row = logits.subspan(i * V, V);
        double z = 0;
        for (float v : row) z += std::exp(double(v));
        const double nll = std::log(z) - row[static_cast<size_t>(toks[i + 1])];
        EXPECT_NEAR(r.nll[i], nll, 1e-4 * std::max(1.0, nll)) << i;
        EXPECT_EQ(r.argmax[i], std::max_element(row.begin(), row.end()) - row.begin());
        sum += nll;
    }
    EXPECT_NEAR(r.nll_mean, sum / double(toks.size() - 1), 1e-4);
    EXPECT_NEAR(r.ppl, std::exp(r.nll_mean), 1e-9 * r.ppl);
}

TEST(Perplexity, RejectsTextLongerThanTheContextAndTooShortText) {
    const model::Model m = model::open_model(test::tiny_model("qwen2.5-tiny", synth::FileType::F32));
    auto be = backend::cpu::make_cpu_backend(m, {.n_threads = 1});
    auto seq = be->new_sequence({.n_ctx = 8});
    try {
        score_tokens(*seq, random_tokens(9, m.config.n_vocab, 2));
        FAIL();
    } catch (const Error& e) {
        EXPECT_EQ(e.code(), ErrorCode::ContextOverflow);
    }
    EXPECT_THROW(score_tokens(*seq, random_tokens(1, m.config.n_vocab, 2)), Error);
}

// The same synthetic weights (same seed) stored as F16, Q8_0 and Q4_K_M: the per-position NLL moves away from the
// F32 model's in proportion to the formats' weight error. For synth's uniform weights (half-width a = sqrt(3) sigma):
//   F16: relative rounding error uniform in +-2^-11, rms about 2^-11 / sqrt(3) * (mean |w| / sigma) ~ 1.4e-4 sigma;
//   Q8_0: step = amax / 127 ~ a / 127, rms error step / sqrt(12) ~ 3.9e-3 sigma: ~28x F16;
//   Q4_K: 16 levels over the sub-block's range (~2a): step ~ 2a / 15, rms ~ 6.7e-2 sigma: ~17x Q8_0, less in the
//   Q4_K_M mix, which keeps some tensors in Q6_K / Q8_0 / Q5_0.
// Measured (recorded in docs/PERF.md): F16 ~1.4e-3, Q8_0 ~3.9e-2 (28x), Q4_K_M ~0.35 (9x) mean |dNLL| in nats.
TEST(Perplexity, DeviationFromF32GrowsAsPrecisionDrops) {
    for (const char* preset : {"qwen2.5-tiny", "phi3-tiny", "llama-tiny"}) {
        SCOPED_TRACE(preset);
        auto score = [&](synth::FileType t) {
            const model::Model m = model::open_model(test::tiny_model(preset, t));
            auto be = backend::cpu::make_cpu_backend(m, {.n_threads = 2});
            auto seq = be->new_sequence({.n_ctx = 128});
            return score_tokens(*seq, random_tokens(128, m.config.n_vocab, 3));
        };
        const auto f32 = score(synth::FileType::F32);
        auto dev = [&](const PerplexityResult& r) {
            double s = 0;
            for (size_t i = 0; i < r.nll.size(); ++i) s += std::fabs(r.nll[i] - f32.nll[i]);
            return s / static_cast<double>(r.nll.size());
        };
        const double d16 = dev(score(synth::FileType::F16)), d8 = dev(score(synth::FileType::Q8_0)),
                     d4 = dev(score(synth::FileType::Q4_K_M));
        std::printf("%s: mean |dNLL| vs F32: F16 %.2e, Q8_0 %.2e, Q4_K_M %.2e (F32 mean NLL %.4f, ppl %.1f)\n", preset,
                    d16, d8, d4, f32.nll_mean, f32.ppl);
        EXPECT_GT(d16, 0.0);
        EXPECT_GT(d8 / d16, 10.0);  // predicted ~28
        EXPECT_LT(d8 / d16, 80.0);
        EXPECT_GT(d4 / d8, 3.0);  // predicted up to ~17, diluted by the mix
        EXPECT_LT(d4 / d8, 40.0);
        EXPECT_LT(d4, 1.0);
    }
}

// llama-perplexity's windows: the chunked sums equal a hand-assembled sum of score_tokens' per-position NLLs (what
// `orcd perplexity --json` prints) over the same windows — BOS in front, the second half of each counted.
TEST(Perplexity, ChunkedSumsEqualTheSecondHalvesOfEachWindow) {
    const model::Model m = model::open_model(test::tiny_model("qwen2.5-tiny", synth::FileType::F32));
    auto be = backend::cpu::make_cpu_backend(m, {.n_threads = 2});
    constexpr uint32_t kCtx = 16;
    const auto toks = random_tokens(3 * kCtx + 5, m.config.n_vocab, 11);  // 3 windows; the 5 left over are dropped
    const backend::TokenId bos = 7;
    std::vector<std::pair<size_t, double>> progress;
    auto seq = be->new_sequence({.n_ctx = kCtx});
    const ChunkedPerplexity r = score_chunks(*seq, toks, kCtx, bos, [&](size_t c, size_t n, double ppl) {
        EXPECT_EQ(n, 3u);
        progress.emplace_back(c, ppl);
    });
    ASSERT_EQ(r.n_chunks, 3u);
    EXPECT_EQ(r.scored, 3u * (kCtx - 1 - kCtx / 2));  // 7 per window: positions 8..14 predict tokens 9..15

    double sum = 0, sq = 0;
    size_t count = 0;
    for (size_t c = 0; c < 3; ++c) {
        std::vector<backend::TokenId> window(toks.begin() + c * kCtx, toks.begin() + (c + 1) * kCtx);
        window[0] = bos;
        auto fresh = be->new_sequence({.n_ctx = kCtx});
        const PerplexityResult w = score_tokens(*fresh, window);
        for (size_t j = kCtx / 2; j <= kCtx - 2; ++j) {
            sum += w.nll[j];
            sq += w.nll[j] * w.nll[j];
            ++count;
        }
        ASSERT_EQ(progress.size(), 3u);
        EXPECT_EQ(progress[c].first, c + 1);
        EXPECT_NEAR(progress[c].second, std::exp(sum / double(count)), 1e-9 * progress[c].second);
    }
    EXPECT_NEAR(r.nll_sum, sum, 1e-9 * sum);
    EXPECT_NEAR(r.nll_sq_sum, sq, 1e-9 * sq);
    EXPECT_NEAR(r.ppl, std::exp(sum / double(count)), 1e-9 * r.ppl);
    EXPECT_GT(r.ppl_error, 0.0);

    // Without BOS the windows keep their own first token: a different sum.
    auto seq2 = be->new_sequence({.n_ctx = kCtx});
    EXPECT_NE(score_chunks(*seq2, toks, kCtx, std::nullopt).nll_sum, r.nll_sum);
}

// The standard error against a direct computation: the sample variance of the NLLs from their deviations, divided by
// the count, square-rooted, times PPL (the delta method for exp of a mean); and a hand-computed case.
TEST(Perplexity, StandardErrorIsPplTimesTheStandardErrorOfTheMeanNll) {
    // {1, 2, 3, 4}: mean 2.5, sum of squared deviations 5, population variance 1.25, 1.25 / 3 = 0.416667,
    // sqrt = 0.645497; PPL = e^2.5 = 12.182494; error = 12.182494 * 0.645497 = 7.863766.
    const PplEstimate hand = ppl_estimate(10.0, 30.0, 4);
    EXPECT_NEAR(hand.ppl, 12.182494, 1e-6);
    EXPECT_NEAR(hand.error, 7.863766, 1e-6);

    std::mt19937 rng(5);
    std::gamma_distribution<double> g(2.0, 1.5);
    std::vector<double> x(1000);
    double sum = 0, sq = 0;
    for (double& v : x) {
        v = g(rng);
        sum += v;
        sq += v * v;
    }
    const double mean = sum / double(x.size());
    double dev = 0;
    for (double v : x) dev += (v - mean) * (v - mean);
    const double sem = std::sqrt(dev / double(x.size()) / double(x.size() - 1));
    const PplEstimate e = ppl_estimate(sum, sq, x.size());
    EXPECT_NEAR(e.ppl, std::exp(mean), 1e-12 * e.ppl);
    EXPECT_NEAR(e.error, std::exp(mean) * sem, 1e-9 * e.error);
    EXPECT_EQ(ppl_estimate(2.0, 4.0, 1).error, 0.0);  // one value: no spread to estimate
    EXPECT_EQ(ppl_estimate(0, 0, 0).ppl, 0.0);
}

TEST(Perplexity, ChunkedRefusesShortTextsTinyWindowsAndSmallSequences) {
    const model::Model m = model::open_model(test::tiny_model("qwen2.5-tiny", synth::FileType::F32));
    auto be = backend::cpu::make_cpu_backend(m, {.n_threads = 1});
    auto seq = be->new_sequence({.n_ctx = 16});
    auto code = [&](std::span<const backend::TokenId> t, uint32_t n_ctx) {
        try {
            (void)score_chunks(*seq, t, n_ctx, std::nullopt);
        } catch (const Error& e) {
            return e.code();
        }
        return ErrorCode::Ok;
    };
    EXPECT_EQ(code(random_tokens(31, m.config.n_vocab, 1), 16), ErrorCode::InvalidArgument);  // < 2 windows
    EXPECT_EQ(code(random_tokens(64, m.config.n_vocab, 1), 2), ErrorCode::InvalidArgument);   // window too small
    EXPECT_EQ(code(random_tokens(64, m.config.n_vocab, 1), 32), ErrorCode::ContextOverflow);  // sequence holds 16
}

}  // namespace
}  // namespace orcd::engine
