// The block manager's hot paths, per call: what a continuous-batching scheduler pays per step on the host. A decode
// step of a 64-sequence batch calls append + commit once per sequence; an admission walks the prompt's pages (hash,
// lookup) and allocates the rest; finish releases them.
#include <benchmark/benchmark.h>

#include <cstdint>
#include <random>
#include <vector>

#include "kvcache/block_manager.h"

namespace {

using namespace orcd::kvcache;

std::vector<Token> random_tokens(size_t n, uint32_t seed) {
    std::mt19937 rng(seed);
    std::uniform_int_distribution<Token> id(0, 151935);
    std::vector<Token> t(n);
    for (Token& x : t) x = id(rng);
    return t;
}

// Admit + finish of one prompt of state.range(0) tokens; with caching on, every page but the last is a hit after the
// first iteration (a shared system prompt); off, every page is allocated and freed.
void admit_finish(benchmark::State& state, bool caching) {
    const auto prompt = random_tokens(static_cast<size_t>(state.range(0)), 1);
    BlockManager bm(BlockManagerConfig{4096, 16, caching});
    if (!bm.admit(0, prompt, 128)) state.SkipWithError("admission failed");
    bm.commit(0, static_cast<uint32_t>(prompt.size()));
    bm.finish(0);
    uint32_t cached = 0;
    for (auto _ : state) {
        const auto r = bm.admit(1, prompt, 128);
        benchmark::DoNotOptimize(r);
        cached = r ? r->cached_tokens : 0;
        bm.finish(1);
    }
    state.SetItemsProcessed(state.iterations() * state.range(0));
    state.counters["cached_tokens"] = cached;
}
BENCHMARK_CAPTURE(admit_finish, prefix_cached, true)->Arg(128)->Arg(1024);
BENCHMARK_CAPTURE(admit_finish, no_prefix_cache, false)->Arg(128)->Arg(1024);

// One decode step of state.range(0) sequences: each appends one token and commits it (publishing a page every 16
// steps). The sequences restart when they reach their limit, outside the timed region.
void decode_step(benchmark::State& state) {
    const auto batch = static_cast<SeqId>(state.range(0));
    constexpr uint32_t kPrompt = 100, kMaxNew = 1024;
    BlockManager bm(BlockManagerConfig{static_cast<uint32_t>(batch) * ((kPrompt + kMaxNew) / 16 + 2), 16, true});
    std::vector<std::vector<Token>> prompts;
    for (SeqId s = 0; s < batch; ++s) {
        prompts.push_back(random_tokens(kPrompt, static_cast<uint32_t>(s) + 10));
        bm.admit(s, prompts.back(), kMaxNew);
        bm.commit(s, kPrompt);
    }
    uint32_t generated = 0;
    const Token token[1] = {42};
    for (auto _ : state) {
        if (generated == kMaxNew) {
            state.PauseTiming();
            for (SeqId s = 0; s < batch; ++s) {
                bm.finish(s);
                bm.admit(s, prompts[s], kMaxNew);
                bm.commit(s, kPrompt);
            }
            generated = 0;
            state.ResumeTiming();
        }
        for (SeqId s = 0; s < batch; ++s) {
            bm.append(s, token);
            bm.commit(s, kPrompt + generated + 1);
        }
        ++generated;
    }
    state.SetItemsProcessed(state.iterations() * static_cast<int64_t>(batch));
}
BENCHMARK(decode_step)->Arg(1)->Arg(16)->Arg(64);

// The scheduler's question before each admission, on a busy pool.
void can_admit(benchmark::State& state) {
    BlockManager bm(BlockManagerConfig{1024, 16, true});
    const auto prompt = random_tokens(512, 3);
    bm.admit(0, prompt, 16);
    bm.commit(0, 512);
    const auto other = random_tokens(512, 4);
    for (auto _ : state) benchmark::DoNotOptimize(bm.can_admit(other, 128, AdmitPolicy::PromptOnly));
}
BENCHMARK(can_admit);

}  // namespace

BENCHMARK_MAIN();
