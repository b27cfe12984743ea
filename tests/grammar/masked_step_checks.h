#pragma once
// Checks of BatchEntry::allowed (backend/token_mask.h) that every backend must pass, shared by the CPU test
// (test_masked_step.cpp, CI) and the CUDA one (tests/backend_cuda/test_cuda_token_mask.cpp, label gpu):
// - a constrained sequence's picks are the same alone and among unconstrained ones (batch invariance), and the
//   unconstrained ones' picks are those they make alone (a mask costs its neighbours nothing, not even a change);
// - every pick is an allowed token, and equals the pick the test computes itself from the same sequence's plain
//   logits (the largest allowed logit, or the host chain on a copy whose disallowed logits are -inf);
// - a mask resolved late (BatchEntry::allowed_later) is resolved once per step and gives the same picks;
// - bad masks are refused before anything runs.
#include <gtest/gtest.h>

#include <array>
#include <cmath>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "backend/backend.h"
#include "backend/sample_chain.h"
#include "common/error.h"

// The entries below name only the fields each check sets (designated initializers).
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"

namespace orcd::test::masked_step {

using backend::BatchEntry;
using backend::BatchResult;
using backend::Phase;
using backend::TokenId;
using backend::Want;

constexpr uint32_t kPage = 8;
constexpr int kSteps = 12;

// The step-by-step plan every run follows: per step, Argmax or Sample (and its parameters), and the constrained
// sequence's mask.
struct Plan {
    std::vector<Want> want;
    std::vector<backend::SampleStep> sample;
    std::vector<std::vector<uint64_t>> mask;
};

inline bool allowed(const std::vector<uint64_t>& mask, TokenId t) {
    const auto u = static_cast<size_t>(t);
    return t >= 0 && u / 64 < mask.size() && ((mask[u / 64] >> (u % 64)) & 1);
}

// Masks of varied density (one token, a handful, ~10 %, ~half), each allowing at least one token of n_vocab, and
// sampling steps with and without top-k so the chain meets both the selected and the full-vocabulary path.
inline Plan make_plan(uint32_t n_vocab, uint32_t seed) {
    std::mt19937 rng(seed);
    Plan p;
    const size_t words = (n_vocab + 63) / 64;
    for (int s = 0; s < kSteps; ++s) {
        p.want.push_back(s % 2 == 0 ? Want::Argmax : Want::Sample);
        backend::SampleStep ss;
        ss.temperature = 1.0f;
        ss.top_k = s % 4 == 1 ? 40 : 0;
        ss.top_p = 1.0f;
        ss.min_p = 0.0f;
        ss.u = std::uniform_real_distribution<double>(0.0, 0.999)(rng);
        p.sample.push_back(ss);
        std::vector<uint64_t> m(words, 0);
        const double density = std::array{0.0, 0.002, 0.1, 0.5}[static_cast<size_t>(s % 4)];
        std::bernoulli_distribution bit(density);
        for (uint32_t t = 0; t < n_vocab; ++t) {
            if (bit(rng)) m[t / 64] |= uint64_t{1} << (t % 64);
        }
        const uint32_t one = std::uniform_int_distribution<uint32_t>(0, n_vocab - 1)(rng);
        m[one / 64] |= uint64_t{1} << (one % 64);
        p.mask.push_back(std::move(m));
    }
    return p;
}

inline std::vector<TokenId> prompt_of(int seq, uint32_t n_vocab) {
    std::vector<TokenId> p;
    for (int i = 0; i < 5 + seq; ++i) p.push_back(static_cast<TokenId>((37 * seq + 11 * i + 3) % n_vocab));
    return p;
}

// A late mask (BatchEntry::allowed_later) that hands out a given mask and counts how often it was resolved.
class CountingLateMask final : public backend::LateTokenMask {
public:
    std::span<const uint64_t> resolve() override {
        ++resolved;
        return mask;
    }
    std::span<const uint64_t> mask;
    int resolved = 0;
};

// Runs sequences 0 .. n-1 together (prefill, then kSteps picks); sequence 0 is constrained by plan.mask when
// `constrain`, given as BatchEntry::allowed or (`late`) as a late mask, which must be resolved exactly once per step.
// Returns each sequence's picks. Each sequence owns pages [16 s, 16 s + 16) of a fresh pool.
inline std::vector<std::vector<TokenId>> run(backend::Backend& b, const std::vector<int>& seqs, const Plan& plan,
                                             bool constrain, bool late = false) {
    auto pool = b.new_kv_pool({.num_pages = 16 * 8, .page_size = kPage});
    const uint32_t V = b.n_vocab();
    std::vector<std::vector<TokenId>> prompts, picks(seqs.size());
    std::vector<std::vector<uint32_t>> pages;
    for (int s : seqs) {
        prompts.push_back(prompt_of(s, V));
        std::vector<uint32_t> t(16);
        for (uint32_t i = 0; i < 16; ++i) t[i] = 16 * static_cast<uint32_t>(s) + i;
        pages.push_back(t);
    }
    std::vector<BatchEntry> es;
    for (size_t i = 0; i < seqs.size(); ++i) {
        es.push_back({.tokens = prompts[i], .pages = pages[i], .phase = Phase::Prompt, .want = Want::Argmax});
    }
    std::vector<BatchResult> r(es.size());
    b.step(*pool, es, r);
    std::vector<TokenId> last(seqs.size());
    for (size_t i = 0; i < seqs.size(); ++i) last[i] = r[i].token;
    CountingLateMask late_mask;
    for (int step = 0; step < kSteps; ++step) {
        es.clear();
        for (size_t i = 0; i < seqs.size(); ++i) {
            BatchEntry e{.tokens = std::span(&last[i], 1),
                         .first_position = static_cast<uint32_t>(prompts[i].size() + step),
                         .pages = pages[i],
                         .phase = Phase::Generated,
                         .want = plan.want[step],
                         .sample = plan.sample[step]};
            if (constrain && seqs[i] == 0) {
                if (late) {
                    late_mask.mask = plan.mask[step];
                    e.allowed_later = &late_mask;
                } else {
                    e.allowed = plan.mask[step];
                }
            }
            es.push_back(e);
        }
        const int resolved_before = late_mask.resolved;
        b.step(*pool, es, r);
        if (constrain && late) {
            EXPECT_EQ(late_mask.resolved, resolved_before + 1) << "step " << step;
        }
        for (size_t i = 0; i < seqs.size(); ++i) picks[i].push_back(last[i] = r[i].token);
    }
    return picks;
}

// Sequence 0 alone, its picks made by the test from Want::Logits rows: the reference of a masked pick.
inline std::vector<TokenId> reference_picks(backend::Backend& b, const Plan& plan) {
    auto pool = b.new_kv_pool({.num_pages = 16, .page_size = kPage});
    const uint32_t V = b.n_vocab();
    const std::vector<TokenId> prompt = prompt_of(0, V);
    std::vector<uint32_t> pages(16);
    for (uint32_t i = 0; i < 16; ++i) pages[i] = i;
    BatchEntry e{.tokens = prompt, .pages = pages, .phase = Phase::Prompt, .want = Want::Argmax};
    BatchResult r;
    b.step(*pool, std::span(&e, 1), std::span(&r, 1));
    TokenId last = r.token;
    std::vector<TokenId> picks;
    for (int step = 0; step < kSteps; ++step) {
        e = {.tokens = std::span(&last, 1),
             .first_position = static_cast<uint32_t>(prompt.size() + step),
             .pages = pages,
             .phase = Phase::Generated,
             .want = Want::Logits};
        b.step(*pool, std::span(&e, 1), std::span(&r, 1));
        const std::vector<float> lg(r.logits.begin(), r.logits.end());
        const auto& m = plan.mask[step];
        TokenId pick = -1;
        if (plan.want[step] == Want::Argmax) {
            for (uint32_t t = 0; t < V; ++t) {
                if (allowed(m, static_cast<TokenId>(t)) && (pick < 0 || lg[t] > lg[static_cast<size_t>(pick)])) {
                    pick = static_cast<TokenId>(t);
                }
            }
        } else {
            std::vector<float> masked = lg;
            for (uint32_t t = 0; t < V; ++t) {
                if (!allowed(m, static_cast<TokenId>(t))) masked[t] = -std::numeric_limits<float>::infinity();
            }
            pick = backend::sample_on_host(masked, plan.sample[step]);
        }
        picks.push_back(last = pick);
    }
    return picks;
}

inline void check_batch_invariance(backend::Backend& b) {
    const Plan plan = make_plan(b.n_vocab(), 5);
    const auto alone = run(b, {0}, plan, true);
    const auto together = run(b, {1, 0, 2, 3}, plan, true);
    EXPECT_EQ(together[1], alone[0]) << "the constrained sequence's picks depend on its batch";
    for (int step = 0; step < kSteps; ++step) {
        EXPECT_TRUE(allowed(plan.mask[step], alone[0][static_cast<size_t>(step)])) << "step " << step;
    }
    // The free sequences: as alone, and as in a batch where nobody is constrained.
    const auto free_batch = run(b, {1, 0, 2, 3}, plan, false);
    for (size_t i : {0u, 2u, 3u}) {
        const int s = std::array{1, 0, 2, 3}[i];
        EXPECT_EQ(together[i], run(b, {s}, plan, false)[0]) << "free sequence " << s;
        EXPECT_EQ(together[i], free_batch[i]) << "free sequence " << s;
    }
}

// A late mask gives the picks the same mask given up front gives, alone and among free sequences.
inline void check_late_masks(backend::Backend& b) {
    const Plan plan = make_plan(b.n_vocab(), 13);
    EXPECT_EQ(run(b, {0}, plan, true, true)[0], run(b, {0}, plan, true)[0]);
    const auto late = run(b, {2, 0, 1}, plan, true, true);
    const auto ready = run(b, {2, 0, 1}, plan, true);
    EXPECT_EQ(late, ready);
    // On a prompt's last row too (the CUDA backend's tensor-core prefill resolves it after enqueuing the prefill).
    auto pool = b.new_kv_pool({.num_pages = 4, .page_size = kPage});
    const std::vector<TokenId> prompt = prompt_of(0, b.n_vocab());
    const std::vector<uint32_t> pages = {0, 1};
    std::vector<uint64_t> only_5((b.n_vocab() + 63) / 64, 0);
    only_5[0] = uint64_t{1} << 5;
    for (const Want want : {Want::Argmax, Want::Sample}) {
        CountingLateMask m;
        m.mask = only_5;
        BatchEntry e{.tokens = prompt, .pages = pages, .want = want, .allowed_later = &m};
        e.sample.u = 0.5;
        BatchResult r;
        b.step(*pool, std::span(&e, 1), std::span(&r, 1));
        EXPECT_EQ(r.token, 5);
        EXPECT_EQ(m.resolved, 1);
    }
}

inline void check_against_reference(backend::Backend& b) {
    const Plan plan = make_plan(b.n_vocab(), 9);
    EXPECT_EQ(run(b, {0}, plan, true)[0], reference_picks(b, plan));
}

inline void check_bad_masks_refused(backend::Backend& b) {
    auto pool = b.new_kv_pool({.num_pages = 4, .page_size = kPage});
    const uint32_t V = b.n_vocab();
    const std::vector<TokenId> prompt = prompt_of(0, V);
    const std::vector<uint32_t> pages = {0, 1};
    const std::vector<uint64_t> none((V + 63) / 64, 0);
    std::vector<uint64_t> past_vocab((V + 63) / 64 + 1, 0);
    past_vocab.back() = 1;  // token V + (64 - V % 64) % 64: outside the vocabulary
    std::vector<uint64_t> some = none;
    some[0] = 1;
    auto refuses = [&](BatchEntry e, const std::string& text) {
        BatchResult r;
        try {
            b.step(*pool, std::span(&e, 1), std::span(&r, 1));
            ADD_FAILURE() << "accepted: " << text;
        } catch (const Error& err) {
            EXPECT_EQ(err.code(), ErrorCode::InvalidArgument) << err.what();
            EXPECT_NE(std::string(err.what()).find(text), std::string::npos) << err.what();
        }
    };
    refuses({.tokens = prompt, .pages = pages, .want = Want::Logits, .allowed = some}, "only to a pick");
    refuses({.tokens = prompt, .pages = pages, .want = Want::Argmax, .allowed = none}, "allows no token");
    refuses({.tokens = prompt, .pages = pages, .want = Want::Argmax, .allowed = past_vocab}, "allows no token");
    CountingLateMask late;
    late.mask = some;
    refuses({.tokens = prompt, .pages = pages, .want = Want::Logits, .allowed_later = &late}, "late token mask");
    refuses({.tokens = prompt, .pages = pages, .want = Want::Argmax, .allowed = some, .allowed_later = &late},
            "late token mask");
    EXPECT_EQ(late.resolved, 0) << "resolved although the entry was refused";
    // A mask that allows only token 0 makes it the pick, on a prompt's last row as on a decoded token's.
    for (const Want want : {Want::Argmax, Want::Sample}) {
        BatchEntry ok{.tokens = prompt, .pages = pages, .want = want, .allowed = some};
        ok.sample.u = 0.5;
        BatchResult r;
        b.step(*pool, std::span(&ok, 1), std::span(&r, 1));
        EXPECT_EQ(r.token, 0);
    }
}

}  // namespace orcd::test::masked_step
