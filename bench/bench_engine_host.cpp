// The continuous-batching engine's own host work per step, with the model taken out: BatchEngine::step over a
// stand-in backend whose forward pass costs nothing (it returns a fixed token id per entry and, for a prompt's first
// pick, a fixed logits row). What is left is what the server's scheduler thread does around every device step while
// the GPU waits for it: planning the step, building the entries (page tables, sampling draws), committing positions
// to the block manager (page hashing for the prefix cache), each generation taking its token (detokenizing, stop
// strings, end conditions), and admitting new requests. docs/PERF.md compares it with the device step it delays.
//
// Closed loop, as bench/serve_load.py drives a server: B clients, each request a distinct 100-token prompt and 128
// greedy tokens; a finished request is replaced at once by the next one. Real tokenizer (Qwen2.5's vocabulary), real
// text (the stand-in's tokens cycle through ordinary word pieces, so the detokenizer does its usual work).
#include <benchmark/benchmark.h>

#include <algorithm>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "backend/backend.h"
#include "engine/batch_engine.h"
#include "gguf/file.h"
#include "tokenizer/tokenizer.h"

namespace {

namespace fs = std::filesystem;
using namespace orcd;
using TokenId = backend::TokenId;

class NullPool final : public backend::KvPool {
public:
    explicit NullPool(const backend::KvPoolOptions& o) : KvPool(o, 1) {}
};

// Every pick is the next id of a fixed list of ordinary tokens; the first pick of a prompt gets a logits row whose
// largest entry is such a token, so the host chain (greedy: one argmax pass over the vocabulary) runs as it does
// for a real first token.
class NullBackend final : public backend::Backend {
public:
    NullBackend(model::Config config, std::vector<TokenId> words)
        : config_(std::move(config)), words_(std::move(words)) {
        logits_.assign(config_.n_vocab, 0.f);
        logits_[static_cast<size_t>(words_[0])] = 1.f;
    }
    std::string_view name() const override { return "null"; }
    const model::Config& config() const override { return config_; }
    uint64_t kv_page_bytes(uint32_t, backend::KvCacheType) const override { return 1; }
    std::unique_ptr<backend::KvPool> new_kv_pool(const backend::KvPoolOptions& o) override {
        return std::make_unique<NullPool>(o);
    }
    void step(backend::KvPool&, std::span<const backend::BatchEntry> batch,
              std::span<backend::BatchResult> results) override {
        for (size_t i = 0; i < batch.size(); ++i) {
            const backend::BatchEntry& e = batch[i];
            results[i] = {};
            if (e.want == backend::Want::Logits) results[i].logits = logits_;
            if (e.want == backend::Want::Argmax || e.want == backend::Want::Sample) {
                results[i].token = words_[(e.first_position + e.tokens.size()) % words_.size()];
            }
        }
    }

private:
    model::Config config_;
    std::vector<TokenId> words_;
    std::vector<float> logits_;
};

struct Setup {
    std::optional<tokenizer::Tokenizer> tok;
    std::vector<TokenId> words;
};

const Setup* setup() {
    static const std::unique_ptr<Setup> s = []() -> std::unique_ptr<Setup> {
        const fs::path p = fs::path(ORCD_SHARED_DIR) / "models/vocab/ggml-vocab-qwen2.5.gguf";
        if (!fs::exists(p)) return nullptr;
        auto out = std::make_unique<Setup>();
        out->tok.emplace(tokenizer::Tokenizer::from_gguf(gguf::File::open(p)));
        out->words = out->tok->encode(
            " the quick brown fox jumps over the lazy dog while a small bird sings on the old fence near the river",
            /*add_special=*/false, /*parse_special=*/false);
        return out;
    }();
    return s.get();
}

std::string prompt_text(int k) {
    std::string t = "Request " + std::to_string(k) + ":";
    for (int i = 0; t.size() < 420; ++i) t += " word" + std::to_string((k * 131 + i * 17) % 997);
    return t;
}

void BM_EngineHostStep(benchmark::State& state) {
    const Setup* s = setup();
    if (!s) {
        state.SkipWithError("../shared/models/vocab/ggml-vocab-qwen2.5.gguf is absent");
        return;
    }
    const auto clients = static_cast<uint32_t>(state.range(0));
    model::Config c;
    c.arch_name = "null";
    c.n_vocab = 151936;
    c.context_length = 4096;
    NullBackend be(c, s->words);
    engine::BatchEngineOptions o;
    o.parallel = clients;
    o.n_ctx = 4096;
    o.page_size = 16;
    o.num_pages = clients * (4096 / 16);
    engine::BatchEngine eng(be, *s->tok, o);

    int next = 0;
    uint32_t in_flight = 0;
    uint64_t tokens = 0;
    auto submit = [&] {
        engine::GenerateRequest r;
        r.prompt = prompt_text(next++);
        r.max_tokens = 128;
        r.sampling.temperature = 0.f;
        engine::RequestSink sink;
        sink.on_end = [&](const engine::GenerateResult& res) {
            tokens += res.tokens.size();
            --in_flight;
        };
        ++in_flight;
        eng.add(eng.prepare(r, [](std::string_view) {}), std::move(sink));
    };
    auto refill = [&] {
        while (in_flight < clients) submit();
    };
    // Warm up past the first wave of prefills, so the timed steps are the steady mix of decodes and admissions.
    refill();
    for (int i = 0; i < 300; ++i) {
        eng.step();
        refill();
    }
    tokens = 0;
    for (auto _ : state) {
        const engine::StepReport r = eng.step();
        benchmark::DoNotOptimize(r);
        state.PauseTiming();  // the tokenization of new prompts happens on the HTTP threads, not the scheduler's
        refill();
        state.ResumeTiming();
    }
    state.counters["tokens_per_step"] = benchmark::Counter(static_cast<double>(tokens) / state.iterations());
}
BENCHMARK(BM_EngineHostStep)->Arg(1)->Arg(16)->Arg(64)->Unit(benchmark::kMicrosecond);

}  // namespace

BENCHMARK_MAIN();
