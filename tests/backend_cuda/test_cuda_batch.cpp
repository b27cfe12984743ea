// The CUDA backend's batched step (Backend::step over a KV pool, docs/BATCHING.md): batch invariance — a sequence's
// logits and picks are bit-identical alone or among others, whatever the batch size, the other sequences' depths or
// the pages its positions live in — against the batch of one (PagedSequence) and against the CPU reference; a replay
// (several Generated tokens of one sequence in one entry) against the same tokens one step at a time; scattered page
// tables; argument errors before anything is written; the pool reported as KV cache.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <numeric>
#include <random>
#include <tuple>

#include "../engine/tiny_models.h"
#include "backend/cpu/cpu_backend.h"
#include "backend/cuda/cuda_backend.h"
#include "backend/paged_sequence.h"
#include "common/error.h"
#include "cuda_test_util.h"
#include "model/model.h"
#include "same_bits.h"

namespace orcd::backend {
namespace {

using ::orcd::cuda::test::rel_error;

int32_t argmax(std::span<const float> v) {
    int32_t best = -1;
    for (size_t i = 0; i < v.size(); ++i) {
        if (std::isnan(v[i])) continue;
        if (best < 0 || v[i] > v[static_cast<size_t>(best)]) best = static_cast<int32_t>(i);
    }
    return best;
}

using test::same_bits;

// A sequence of a shared pool: its page table (pages drawn at random from the pool, so neighbours interleave) and
// its tokens so far.
struct Seq {
    std::vector<uint32_t> pages;
    std::vector<TokenId> tokens;
};

constexpr uint32_t kPageSize = 16;

// Hands out the pool's pages in a shuffled order.
struct PageSource {
    std::vector<uint32_t> free;
    PageSource(uint32_t n, std::mt19937_64& rng) : free(n) {
        std::iota(free.begin(), free.end(), 0u);
        std::shuffle(free.begin(), free.end(), rng);
    }
    void cover(Seq& s, size_t positions) {
        while (s.pages.size() * kPageSize < positions) {
            ASSERT_FALSE(free.empty());
            s.pages.push_back(free.back());
            free.pop_back();
        }
    }
};

std::vector<TokenId> random_tokens(std::mt19937_64& rng, size_t n) {
    std::vector<TokenId> t(n);
    for (TokenId& x : t) x = std::uniform_int_distribution<TokenId>(0, 511)(rng);
    return t;
}

// One step; the logits are copied out of the backend's buffer.
struct StepOut {
    std::vector<TokenId> tokens;
    std::vector<std::vector<float>> logits;
};
StepOut run_step(Backend& be, KvPool& pool, const std::vector<BatchEntry>& batch) {
    std::vector<BatchResult> res(batch.size());
    be.step(pool, batch, res);
    StepOut out;
    for (const BatchResult& r : res) {
        out.tokens.push_back(r.token);
        out.logits.emplace_back(r.logits.begin(), r.logits.end());
    }
    return out;
}

BatchEntry entry(const Seq& s, size_t from, Phase phase, Want want) {
    BatchEntry e;
    e.tokens = std::span(s.tokens).subspan(from);
    e.first_position = static_cast<uint32_t>(from);
    e.pages = s.pages;
    e.phase = phase;
    e.want = want;
    return e;
}

class CudaBatch : public testing::TestWithParam<std::tuple<std::string, synth::FileType>> {};

// 64 sequences at depths 1 .. 90 prefilled into one pool of scattered pages, then one decode step of the first B of
// them for B = 1, 3, 8, 17, 64 (re-running a step writes the same K/V at the same positions): every sequence's
// logits and argmax are bit-identical for every B. Then the same sequences each alone through PagedSequence
// (identity pages, own pool), prompt and decode: bit-identical logits again.
TEST_P(CudaBatch, ColumnsAreBitIdenticalForEveryBatchSizeAndAlone) {
    ORCD_SKIP_WITHOUT_GPU();
    std::mt19937_64 rng(::orcd::cuda::test::fresh_seed());
    const auto& [preset, type] = GetParam();
    const model::Model m = model::open_model(test::tiny_model(preset, type));
    auto be = cuda::make_cuda_backend(m);
    constexpr size_t kSeqs = 64;
    auto pool = be->new_kv_pool({.num_pages = 1024, .page_size = kPageSize});
    PageSource src(pool->num_pages(), rng);
    std::vector<Seq> seqs(kSeqs);
    std::vector<size_t> depth(kSeqs);
    // Prompts in steps of several entries each (through the prefill, 1-token ones too), then one more token each to
    // decode.
    for (size_t i = 0; i < kSeqs; ++i) {
        depth[i] = std::uniform_int_distribution<size_t>(1, 90)(rng);
        seqs[i].tokens = random_tokens(rng, depth[i] + 1);
        src.cover(seqs[i], depth[i] + 1);
    }
    for (size_t i0 = 0; i0 < kSeqs; i0 += 8) {
        std::vector<BatchEntry> batch;
        for (size_t i = i0; i < i0 + 8; ++i) {
            BatchEntry e = entry(seqs[i], 0, Phase::Prompt, Want::Nothing);
            e.tokens = e.tokens.first(depth[i]);
            batch.push_back(e);
        }
        run_step(*be, *pool, batch);
    }
    std::vector<std::vector<float>> alone(kSeqs);
    std::vector<TokenId> alone_pick(kSeqs);
    for (const size_t B : {1, 3, 8, 17, 64}) {
        SCOPED_TRACE("B = " + std::to_string(B));
        std::vector<BatchEntry> batch;
        for (size_t i = 0; i < B; ++i) batch.push_back(entry(seqs[i], depth[i], Phase::Generated, Want::Logits));
        const StepOut out = run_step(*be, *pool, batch);
        for (size_t i = 0; i < B; ++i) batch[i].want = Want::Argmax;
        const StepOut picks = run_step(*be, *pool, batch);
        for (size_t i = 0; i < B; ++i) {
            ASSERT_EQ(out.logits[i].size(), m.config.n_vocab);
            EXPECT_EQ(picks.tokens[i], argmax(out.logits[i])) << "sequence " << i;
            if (alone[i].empty()) {
                // The first B that holds sequence i: its reference is this step with i alone.
                const StepOut one = run_step(*be, *pool, {entry(seqs[i], depth[i], Phase::Generated, Want::Logits)});
                alone[i] = one.logits[0];
                alone_pick[i] = picks.tokens[i];
            }
            EXPECT_TRUE(same_bits(out.logits[i], alone[i])) << "sequence " << i << " at depth " << depth[i];
            EXPECT_EQ(picks.tokens[i], alone_pick[i]) << "sequence " << i;
        }
    }
    // Each sequence alone on its own pool (PagedSequence): the same prompt, then the same decode token.
    for (const size_t i : {size_t{0}, size_t{5}, size_t{17}, size_t{63}}) {
        auto seq = be->new_sequence({.n_ctx = 128});
        seq->prefill(std::span(seqs[i].tokens).first(depth[i]));
        const auto l = seq->decode(seqs[i].tokens[depth[i]]);
        EXPECT_TRUE(same_bits(l, alone[i])) << "sequence " << i << " through PagedSequence";
    }
}

// A replay after preemption: the generated tokens of a sequence as one multi-token Phase::Generated entry (columns at
// consecutive positions that attend causally to each other, 70 of them so they span two launches of 64), next to
// other sequences, gives every position the logits of decoding those tokens one step at a time.
TEST_P(CudaBatch, ReplayEntryEqualsStepByStepDecode) {
    ORCD_SKIP_WITHOUT_GPU();
    std::mt19937_64 rng(::orcd::cuda::test::fresh_seed());
    const auto& [preset, type] = GetParam();
    const model::Model m = model::open_model(test::tiny_model(preset, type));
    auto be = cuda::make_cuda_backend(m);
    auto pool = be->new_kv_pool({.num_pages = 64, .page_size = kPageSize});
    PageSource src(pool->num_pages(), rng);
    constexpr size_t kPrompt = 20, kGen = 70;
    Seq a, b, other;
    a.tokens = random_tokens(rng, kPrompt + kGen);
    b.tokens = a.tokens;
    other.tokens = random_tokens(rng, 40);
    for (Seq* s : {&a, &b, &other}) src.cover(*s, s->tokens.size());
    auto prompt = [&](Seq& s) {
        BatchEntry e = entry(s, 0, Phase::Prompt, Want::Nothing);
        e.tokens = e.tokens.first(kPrompt);
        return e;
    };
    run_step(*be, *pool, {prompt(a), prompt(b), prompt(other)});
    // a: one token at a time, every position's logits.
    const size_t V = m.config.n_vocab;
    std::vector<float> step_by_step;
    for (size_t p = kPrompt; p < kPrompt + kGen; ++p) {
        BatchEntry e = entry(a, p, Phase::Generated, Want::Logits);
        e.tokens = e.tokens.first(1);
        const StepOut o = run_step(*be, *pool, {e});
        step_by_step.insert(step_by_step.end(), o.logits[0].begin(), o.logits[0].end());
    }
    // b: all of them in one entry, with another sequence decoding in the same step.
    BatchEntry replay = entry(b, kPrompt, Phase::Generated, Want::AllLogits);
    BatchEntry next = entry(other, kPrompt, Phase::Generated, Want::Argmax);
    next.tokens = next.tokens.first(1);
    const StepOut o = run_step(*be, *pool, {next, replay});
    ASSERT_EQ(o.logits[1].size(), kGen * V);
    for (size_t t = 0; t < kGen; ++t) {
        EXPECT_TRUE(same_bits(std::span(o.logits[1]).subspan(t * V, V), std::span(step_by_step).subspan(t * V, V)))
            << "replayed position " << kPrompt + t;
    }
}

// Prefix reuse changes no output (issue 15): a prompt whose first pages another sequence computed (the prefix cache
// hands them over read-only) gives the bits of the same prompt computed whole, at the chunk boundaries the engine
// uses (prefill_chunk_ends: ends at multiples of 512). 1,100 tokens fresh: [0, 512), [512, 1024), [1024, 1100);
// after 62 cached pages: [992, 1024), [1024, 1100) (positions 992 .. 1023 in a chunk of 32, not of 512); after 64,
// [1024, 1100) alone. 993 tokens after 62 pages: a remainder of one token, which the fresh run computes inside its
// chunk [512, 993). So a position's K/V and logits may not depend on how many tokens its prefill chunk holds. Then
// one decode step on top of each. On the tiny presets and on the real models' matrix shapes (Qwen2.5-0.5B and
// Phi-3-mini cut to 2 layers), whose products are where a library would pick another kernel for another length.
class CudaPrefixReuse : public testing::TestWithParam<test::ModelCase> {};

TEST_P(CudaPrefixReuse, CachedPrefixPagesGiveTheBitsOfTheWholePrompt) {
    ORCD_SKIP_WITHOUT_GPU();
    std::mt19937_64 rng(::orcd::cuda::test::fresh_seed());
    const auto& [preset, type, n_layer] = GetParam();  // n_layer 0: a tiny preset, whole
    const model::Model m =
        model::open_model(n_layer == 0 ? test::tiny_model(preset, type) : test::layer_cut_model(preset, type, n_layer));
    auto be = cuda::make_cuda_backend(m);
    auto pool = be->new_kv_pool({.num_pages = 512, .page_size = kPageSize});
    PageSource src(pool->num_pages(), rng);
    // Runs s's tokens [from, to) in the engine's chunks; the last chunk's last-token logits.
    auto prefill = [&](const Seq& s, uint32_t from, uint32_t to) {
        std::vector<float> last;
        uint32_t at = from;
        for (const uint32_t end : prefill_chunk_ends(from, to - from)) {
            BatchEntry e = entry(s, at, Phase::Prompt, end == to ? Want::Logits : Want::Nothing);
            e.tokens = e.tokens.first(end - at);
            const StepOut o = run_step(*be, *pool, {e});
            if (end == to) last = o.logits[0];
            at = end;
        }
        return last;
    };
    auto decode = [&](Seq& s) {
        s.tokens.push_back(7);
        return run_step(*be, *pool, {entry(s, s.tokens.size() - 1, Phase::Generated, Want::Logits)}).logits[0];
    };
    for (const uint32_t length : {1100u, 993u}) {
        Seq whole;
        whole.tokens = random_tokens(rng, length);
        src.cover(whole, length + 1);
        const std::vector<float> want = prefill(whole, 0, length);
        for (const uint32_t cached_pages : {62u, 64u}) {
            const uint32_t from = cached_pages * kPageSize;
            if (from >= length) continue;
            SCOPED_TRACE("a " + std::to_string(length) + "-token prompt after " + std::to_string(from) + " cached");
            Seq reuse;
            reuse.tokens = whole.tokens;
            reuse.pages.assign(whole.pages.begin(), whole.pages.begin() + cached_pages);
            src.cover(reuse, length + 1);
            EXPECT_TRUE(same_bits(prefill(reuse, from, length), want)) << "the prompt's last logits";
            Seq again = whole;  // whole's pages, its own token list: each case decodes position `length` anew
            EXPECT_TRUE(same_bits(decode(reuse), decode(again))) << "the first decode step";
        }
    }
}

INSTANTIATE_TEST_SUITE_P(Tiny, CudaPrefixReuse,
                         testing::Values(std::make_tuple("qwen2.5-tiny", synth::FileType::Q4_K_M, 0u),
                                         std::make_tuple("llama-tiny", synth::FileType::Q4_K_M, 0u),
                                         std::make_tuple("phi3-tiny", synth::FileType::F32, 0u),
                                         std::make_tuple("qwen3-tiny", synth::FileType::Q8_0, 0u)),
                         test::model_case_param_name);
INSTANTIATE_TEST_SUITE_P(RealShapes, CudaPrefixReuse, testing::ValuesIn(test::kRealShapeCuts),
                         test::model_case_param_name);

// Several sequences decoding together against the CPU reference, each alone: logits within the decode step's
// bounds of test_cuda_backend.cpp (f32 weights: 1e-4; Q4_K_M int8: 5e-2), greedy continuations identical up to a
// near-tie. The GPU prompt runs as decode columns too (batched_prefill off), so its logits have the same bounds.
TEST_P(CudaBatch, BatchedDecodeMatchesCpuSequencesAlone) {
    ORCD_SKIP_WITHOUT_GPU();
    std::mt19937_64 rng(::orcd::cuda::test::fresh_seed());
    const auto& [preset, type] = GetParam();
    const model::Model m = model::open_model(test::tiny_model(preset, type));
    auto cpu = cpu::make_cpu_backend(m, {.n_threads = 2});
    auto gpu = cuda::make_cuda_backend(m, {.batched_prefill = false});
    const double bound = type == synth::FileType::F32 ? 2e-4 : 5e-2;
    constexpr size_t kSeqs = 5, kSteps = 12;
    auto pool = gpu->new_kv_pool({.num_pages = 64, .page_size = kPageSize});
    PageSource src(pool->num_pages(), rng);
    std::vector<Seq> seqs(kSeqs);
    std::vector<std::unique_ptr<Sequence>> ref(kSeqs);
    std::vector<std::vector<float>> ref_last(kSeqs);
    for (size_t i = 0; i < kSeqs; ++i) {
        seqs[i].tokens = random_tokens(rng, 3 + 9 * i);
        src.cover(seqs[i], seqs[i].tokens.size() + kSteps);
        ref[i] = cpu->new_sequence({.n_ctx = 128, .kv_type = KvCacheType::F16});
        const auto l = ref[i]->prefill(seqs[i].tokens);
        ref_last[i].assign(l.begin(), l.end());
    }
    std::vector<BatchEntry> batch;
    for (const Seq& s : seqs) batch.push_back(entry(s, 0, Phase::Prompt, Want::Logits));
    StepOut out = run_step(*gpu, *pool, batch);
    int compared = 0;
    for (size_t step = 0; step < kSteps; ++step) {
        batch.clear();
        for (size_t i = 0; i < kSeqs; ++i) {
            EXPECT_LT(rel_error(out.logits[i], ref_last[i]), bound) << "sequence " << i << " step " << step;
            // Teacher-forced on the CPU's pick: both sides then see the same tokens whatever a near-tie did.
            const TokenId next = argmax(ref_last[i]);
            compared += argmax(out.logits[i]) == next;
            const auto l = ref[i]->decode(next);
            ref_last[i].assign(l.begin(), l.end());
            seqs[i].tokens.push_back(next);
            BatchEntry e = entry(seqs[i], seqs[i].tokens.size() - 1, Phase::Generated, Want::Logits);
            batch.push_back(e);
        }
        out = run_step(*gpu, *pool, batch);
    }
    std::printf("%s %s: argmax agreement %d/%zu\n", preset.c_str(), synth::file_type_name(type).data(), compared,
                kSeqs * kSteps);
    EXPECT_GE(compared, static_cast<int>(kSeqs * kSteps) - (type == synth::FileType::F32 ? 1 : 4));
}

// Sampling in a batch picks what the same sequence picks alone with the same draw.
TEST_P(CudaBatch, SampledTokensDoNotDependOnTheBatch) {
    ORCD_SKIP_WITHOUT_GPU();
    std::mt19937_64 rng(::orcd::cuda::test::fresh_seed());
    const auto& [preset, type] = GetParam();
    const model::Model m = model::open_model(test::tiny_model(preset, type));
    auto be = cuda::make_cuda_backend(m);
    auto pool = be->new_kv_pool({.num_pages = 64, .page_size = kPageSize});
    PageSource src(pool->num_pages(), rng);
    std::vector<Seq> seqs(6);
    std::vector<BatchEntry> batch;
    for (Seq& s : seqs) {
        s.tokens = random_tokens(rng, std::uniform_int_distribution<size_t>(2, 30)(rng));
        src.cover(s, s.tokens.size());
        BatchEntry e = entry(s, 0, Phase::Prompt, Want::Nothing);
        e.tokens = e.tokens.first(s.tokens.size() - 1);
        batch.push_back(e);
    }
    run_step(*be, *pool, batch);
    batch.clear();
    for (Seq& s : seqs) {
        BatchEntry e = entry(s, s.tokens.size() - 1, Phase::Generated, Want::Sample);
        e.sample.temperature = 1.5f;
        e.sample.top_k = 40;
        e.sample.u = std::uniform_real_distribution<double>(0.0, 1.0)(rng);
        batch.push_back(e);
    }
    const StepOut together = run_step(*be, *pool, batch);
    for (size_t i = 0; i < seqs.size(); ++i) {
        const StepOut alone = run_step(*be, *pool, {batch[i]});
        EXPECT_EQ(together.tokens[i], alone.tokens[0]) << "sequence " << i;
        EXPECT_GE(alone.tokens[0], 0);
    }
}

INSTANTIATE_TEST_SUITE_P(Tiny, CudaBatch,
                         testing::Values(std::make_tuple("qwen2.5-tiny", synth::FileType::Q4_K_M),
                                         std::make_tuple("llama-tiny", synth::FileType::Q4_K_M),
                                         std::make_tuple("phi3-tiny", synth::FileType::F32),
                                         std::make_tuple("qwen3-tiny", synth::FileType::Q8_0)),
                         [](const auto& info) {
                             std::string n = std::get<0>(info.param) + "_" +
                                             std::string(synth::file_type_name(std::get<1>(info.param)));
                             std::replace_if(
                                 n.begin(), n.end(), [](char c) { return !std::isalnum(c); }, '_');
                             return n;
                         });

// Bad entries are refused before anything is written; the pool is device memory reported as KV cache.
TEST(CudaBatchErrors, BadEntriesAreRefusedAndThePoolIsKvCache) {
    ORCD_SKIP_WITHOUT_GPU();
    const model::Model m = model::open_model(test::tiny_model("qwen2.5-tiny", synth::FileType::Q8_0));
    auto be = cuda::make_cuda_backend(m);
    const uint64_t kv0 = be->device_memory().kv_cache;
    auto pool = be->new_kv_pool({.num_pages = 8, .page_size = kPageSize});
    EXPECT_EQ(pool->page_bytes(), be->kv_page_bytes(kPageSize, KvCacheType::F16));
    EXPECT_EQ(be->device_memory().kv_cache, kv0 + pool->bytes());
    EXPECT_THROW(be->new_kv_pool({.num_pages = 0, .page_size = kPageSize}), Error);

    const std::vector<TokenId> toks = {1, 2, 3};
    const std::vector<uint32_t> pages = {7};
    Seq s{pages, toks};
    std::vector<BatchResult> res(1);
    // Reference logits of the three tokens.
    BatchEntry good = entry(s, 0, Phase::Prompt, Want::Logits);
    be->step(*pool, std::span(&good, 1), res);
    const std::vector<float> want(res[0].logits.begin(), res[0].logits.end());

    auto expect_refused = [&](BatchEntry bad, ErrorCode code) {
        BatchEntry pair[2] = {good, bad};
        pair[0].pages = std::span<const uint32_t>(pages);
        std::vector<BatchResult> r2(2);
        try {
            be->step(*pool, pair, r2);
            ADD_FAILURE() << "accepted";
        } catch (const Error& e) {
            EXPECT_EQ(e.code(), code) << e.what();
        }
    };
    const std::vector<TokenId> bad_tok = {1, 512};
    const std::vector<uint32_t> out_of_pool = {8};
    const std::vector<uint32_t> dup = {0, 0, 0, 0, 0, 0, 0, 0, 0};
    Seq t{{1}, bad_tok};
    expect_refused(entry(t, 0, Phase::Prompt, Want::Logits), ErrorCode::InvalidArgument);
    Seq u{out_of_pool, toks};
    expect_refused(entry(u, 0, Phase::Prompt, Want::Logits), ErrorCode::InvalidArgument);
    Seq w{pages, toks};  // writes page 7, as `good` does
    expect_refused(entry(w, 0, Phase::Prompt, Want::Logits), ErrorCode::InvalidArgument);
    // A table naming one page nine times covers 144 positions of a 128-position pool.
    std::vector<TokenId> long_toks(140, 3);
    Seq v{dup, long_toks};
    expect_refused(entry(v, 130, Phase::Generated, Want::Logits), ErrorCode::InvalidArgument);
    Seq x{{2}, toks};
    BatchEntry bad_sample = entry(x, 0, Phase::Prompt, Want::Sample);
    bad_sample.sample.top_p = 0.f;
    expect_refused(bad_sample, ErrorCode::InvalidArgument);

    // Page 7 still holds what `good` wrote: the same step gives the same bits.
    be->step(*pool, std::span(&good, 1), res);
    EXPECT_TRUE(same_bits(res[0].logits, want));
    pool.reset();
    EXPECT_EQ(be->device_memory().kv_cache, kv0);
}

}  // namespace
}  // namespace orcd::backend
