// The host sampling chain at a 152k vocabulary (Qwen2.5's 151,936 tokens), per step: the default OpenAI parameters
// (temperature 1, no top-k, top-p or min-p), the engine's defaults (top-k 40, top-p 0.95, min-p 0.05, temperature
// 0.8), top-p 0.95 alone, min-p 0.05 alone, greedy, and argmax_token (a backend's greedy pick). Logits are a gaussian spread (sd 2.5) with a few peaked
// tokens, roughly a language model's shape; each iteration draws a fresh u. Temperature 0.7 with top-p 0.9 is the
// most common setting of OpenAI clients. Top-p at a low temperature, top-p with min-p (no top-k) and a wide top-k
// with top-p are the other combinations a client may send; the "Flat" case's logits are spread 5x narrower (sd 0.5,
// no peaks), so that top-p keeps most of the vocabulary: the worst case of the paths that pick among top-p's kept
// tokens; "FlatMasked" is those logits with nine tokens in ten masked to -inf, as a grammar's token mask leaves them
// (the screen's pass then sends most tokens to the tail bin, whose additions must not wait on each other). The last
// benchmark times a sort of the (logit, id) pairs alone: what every step paid before the chain
// stopped sorting.
#include <benchmark/benchmark.h>

#include <algorithm>
#include <limits>
#include <random>
#include <vector>

#include "backend/sample_chain.h"

namespace {

using namespace orcd::backend;

constexpr size_t kVocab = 151936;

enum class Shape { Peaked, Flat, FlatMasked };

std::vector<float> logits(Shape shape = Shape::Peaked) {
    std::mt19937_64 rng(1);
    std::normal_distribution<float> g(0.f, shape == Shape::Peaked ? 2.5f : 0.5f);
    std::vector<float> l(kVocab);
    for (float& v : l) v = g(rng);
    if (shape == Shape::Peaked) {
        for (size_t i = 0; i < 5; ++i) l[rng() % kVocab] += 12.f;
    }
    if (shape == Shape::FlatMasked) {
        for (float& v : l) {
            if (rng() % 10 != 0) v = -std::numeric_limits<float>::infinity();
        }
    }
    return l;
}

void run(benchmark::State& state, float temp, int32_t top_k, float top_p, float min_p, Shape shape = Shape::Peaked) {
    const auto l = logits(shape);
    SampleScratch scratch;
    std::mt19937_64 rng(2);
    SampleStep s;
    s.temperature = temp;
    s.top_k = top_k;
    s.top_p = top_p;
    s.min_p = min_p;
    for (auto _ : state) {
        s.u = static_cast<double>(rng() >> 11) * 0x1.0p-53;
        benchmark::DoNotOptimize(sample_on_host(l, s, scratch));
    }
    state.counters["sorted_fallbacks"] = static_cast<double>(scratch.sorted_fallbacks);
    state.counters["screen_fallbacks"] = static_cast<double>(scratch.screen_fallbacks);
}

void BM_SampleOpenAIDefault(benchmark::State& state) { run(state, 1.f, 0, 1.f, 0.f); }
void BM_SampleEngineDefault(benchmark::State& state) { run(state, 0.8f, 40, 0.95f, 0.05f); }
void BM_SampleTopP095(benchmark::State& state) { run(state, 1.f, 0, 0.95f, 0.f); }
void BM_SampleT07TopP09(benchmark::State& state) { run(state, 0.7f, 0, 0.9f, 0.f); }
void BM_SampleT03TopP09(benchmark::State& state) { run(state, 0.3f, 0, 0.9f, 0.f); }
void BM_SampleT08TopP095MinP005(benchmark::State& state) { run(state, 0.8f, 0, 0.95f, 0.05f); }
void BM_SampleT07TopP09MinP0001(benchmark::State& state) { run(state, 0.7f, 0, 0.9f, 0.001f); }
void BM_SampleT07TopK1000TopP09(benchmark::State& state) { run(state, 0.7f, 1000, 0.9f, 0.f); }
void BM_SampleT07TopP09Flat(benchmark::State& state) { run(state, 0.7f, 0, 0.9f, 0.f, Shape::Flat); }
void BM_SampleT07TopP09FlatMasked(benchmark::State& state) { run(state, 0.7f, 0, 0.9f, 0.f, Shape::FlatMasked); }
void BM_SampleMinP005(benchmark::State& state) { run(state, 1.f, 0, 1.f, 0.05f); }
void BM_SampleGreedy(benchmark::State& state) { run(state, 0.f, 0, 1.f, 0.f); }

// argmax_token: a backend's greedy pick (the CPU backend's Want::Argmax), without the chain's checks.
void BM_ArgmaxToken(benchmark::State& state) {
    const auto l = logits();
    for (auto _ : state) benchmark::DoNotOptimize(argmax_token(l));
}

void BM_SortWholeVocabulary(benchmark::State& state) {
    const auto l = logits();
    std::vector<std::pair<float, TokenId>> cand(kVocab);
    for (auto _ : state) {
        for (size_t i = 0; i < kVocab; ++i) cand[i] = {l[i], static_cast<TokenId>(i)};
        std::sort(cand.begin(), cand.end(), [](const auto& a, const auto& b) {
            return a.first > b.first || (a.first == b.first && a.second < b.second);
        });
        benchmark::DoNotOptimize(cand.data());
    }
}

BENCHMARK(BM_SampleOpenAIDefault)->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_SampleEngineDefault)->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_SampleTopP095)->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_SampleT07TopP09)->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_SampleT03TopP09)->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_SampleT08TopP095MinP005)->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_SampleT07TopP09MinP0001)->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_SampleT07TopK1000TopP09)->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_SampleT07TopP09Flat)->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_SampleT07TopP09FlatMasked)->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_SampleMinP005)->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_SampleGreedy)->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_ArgmaxToken)->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_SortWholeVocabulary)->Unit(benchmark::kMicrosecond);

}  // namespace

BENCHMARK_MAIN();
