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
        std::printf("%s: mean |dNLL| vs F32: F16 %.2e, Q8_0 %.2e, Q4_K_M %.2e (F32 mean NLL %.4f, ppl %.1f)\n",
                    preset, d16, d8, d4, f32.nll_mean, f32.ppl);
        EXPECT_GT(d16, 0.0);
        EXPECT_GT(d8 / d16, 10.0);  // predicted ~28
        EXPECT_LT(d8 / d16, 80.0);
        EXPECT_GT(d4 / d8, 3.0);    // predicted up to ~17, diluted by the mix
        EXPECT_LT(d4 / d8, 40.0);
        EXPECT_LT(d4, 1.0);
    }
}

}  // namespace
}  // namespace orcd::engine
