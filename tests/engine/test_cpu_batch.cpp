// The CPU backend's batched step (Backend::step over one paged KV pool) against each sequence run alone through
// PagedSequence: random batches of sequences at different depths, mixing prompt chunks of random sizes and decode
// tokens, on scattered page tables, must give bit-identical logits (batch invariance on the CPU is exact). Also:
// prefix pages shared read-only, the picks of Argmax/Sample, and bad batches refused before anything is written.
#include <gtest/gtest.h>

#include <algorithm>
#include <numeric>
#include <random>
#include <vector>

#include "backend/check_batch.h"
#include "backend/cpu/cpu_backend.h"
#include "backend/paged_sequence.h"
#include "common/error.h"
#include "model/model.h"
#include "same_bits.h"
#include "tiny_models.h"

// The entries below name only the fields each test sets (designated initializers); the rest keep their defaults.
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"

namespace orcd {
namespace {

using backend::BatchEntry;
using backend::BatchResult;
using backend::Phase;
using backend::TokenId;
using backend::Want;

constexpr uint32_t kPage = 8;

std::unique_ptr<backend::Backend> cpu(const std::string& preset, synth::FileType type) {
    return backend::cpu::make_cpu_backend(model::open_model(test::tiny_model(preset, type)), {.n_threads = 2});
}

// One sequence's script: its prompt, then decode tokens; `logits[i]` is the alone run's output after feeding the
// prompt (i = 0) and after each decode token (i >= 1).
struct Script {
    std::vector<TokenId> prompt, decoded;
    std::vector<std::vector<float>> logits;
};

Script run_alone(backend::Backend& b, std::vector<TokenId> prompt, int n_decode, backend::KvCacheType kv) {
    Script s;
    s.prompt = std::move(prompt);
    backend::PagedSequence seq(b, {.n_ctx = 128, .kv_type = kv}, kPage);
    auto lg = seq.prefill(s.prompt);
    s.logits.emplace_back(lg.begin(), lg.end());
    for (int i = 0; i < n_decode; ++i) {
        const TokenId t = backend::argmax_token(s.logits.back());
        s.decoded.push_back(t);
        lg = seq.decode(t);
        s.logits.emplace_back(lg.begin(), lg.end());
    }
    return s;
}

using test::same_bits;

struct Param {
    const char* preset;
    synth::FileType type;
    backend::KvCacheType kv;
};

class CpuBatch : public ::testing::TestWithParam<Param> {};

// Sequences advance through their scripts in random steps: a prompt chunk of random length, or one decode token;
// in each step a random subset of the unfinished sequences takes part, with pages drawn at random from the pool.
TEST_P(CpuBatch, RandomBatchesAreBitIdenticalToEachSequenceAlone) {
    const Param p = GetParam();
    auto b = cpu(p.preset, p.type);
    std::mt19937 rng(7);
    const int n_seq = 6;
    std::vector<Script> scripts;
    for (int s = 0; s < n_seq; ++s) {
        std::vector<TokenId> prompt(1 + rng() % 40);
        for (auto& t : prompt) t = static_cast<TokenId>(rng() % b->n_vocab());
        scripts.push_back(run_alone(*b, prompt, 1 + static_cast<int>(rng() % 6), p.kv));
    }
    const uint32_t pages_per_seq = 128 / kPage;
    auto pool = b->new_kv_pool({.num_pages = n_seq * pages_per_seq + 5, .page_size = kPage, .kv_type = p.kv});
    std::vector<uint32_t> ids(pool->num_pages());
    std::iota(ids.begin(), ids.end(), 0);
    std::shuffle(ids.begin(), ids.end(), rng);
    std::vector<std::vector<uint32_t>> tables(n_seq);
    for (int s = 0; s < n_seq; ++s)
        tables[s].assign(ids.begin() + s * pages_per_seq, ids.begin() + (s + 1) * pages_per_seq);

    std::vector<size_t> fed(n_seq, 0);      // prompt tokens fed
    std::vector<size_t> step_of(n_seq, 0);  // decode tokens fed
    size_t compared = 0;
    for (int guard = 0; guard < 2000; ++guard) {
        std::vector<int> who;
        std::vector<BatchEntry> batch;
        std::vector<std::vector<TokenId>> chunk_store(n_seq);
        for (int s = 0; s < n_seq; ++s) {
            const Script& sc = scripts[s];
            if (step_of[s] == sc.decoded.size() && fed[s] == sc.prompt.size()) continue;  // done
            if (rng() % 3 == 0) continue;                                                 // sits this step out
            BatchEntry e;
            e.pages = tables[s];
            if (fed[s] < sc.prompt.size()) {
                const size_t n = std::min<size_t>(1 + rng() % 12, sc.prompt.size() - fed[s]);
                chunk_store[s].assign(sc.prompt.begin() + fed[s], sc.prompt.begin() + fed[s] + n);
                e.first_position = static_cast<uint32_t>(fed[s]);
                e.phase = Phase::Prompt;
                e.want = fed[s] + n == sc.prompt.size() ? Want::Logits : Want::Nothing;
            } else {
                chunk_store[s] = {sc.decoded[step_of[s]]};
                e.first_position = static_cast<uint32_t>(sc.prompt.size() + step_of[s]);
                e.phase = Phase::Generated;
                e.want = Want::Logits;
            }
            e.tokens = chunk_store[s];
            batch.push_back(e);
            who.push_back(s);
        }
        if (batch.empty()) {
            bool done = true;
            for (int s = 0; s < n_seq; ++s) {
                done = done && step_of[s] == scripts[s].decoded.size() && fed[s] == scripts[s].prompt.size();
            }
            if (done) break;
            continue;
        }
        std::vector<BatchResult> res(batch.size());
        b->step(*pool, batch, res);
        for (size_t i = 0; i < batch.size(); ++i) {
            const int s = who[i];
            if (batch[i].phase == Phase::Prompt) {
                fed[s] += batch[i].tokens.size();
                if (batch[i].want == Want::Logits) {
                    ASSERT_TRUE(same_bits(res[i].logits, scripts[s].logits[0])) << "seq " << s << " prompt logits";
                    ++compared;
                }
            } else {
                ++step_of[s];
                ASSERT_TRUE(same_bits(res[i].logits, scripts[s].logits[step_of[s]]))
                    << "seq " << s << " decode " << step_of[s];
                ++compared;
            }
        }
    }
    size_t expected = 0;
    for (const Script& s : scripts) expected += s.logits.size();
    EXPECT_EQ(compared, expected);
}

// A second sequence whose prompt starts with the first one's complete pages reads them (read-only) instead of
// computing them: its logits equal those of its whole prompt computed alone.
TEST_P(CpuBatch, SharedPrefixPagesGiveTheLogitsOfTheWholePrompt) {
    const Param p = GetParam();
    auto b = cpu(p.preset, p.type);
    std::mt19937 rng(3);
    std::vector<TokenId> a(3 * kPage + 5), bb;
    for (auto& t : a) t = static_cast<TokenId>(rng() % b->n_vocab());
    bb.assign(a.begin(), a.begin() + 2 * kPage);
    for (int i = 0; i < 7; ++i) bb.push_back(static_cast<TokenId>(rng() % b->n_vocab()));
    const Script alone_b = run_alone(*b, bb, 2, p.kv);

    auto pool = b->new_kv_pool({.num_pages = 12, .page_size = kPage, .kv_type = p.kv});
    const std::vector<uint32_t> ta = {5, 2, 9, 0}, tb = {5, 2, 7, 11};  // b shares a's first two pages
    std::vector<BatchResult> r(1);
    BatchEntry ea{.tokens = a, .first_position = 0, .pages = ta, .phase = Phase::Prompt, .want = Want::Logits};
    b->step(*pool, std::span(&ea, 1), r);
    const std::span<const TokenId> rest(bb.begin() + 2 * kPage, bb.end());
    BatchEntry eb{
        .tokens = rest, .first_position = 2 * kPage, .pages = tb, .phase = Phase::Prompt, .want = Want::Logits};
    b->step(*pool, std::span(&eb, 1), r);
    EXPECT_TRUE(same_bits(r[0].logits, alone_b.logits[0]));
    // And a decode on top of it, next to a decode of `a` in the same step.
    const TokenId next_a = 3, next_b = alone_b.decoded[0];
    BatchEntry both[2] = {{.tokens = std::span(&next_a, 1),
                           .first_position = static_cast<uint32_t>(a.size()),
                           .pages = ta,
                           .phase = Phase::Generated,
                           .want = Want::Logits},
                          {.tokens = std::span(&next_b, 1),
                           .first_position = static_cast<uint32_t>(bb.size()),
                           .pages = tb,
                           .phase = Phase::Generated,
                           .want = Want::Logits}};
    std::vector<BatchResult> r2(2);
    b->step(*pool, both, r2);
    EXPECT_TRUE(same_bits(r2[1].logits, alone_b.logits[1]));
}

INSTANTIATE_TEST_SUITE_P(Models, CpuBatch,
                         ::testing::Values(Param{"qwen2.5-tiny", synth::FileType::F32, backend::KvCacheType::F32},
                                           Param{"qwen2.5-tiny", synth::FileType::Q8_0, backend::KvCacheType::F16},
                                           Param{"phi3-tiny", synth::FileType::Q4_K_M, backend::KvCacheType::F32},
                                           Param{"llama-tiny", synth::FileType::Q4_K_M, backend::KvCacheType::F16},
                                           Param{"qwen3-tiny", synth::FileType::Q8_0, backend::KvCacheType::F32}),
                         [](const auto& info) {
                             std::string n = std::string(info.param.preset) + "_" +
                                             std::string(synth::file_type_name(info.param.type)) +
                                             (info.param.kv == backend::KvCacheType::F16 ? "_kvf16" : "_kvf32");
                             for (char& c : n) c = std::isalnum(static_cast<unsigned char>(c)) ? c : '_';
                             return n;
                         });

TEST(CpuBatchPicks, ArgmaxAndSampleEqualTheHostPicksOnTheSameLogits) {
    auto b = cpu("qwen2.5-tiny", synth::FileType::Q8_0);
    auto pool = b->new_kv_pool({.num_pages = 16, .page_size = kPage});
    const std::vector<TokenId> prompt = {1, 5, 9, 22, 7};
    const std::vector<uint32_t> t0 = {0, 1}, t1 = {2, 3}, t2 = {4, 5};
    const std::vector<TokenId> window = {5, 9};
    backend::SampleStep ss;
    ss.temperature = 0.9f;
    ss.u = 0.37;
    ss.repeat_penalty = 1.3f;
    ss.penalty_window = window;
    BatchEntry es[3] = {{.tokens = prompt, .pages = t0, .want = Want::Logits},
                        {.tokens = prompt, .pages = t1, .want = Want::Argmax},
                        {.tokens = prompt, .pages = t2, .want = Want::Sample, .sample = ss}};
    std::vector<BatchResult> r(3);
    b->step(*pool, es, r);
    const std::vector<float> lg(r[0].logits.begin(), r[0].logits.end());
    EXPECT_EQ(r[1].token, backend::argmax_token(lg));
    EXPECT_EQ(r[2].token, backend::sample_on_host(lg, ss));
    EXPECT_TRUE(r[1].logits.empty());
}

// Every check of check_batch_entries refuses the whole batch before anything is written: the sequences' caches are
// as before, so continuing them gives the clean run's logits.
TEST(CpuBatchErrors, BadBatchesAreRefusedAndChangeNoCache) {
    auto b = cpu("qwen2.5-tiny", synth::FileType::Q8_0);
    const std::vector<TokenId> prompt = {3, 4, 5, 6, 7, 8, 9, 10, 11};
    const Script clean = run_alone(*b, prompt, 1, backend::KvCacheType::F16);
    auto pool = b->new_kv_pool({.num_pages = 6, .page_size = kPage});
    const std::vector<uint32_t> table = {4, 1};
    std::vector<BatchResult> r(1);
    BatchEntry e{.tokens = prompt, .pages = table, .want = Want::Logits};
    b->step(*pool, std::span(&e, 1), r);
    ASSERT_TRUE(same_bits(r[0].logits, clean.logits[0]));

    const TokenId next = clean.decoded[0];
    const uint32_t at = static_cast<uint32_t>(prompt.size());
    const TokenId bad_token = static_cast<TokenId>(b->n_vocab());
    const std::vector<uint32_t> outside = {4, 6}, short_table = {4};
    const std::vector<TokenId> overwrite = {1, 2};
    auto refuses = [&](std::vector<BatchEntry> batch, size_t n_results, const std::string& text, ErrorCode code) {
        std::vector<BatchResult> rr(n_results);
        try {
            b->step(*pool, batch, rr);
            ADD_FAILURE() << "accepted: " << text;
        } catch (const Error& err) {
            EXPECT_EQ(err.code(), code) << err.what();
            EXPECT_NE(std::string(err.what()).find(text), std::string::npos) << err.what();
        }
    };
    // Each bad batch also carries a valid entry that would write page 1 (position `at`): it must not be written.
    const BatchEntry good{.tokens = overwrite, .first_position = at, .pages = table, .phase = Phase::Generated};
    refuses({good, {.tokens = std::span(&bad_token, 1), .pages = {}, .want = Want::Logits}}, 2,
            "outside the vocabulary", ErrorCode::InvalidArgument);
    refuses({good, {.tokens = std::span(&next, 1), .first_position = at, .pages = outside}}, 2,
            "outside the pool of 6 pages", ErrorCode::InvalidArgument);
    refuses({good, {.tokens = std::span(&next, 1), .first_position = at, .pages = short_table}}, 2,
            "do not cover position", ErrorCode::InvalidArgument);
    refuses({good, {.tokens = std::span(&next, 1), .first_position = at + 1, .pages = table}}, 2, "both write page 1",
            ErrorCode::InvalidArgument);
    refuses({good, {.tokens = {}, .pages = table}}, 2, "has no tokens", ErrorCode::InvalidArgument);
    refuses({good}, 2, "2 result slots for 1 entries", ErrorCode::InvalidArgument);
    refuses({good, {.tokens = std::span(&next, 1), .first_position = b->config().context_length, .pages = table}}, 2,
            "exceed the context", ErrorCode::ContextOverflow);
    backend::SampleStep bad_sample;
    bad_sample.top_p = 0.f;
    refuses({good,
             {.tokens = std::span(&next, 1),
              .first_position = 0,
              .pages = std::vector<uint32_t>{3},
              .want = Want::Sample,
              .sample = bad_sample}},
            2, "top_p = 0 is out of range", ErrorCode::InvalidArgument);

    BatchEntry d{.tokens = std::span(&next, 1),
                 .first_position = at,
                 .pages = table,
                 .phase = Phase::Generated,
                 .want = Want::Logits};
    b->step(*pool, std::span(&d, 1), r);
    EXPECT_TRUE(same_bits(r[0].logits, clean.logits[1]));
}

}  // namespace
}  // namespace orcd
