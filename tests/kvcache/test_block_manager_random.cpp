// The block manager under long random operation sequences (invariants after every step), and a simulated scheduler
// that runs 64 sequences through a pool of a few pages, preempting and recomputing, with outputs checked against
// each sequence run alone.
#include <gtest/gtest.h>

#include <algorithm>
#include <deque>
#include <map>
#include <random>
#include <string>
#include <vector>

#include "common/error.h"
#include "kvcache/block_manager.h"

namespace orcd::kvcache {
namespace {

struct RandomCase {
    uint32_t seed;
    bool caching;
};

class BlockManagerRandom : public ::testing::TestWithParam<RandomCase> {};

TEST_P(BlockManagerRandom, InvariantsHoldAfterEveryOperation) {
    const RandomCase c = GetParam();
    constexpr uint32_t kPages = 24, kPageSize = 4;
    BlockManager bm(BlockManagerConfig{kPages, kPageSize, c.caching});
    std::mt19937 rng(c.seed);
    auto uniform = [&](uint32_t lo, uint32_t hi) { return std::uniform_int_distribution<uint32_t>(lo, hi)(rng); };
    // A few shared bases make prefix hits common; the tails come from a small alphabet so pages repeat too.
    std::vector<std::vector<Token>> bases(3);
    for (auto& b : bases) {
        for (int i = 0; i < 16; ++i) b.push_back(static_cast<Token>(uniform(0, 50)));
    }
    std::vector<SeqId> running;
    SeqId next_id = 1;
    uint64_t admitted = 0, appended = 0, preempted = 0, hits = 0;
    auto forget = [&](SeqId s) { running.erase(std::find(running.begin(), running.end(), s)); };

    for (int step = 0; step < 4000; ++step) {
        const uint32_t op = uniform(0, 99);
        if (op < 30 || running.empty()) {
            const auto& base = bases[uniform(0, 2)];
            std::vector<Token> prompt(base.begin(), base.begin() + uniform(0, 16));
            for (uint32_t n = uniform(1, 8); n > 0; --n) prompt.push_back(static_cast<Token>(uniform(0, 3)));
            const uint32_t max_new = uniform(0, 16);
            const AdmitPolicy policy = uniform(0, 1) ? AdmitPolicy::Reserve : AdmitPolicy::PromptOnly;
            const bool can = bm.can_admit(prompt, max_new, policy);
            const auto r = bm.admit(next_id, prompt, max_new, policy);
            ASSERT_EQ(can, r.has_value()) << "step " << step;
            if (r) {
                running.push_back(next_id);
                ++admitted;
                hits += r->cached_tokens > 0;
                ASSERT_EQ(bm.computed(next_id), r->cached_tokens);
                ASSERT_LT(r->cached_tokens, prompt.size());
            }
            ++next_id;
        } else if (op < 60) {
            const SeqId s = running[uniform(0, static_cast<uint32_t>(running.size()) - 1)];
            std::vector<Token> t(uniform(1, 3));
            for (Token& x : t) x = static_cast<Token>(uniform(0, 3));
            try {
                for (const Preempted& p : bm.append_or_preempt(s, t)) {
                    forget(p.seq);
                    ++preempted;
                }
                if (bm.contains(s)) ++appended;
            } catch (const Error&) {
                ASSERT_TRUE(bm.contains(s));  // over its max_new_tokens: refused, nothing changed
            }
        } else if (op < 80) {
            const SeqId s = running[uniform(0, static_cast<uint32_t>(running.size()) - 1)];
            bm.commit(s, uniform(bm.computed(s), bm.length(s)));
        } else if (op < 93) {
            const SeqId s = running[uniform(0, static_cast<uint32_t>(running.size()) - 1)];
            bm.finish(s);
            forget(s);
        } else {
            const auto p = bm.preempt_newest();
            ASSERT_TRUE(p.has_value());
            ASSERT_EQ(p->seq, running.back());  // `running` is in admission order
            forget(p->seq);
            ++preempted;
        }
        ASSERT_NO_THROW(bm.check_invariants()) << "step " << step;
        ASSERT_EQ(bm.stats().sequences, running.size());
        for (const SeqId s : running) ASSERT_EQ(bm.page_table(s).size(), bm.pages_for(bm.length(s)));
    }
    EXPECT_GT(admitted, 100u);
    EXPECT_GT(appended, 100u);
    EXPECT_GT(preempted, 10u);
    if (c.caching) {
        EXPECT_GT(hits, 10u);
    } else {
        EXPECT_EQ(hits, 0u);
    }
    for (const SeqId s : running) bm.finish(s);
    bm.check_invariants();
    const BlockStats st = bm.stats();
    EXPECT_EQ(st.pages_used, 0u);
    EXPECT_EQ(st.pages_reserved, 0u);
    EXPECT_EQ(st.pages_free + st.pages_evictable, kPages);
}

INSTANTIATE_TEST_SUITE_P(Seeds, BlockManagerRandom,
                         ::testing::Values(RandomCase{1, true}, RandomCase{2, true}, RandomCase{3, true},
                                           RandomCase{4, true}, RandomCase{5, true}, RandomCase{6, true},
                                           RandomCase{7, false}, RandomCase{8, false}, RandomCase{9, false}),
                         [](const auto& info) {
                             return "seed" + std::to_string(info.param.seed) +
                                    (info.param.caching ? "_caching" : "_no_caching");
                         });

// A deterministic stand-in for a model: the next token is a function of the whole history.
Token next_token(const std::vector<Token>& history) {
    uint64_t h = 1469598103934665603ull;
    for (const Token t : history) h = (h ^ static_cast<uint32_t>(t)) * 1099511628211ull;
    return static_cast<Token>(h % 7);
}

struct Request {
    SeqId id;
    std::vector<Token> tokens;
    uint32_t remaining;
};

class PoolExhaustion : public ::testing::TestWithParam<bool> {};

TEST_P(PoolExhaustion, SixtyFourSequencesThroughSixPagesAllFinishWithTheirOwnOutput) {
    const bool caching = GetParam();
    constexpr uint32_t kPages = 6, kPageSize = 4, kSeqs = 64;
    BlockManager bm(BlockManagerConfig{kPages, kPageSize, caching});
    std::mt19937 rng(7);
    std::deque<Request> waiting;
    std::map<SeqId, std::vector<Token>> expected;
    for (SeqId id = 0; id < kSeqs; ++id) {
        Request r{id, {}, std::uniform_int_distribution<uint32_t>(4, 12)(rng)};
        // Half share a 5-token system prompt, so that complete pages repeat across sequences.
        if (id % 2 == 0) r.tokens = {1, 2, 3, 4, 5};
        for (uint32_t n = std::uniform_int_distribution<uint32_t>(2, 6)(rng); n > 0; --n) {
            r.tokens.push_back(static_cast<Token>(100 + std::uniform_int_distribution<int>(0, 5)(rng)));
        }
        ASSERT_NO_THROW(bm.check_request(r.tokens.size(), r.remaining));
        std::vector<Token> alone = r.tokens;
        for (uint32_t i = 0; i < r.remaining; ++i) alone.push_back(next_token(alone));
        expected[id] = alone;
        waiting.push_back(std::move(r));
    }

    std::vector<SeqId> running;                   // admission order
    std::map<SeqId, std::vector<Token>> history;  // what each running sequence holds
    std::map<SeqId, std::vector<Token>> output;
    int steps = 0;
    for (; (!waiting.empty() || !running.empty()) && steps < 100000; ++steps) {
        // First come, first served: the head of the queue (preempted sequences go back there) blocks the rest.
        while (!waiting.empty()) {
            Request& r = waiting.front();
            if (!bm.admit(r.id, r.tokens, r.remaining)) break;
            history[r.id] = r.tokens;
            running.push_back(r.id);
            waiting.pop_front();
        }
        ASSERT_FALSE(running.empty()) << "nothing runs and the head of the queue cannot be admitted";
        // One decode step over the batch: every running sequence's KV is now written, then each gets its next token.
        for (const SeqId s : std::vector<SeqId>(running)) {
            if (!bm.contains(s)) continue;  // preempted earlier in this step
            std::vector<Token>& h = history[s];
            bm.commit(s, static_cast<uint32_t>(h.size()));
            if (h.size() == expected[s].size()) {
                output[s] = h;
                bm.finish(s);
                running.erase(std::find(running.begin(), running.end(), s));
                continue;
            }
            const Token t = next_token(h);
            for (Preempted& p : bm.append_or_preempt(s, std::vector<Token>{t})) {
                ASSERT_EQ(p.tokens, history[p.seq]);
                ASSERT_EQ(p.tokens.size() + p.remaining_new, expected[p.seq].size());
                running.erase(std::find(running.begin(), running.end(), p.seq));
                waiting.push_front(Request{p.seq, std::move(p.tokens), p.remaining_new});
            }
            if (bm.contains(s)) h.push_back(t);
            ASSERT_NO_THROW(bm.check_invariants()) << "step " << steps;
        }
    }
    ASSERT_TRUE(waiting.empty() && running.empty()) << "not done after " << steps << " steps";
    EXPECT_EQ(output, expected);
    const BlockStats st = bm.stats();
    EXPECT_GT(st.preemptions, 0u) << "the pool was never exhausted: the test does not test preemption";
    EXPECT_EQ(st.pages_used, 0u);
    EXPECT_EQ(st.pages_free + st.pages_evictable, kPages);
    if (caching) {
        EXPECT_GT(st.prefix_hit_tokens, 0u);
    }
    bm.check_invariants();
}

INSTANTIATE_TEST_SUITE_P(Caching, PoolExhaustion, ::testing::Values(true, false),
                         [](const auto& info) { return std::string(info.param ? "caching" : "no_caching"); });

}  // namespace
}  // namespace orcd::kvcache
