// Token masks in the CPU backend's batched step (backend/token_mask.h): the checks every backend passes
// (masked_step_checks.h), and the repair rule of a pick that lands on a masked-out token.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <random>
#include <vector>

#include "../engine/tiny_models.h"
#include "backend/cpu/cpu_backend.h"
#include "backend/token_mask.h"
#include "masked_step_checks.h"
#include "model/model.h"

namespace orcd {
namespace {

std::unique_ptr<backend::Backend> cpu() {
    return backend::cpu::make_cpu_backend(model::open_model(test::tiny_model("qwen2.5-tiny", synth::FileType::Q8_0)),
                                          {.n_threads = 2});
}

TEST(CpuTokenMask, ConstrainedPicksAreTheSameAloneAndAmongFreeSequences) {
    auto b = cpu();
    test::masked_step::check_batch_invariance(*b);
}

TEST(CpuTokenMask, PicksEqualTheTestsOwnMaskedPicksOnTheSameLogits) {
    auto b = cpu();
    test::masked_step::check_against_reference(*b);
}

TEST(CpuTokenMask, LateMasksPickWhatReadyMasksPick) {
    auto b = cpu();
    test::masked_step::check_late_masks(*b);
}

TEST(CpuTokenMask, BadMasksAreRefused) {
    auto b = cpu();
    test::masked_step::check_bad_masks_refused(*b);
}

// A sequence decoded through Sequence::decode_masked (the batch-of-one path of orcd generate) picks what the step
// picks for the same entry.
TEST(CpuTokenMask, DecodeMaskedEqualsTheStep) {
    auto b = cpu();
    const auto plan = test::masked_step::make_plan(b->n_vocab(), 3);
    const auto stepped = test::masked_step::run(*b, {0}, plan, true)[0];
    auto seq = b->new_sequence({.n_ctx = 128, .kv_type = backend::KvCacheType::F16});  // the pools' type
    const auto prompt = test::masked_step::prompt_of(0, b->n_vocab());
    backend::TokenId last = backend::argmax_token(seq->prefill(prompt));
    for (int s = 0; s < test::masked_step::kSteps; ++s) {
        const backend::SampleStep* ss =
            plan.want[static_cast<size_t>(s)] == backend::Want::Sample ? &plan.sample[static_cast<size_t>(s)] : nullptr;
        last = seq->decode_masked(last, ss, plan.mask[static_cast<size_t>(s)]);
        EXPECT_EQ(last, stepped[static_cast<size_t>(s)]) << "step " << s;
    }
}

// allowed_pick: an allowed pick stands; a masked-out one gives way to the masked argmax, and when that too is masked
// out (every allowed logit NaN) to the lowest allowed id. first_allowed ignores bits past the vocabulary.
TEST(TokenMaskRule, RepairsAPickOnAMaskedOutToken) {
    const std::vector<uint64_t> mask = {0, (uint64_t{1} << 3) | (uint64_t{1} << 9)};  // tokens 67 and 73
    int argmax_calls = 0;
    auto argmax_is = [&](backend::TokenId t) {
        return [&argmax_calls, t] {
            ++argmax_calls;
            return t;
        };
    };
    EXPECT_EQ(backend::allowed_pick(73, mask, 100, argmax_is(67)), 73);
    EXPECT_EQ(argmax_calls, 0);
    EXPECT_EQ(backend::allowed_pick(5, mask, 100, argmax_is(73)), 73);
    EXPECT_EQ(backend::allowed_pick(5, mask, 100, argmax_is(0)), 67);
    EXPECT_EQ(backend::first_allowed(mask, 100), 67);
    EXPECT_EQ(backend::first_allowed(mask, 67), std::nullopt);
    EXPECT_EQ(backend::first_allowed({}, 100), std::nullopt);

    std::vector<float> row(100, 1.0f);
    row[67] = row[73] = std::numeric_limits<float>::quiet_NaN();
    EXPECT_EQ(backend::pick_on_host(row, nullptr, mask), 67);
    EXPECT_TRUE(std::isinf(row[0]) && row[0] < 0);
}

// mask_logits against its definition (token_allowed), token by token: masks of whole words of 0 and of 1, mixed
// words, a vocabulary that is not a multiple of 64, and masks shorter and longer than the vocabulary.
TEST(TokenMaskRule, MaskLogitsSetsExactlyTheDisallowedTokensToMinusInfinity) {
    std::mt19937 rng(3);
    for (const size_t n : {1u, 63u, 64u, 65u, 1000u, 4099u}) {
        for (const size_t words : {size_t{0}, (n + 63) / 64 / 2, (n + 63) / 64, (n + 63) / 64 + 1}) {
            std::vector<uint64_t> mask(words);
            for (size_t w = 0; w < words; ++w) {
                const int kind = static_cast<int>(rng() % 3);
                mask[w] = kind == 0 ? 0 : kind == 1 ? ~uint64_t{0} : (uint64_t{rng()} << 32 | rng());
            }
            std::vector<float> row(n);
            for (size_t i = 0; i < n; ++i) row[i] = static_cast<float>(i % 97) - 40.f;
            const std::vector<float> before = row;
            backend::mask_logits(row, mask);
            for (size_t i = 0; i < n; ++i) {
                const bool ok = backend::token_allowed(mask, static_cast<backend::TokenId>(i));
                EXPECT_EQ(row[i], ok ? before[i] : -std::numeric_limits<float>::infinity())
                    << "n " << n << ", words " << words << ", token " << i;
            }
        }
    }
}

}  // namespace
}  // namespace orcd
