// The continuous-batching engine's scheduling logic over a deterministic stand-in model: chunk boundaries, the token
// budget, FCFS admission, preemption and prefix reuse, cancellation, and that none of it changes a request's output
// (each compared with Generator::generate over a PagedSequence, the batch-of-one path, on the same stand-in).
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>
#include <atomic>
#include <map>
#include <optional>

#include "backend/cpu/cpu_backend.h"
#include "backend/paged_sequence.h"
#include "common/error.h"
#include "engine/batch_engine.h"
#include "engine/generator.h"
#include "model/model.h"
#include "engine_requests.h"
#include "tiny_models.h"
#include "tokenizer/tokenizer.h"

namespace orcd::engine {
namespace {

using backend::BatchEntry;
using backend::BatchResult;
using backend::Phase;
using backend::Want;
using test::expect_same;
using test::kWords;
using test::Outcome;
using test::request;
using test::run_all;

// A stand-in model whose "KV" at position p is a hash of the token there and the KV at p - 1, read back through
// the page table; its logits are a function of the last position's KV. So a sequence's logits depend on exactly its
// own tokens, through its own pages: a wrong page, a page written by another sequence, a position never computed
// or a cache entry reused for different tokens changes (or fails) the output.
class HashPool final : public backend::KvPool {
public:
    explicit HashPool(const backend::KvPoolOptions& o)
        : KvPool(o, o.page_size * sizeof(uint64_t)), slots(size_t{o.num_pages} * o.page_size, kUnwritten) {}
    static constexpr uint64_t kUnwritten = ~uint64_t{0};
    std::vector<uint64_t> slots;
};

uint64_t mix(uint64_t x) {
    x += 0x9e3779b97f4a7c15ull;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

class HashBackend final : public backend::Backend {
public:
    explicit HashBackend(model::Config config) : config_(std::move(config)) {}
    std::string_view name() const override { return "hash"; }
    const model::Config& config() const override { return config_; }
    uint64_t kv_page_bytes(uint32_t page_size, backend::KvCacheType) const override {
        return page_size * sizeof(uint64_t);
    }
    std::unique_ptr<backend::KvPool> new_kv_pool(const backend::KvPoolOptions& o) override {
        return std::make_unique<HashPool>(o);
    }
    void step(backend::KvPool& kv, std::span<const BatchEntry> batch, std::span<BatchResult> results) override {
        auto& pool = static_cast<HashPool&>(kv);
        const uint32_t ps = pool.page_size();
        steps.push_back(std::vector<BatchEntry>(batch.begin(), batch.end()));
        if (fail_on_token) {
            for (const BatchEntry& e : batch) {
                if (std::find(e.tokens.begin(), e.tokens.end(), *fail_on_token) != e.tokens.end()) {
                    throw Error(ErrorCode::Device, "scripted device failure");
                }
            }
        }
        auto slot = [&](const BatchEntry& e, uint32_t p) -> uint64_t& {
            const uint32_t page_index = p / ps;
            if (page_index >= e.pages.size()) throw Error(ErrorCode::InvalidArgument, "pages do not cover");
            const uint32_t page = e.pages[page_index];
            if (page >= pool.num_pages()) throw Error(ErrorCode::InvalidArgument, "page outside the pool");
            return pool.slots[size_t{page} * ps + p % ps];
        };
        logits_.resize(batch.size());
        for (size_t i = 0; i < batch.size(); ++i) {
            const BatchEntry& e = batch[i];
            if (e.tokens.empty()) throw Error(ErrorCode::InvalidArgument, "no tokens");
            uint64_t h = 0;
            for (size_t t = 0; t < e.tokens.size(); ++t) {
                const uint32_t p = e.first_position + static_cast<uint32_t>(t);
                const uint64_t prev = p == 0 ? 0x5eed : slot(e, p - 1);
                if (prev == HashPool::kUnwritten) {
                    throw Error(ErrorCode::Internal, fmt::format("position {} read before it was written", p - 1));
                }
                h = mix(prev ^ mix(static_cast<uint64_t>(e.tokens[t]) + (uint64_t{p} << 32)));
                slot(e, p) = h;
            }
            // Logits: a function of the last position's KV only.
            std::vector<float>& lg = logits_[i];
            lg.resize(config_.n_vocab);
            for (uint32_t v = 0; v < config_.n_vocab; ++v) {
                lg[v] = static_cast<float>(mix(h ^ (uint64_t{v} * 0x100000001b3ull)) >> 40) * (8.0f / (1 << 24));
            }
            BatchResult& r = results[i];
            r = {};
            switch (e.want) {
                case Want::Nothing: break;
                case Want::Logits: r.logits = lg; break;
                case Want::Argmax:
                    r.token = static_cast<TokenId>(std::max_element(lg.begin(), lg.end()) - lg.begin());
                    break;
                case Want::Sample: r.token = backend::sample_on_host(lg, e.sample); break;
                case Want::AllLogits: throw Error(ErrorCode::InvalidArgument, "no all-logits in this stand-in");
            }
        }
    }

    std::vector<std::vector<BatchEntry>> steps;  // every step's entries (their spans are stale after the step)
    std::optional<TokenId> fail_on_token;

private:
    model::Config config_;
    std::vector<std::vector<float>> logits_;
};

const std::filesystem::path kPhi3Vocab = test::shared_path("models/vocab/ggml-vocab-phi-3.gguf");

struct Fixture {
    model::Model model =
        model::open_model(test::tiny_model("phi3-tiny", synth::FileType::F32, 3, "ggml-vocab-phi-3.gguf"));
    tokenizer::Tokenizer tok = tokenizer::Tokenizer::from_gguf(*model.file);
    HashBackend be{model.config};
};

Fixture& fx() {
    static Fixture f;
    return f;
}

// The reference: the request alone, through Generator::generate on a PagedSequence (the batch-of-one path).
GenerateResult alone(const GenerateRequest& r) {
    auto& f = fx();
    backend::PagedSequence seq(f.be, {.n_ctx = 512}, 16);
    return Generator(f.be, f.tok).generate(seq, r);
}

BatchEngineOptions opts(uint32_t num_pages, uint32_t parallel = 16) {
    BatchEngineOptions o;
    o.parallel = parallel;
    o.max_batch_tokens = 64;
    o.n_ctx = 512;
    o.num_pages = num_pages;
    o.page_size = 4;
    o.prefill_chunk = 8;
    return o;
}

TEST(BatchEngine, SixteenConcurrentRequestsEqualTheSameRequestsAlone) {
    ORCD_SKIP_WITHOUT_SHARED(kPhi3Vocab);
    auto& f = fx();
    BatchEngine engine(f.be, f.tok, opts(1024));
    std::vector<GenerateRequest> reqs;
    for (int i = 0; i < 16; ++i) reqs.push_back(request(i));
    std::vector<Outcome> out;
    std::vector<StepReport> reports;
    run_all(engine, reqs, out, &reports);
    uint32_t widest = 0;
    for (const auto& r : reports) widest = std::max(widest, r.sequences);
    EXPECT_GE(widest, 8u) << "the requests did not share steps";
    for (int i = 0; i < 16; ++i) {
        ASSERT_TRUE(out[i].result) << i;
        expect_same(*out[i].result, alone(reqs[i]), fmt::format("request {}", i));
        EXPECT_EQ(out[i].streamed, out[i].result->text);
    }
    const kvcache::BlockStats st = engine.kv_stats();
    EXPECT_EQ(st.pages_used, 0u);
    EXPECT_EQ(st.pages_free + st.pages_evictable, st.pages_total);
    EXPECT_EQ(st.sequences, 0u);
}

TEST(BatchEngine, SeededSamplingAloneOrAmongFifteenOthersGivesTheSameText) {
    ORCD_SKIP_WITHOUT_SHARED(kPhi3Vocab);
    auto& f = fx();
    GenerateRequest r = request(4);
    r.sampling.temperature = 0.9f;
    r.sampling.seed = 77;
    r.max_tokens = 24;
    std::vector<Outcome> solo, crowd;
    {
        BatchEngine engine(f.be, f.tok, opts(1024));
        run_all(engine, {r}, solo);
    }
    std::vector<GenerateRequest> reqs;
    for (int i = 0; i < 16; ++i) reqs.push_back(i == 9 ? r : request(i + 20));
    BatchEngine engine(f.be, f.tok, opts(1024));
    run_all(engine, reqs, crowd);
    ASSERT_TRUE(solo[0].result && crowd[9].result);
    expect_same(*crowd[9].result, *solo[0].result, "seeded request among 15 others");
}

// A request that carries its prompt's tokens (the server tokenizes once to check the context, and the n choices of
// one request share that tokenization) is not tokenized again: the ids are used as they are, with the same output as
// the text would give; a prompt that could not be tokenized at all (a chat template file that does not exist) is
// never read.
TEST(BatchEngine, APreTokenizedPromptIsNotTokenizedAgain) {
    auto& f = fx();
    const GenerateRequest text = request(5);
    GenerateRequest ids = text;
    ids.prompt_ids = Generator(f.be, f.tok).prompt_tokens(text);
    ASSERT_FALSE(ids.prompt_ids.empty());
    ids.prompt = "different words that are never read";
    GenerateRequest untokenizable = ids;
    untokenizable.chat = true;
    untokenizable.chat_template_file = "/nonexistent/template.jinja";
    GenerateRequest chat_text = untokenizable;
    chat_text.prompt_ids.clear();
    BatchEngine engine(f.be, f.tok, opts(1024));
    EXPECT_THROW(engine.prepare(chat_text), Error);  // the seam is real: tokenizing this request fails
    std::vector<Outcome> out;
    run_all(engine, {text, ids, untokenizable}, out);
    ASSERT_TRUE(out[0].result && out[1].result && out[2].result);
    EXPECT_EQ(out[1].result->prompt_tokens, ids.prompt_ids);
    expect_same(*out[1].result, *out[0].result, "prompt ids vs the same prompt as text");
    expect_same(*out[2].result, *out[0].result, "prompt ids with a chat request that cannot be tokenized");
}

TEST(BatchEngine, PromptsAreSplitAtChunkBoundariesWithinTheTokenBudget) {
    ORCD_SKIP_WITHOUT_SHARED(kPhi3Vocab);
    auto& f = fx();
    BatchEngineOptions o = opts(1024, 4);
    o.max_batch_tokens = 20;
    BatchEngine engine(f.be, f.tok, o);
    std::vector<GenerateRequest> reqs;
    for (int i = 0; i < 6; ++i) {
        GenerateRequest r = request(i, true);
        r.prompt += r.prompt;  // long enough for several chunks
        reqs.push_back(r);
    }
    const size_t first_step = f.be.steps.size();
    std::vector<Outcome> out;
    run_all(engine, reqs, out);
    for (size_t s = first_step; s < f.be.steps.size(); ++s) {
        uint32_t tokens = 0, decodes = 0, chunks = 0, biggest = 0;
        for (const BatchEntry& e : f.be.steps[s]) {
            tokens += e.tokens.size();
            const uint32_t end = e.first_position + e.tokens.size();
            if (e.phase == Phase::Generated && e.tokens.size() == 1) {
                ++decodes;
                continue;
            }
            ++chunks;
            biggest = std::max<uint32_t>(biggest, e.tokens.size());
            // A chunk never crosses a multiple of the chunk size; it ends at one, or at the prompt's end (which
            // then wants a pick).
            EXPECT_LE(e.first_position / 8, (end - 1) / 8) << "step " << s;
            EXPECT_EQ(e.first_position / 8, (end - 1) / 8) << "step " << s << ": a chunk crosses a boundary";
            if (end % 8 != 0) {
                EXPECT_NE(e.want, Want::Nothing) << "step " << s;
            }
        }
        // The budget holds, except that the first chunk of a step always runs.
        EXPECT_TRUE(tokens <= o.max_batch_tokens || chunks == 1) << "step " << s << ": " << tokens << " tokens";
        EXPECT_LE(decodes + chunks, o.parallel);
    }
    for (int i = 0; i < 6; ++i) {
        ASSERT_TRUE(out[i].result);
        expect_same(*out[i].result, alone(reqs[i]), fmt::format("request {}", i));
    }
}

TEST(BatchEngine, AdmitsFirstComeFirstServedUpToParallel) {
    ORCD_SKIP_WITHOUT_SHARED(kPhi3Vocab);
    auto& f = fx();
    BatchEngine engine(f.be, f.tok, opts(1024, 2));
    std::vector<int> start_order;
    std::vector<int> end_order;
    for (int i = 0; i < 5; ++i) {
        RequestSink sink;
        sink.on_start = [&start_order, i] { start_order.push_back(i); };
        sink.on_end = [&end_order, i](GenerateResult) { end_order.push_back(i); };
        GenerateRequest r = request(i);
        r.max_tokens = 8;
        r.sampling.temperature = 0.f;
        engine.add(engine.prepare(r), std::move(sink));
    }
    EXPECT_EQ(engine.waiting(), 5u);
    engine.step();
    EXPECT_EQ(engine.running(), 2u);
    EXPECT_EQ(engine.waiting(), 3u);
    while (!engine.idle()) {
        engine.step();
        EXPECT_LE(engine.running(), 2u);
    }
    EXPECT_EQ(start_order, (std::vector<int>{0, 1, 2, 3, 4}));
    EXPECT_EQ(end_order.size(), 5u);
}

TEST(BatchEngine, AHeadRequestThatDoesNotFitBlocksTheQueueUntilPagesFree) {
    ORCD_SKIP_WITHOUT_SHARED(kPhi3Vocab);
    auto& f = fx();
    // 24 pages of 4 positions: the long request needs most of them.
    BatchEngine engine(f.be, f.tok, opts(24, 8));
    std::vector<GenerateRequest> reqs = {request(1), request(2), request(3)};
    reqs[1].prompt.clear();
    for (int w = 0; w < 40; ++w) reqs[1].prompt += std::string(kWords[w % 16]) + " ";
    reqs[1].max_tokens = 4;
    std::vector<Outcome> out;
    std::vector<int> start_order;
    run_all(engine, reqs, out, nullptr, nullptr, [&](size_t) {
        for (int i = 0; i < 3; ++i) {
            if (out[i].started && std::find(start_order.begin(), start_order.end(), i) == start_order.end()) {
                start_order.push_back(i);
            }
        }
    });
    EXPECT_EQ(start_order, (std::vector<int>{0, 1, 2}));  // request 2 never overtook request 1
    for (int i = 0; i < 3; ++i) {
        ASSERT_TRUE(out[i].result) << i;
        expect_same(*out[i].result, alone(reqs[i]), fmt::format("request {}", i));
    }
}

TEST(BatchEngine, PreemptionAndPrefixReuseChangeNoOutputAndLeakNoPage) {
    ORCD_SKIP_WITHOUT_SHARED(kPhi3Vocab);
    auto& f = fx();
    // 64 requests, a pool of 40 pages of 4 positions (a sequence here needs 5-12 pages): a few run at a time, decodes
    // run the pool dry and preempt, and the shared prefix is served from the cache.
    BatchEngine engine(f.be, f.tok, opts(40, 16));
    const kvcache::BlockStats before = engine.kv_stats();
    std::vector<GenerateRequest> reqs;
    for (int i = 0; i < 64; ++i) reqs.push_back(request(i, true));
    std::vector<Outcome> out;
    std::vector<StepReport> reports;
    run_all(engine, reqs, out, &reports);
    for (int i = 0; i < 64; ++i) {
        ASSERT_TRUE(out[i].result) << i;
        EXPECT_FALSE(out[i].error) << i;
        expect_same(*out[i].result, alone(reqs[i]), fmt::format("request {}", i));
        EXPECT_EQ(out[i].streamed, out[i].result->text) << i;
    }
    const kvcache::BlockStats st = engine.kv_stats();
    EXPECT_GT(st.preemptions, 0u) << "the pool never ran dry: the test does not test preemption";
    EXPECT_GT(st.prefix_hit_tokens, 0u) << "the shared prefix was never reused";
    EXPECT_EQ(st.pages_used, 0u);
    EXPECT_EQ(st.pages_free + st.pages_evictable, before.pages_free);
    // Preempted sequences replayed their generated tokens as Phase::Generated entries of more than one token.
    bool replayed = false;
    for (const auto& step : f.be.steps) {
        for (const BatchEntry& e : step) replayed |= e.phase == Phase::Generated && e.tokens.size() > 1;
    }
    EXPECT_TRUE(replayed);
}

TEST(BatchEngine, PrefixCacheOffStillGivesTheSameOutputs) {
    ORCD_SKIP_WITHOUT_SHARED(kPhi3Vocab);
    auto& f = fx();
    BatchEngineOptions o = opts(40, 16);
    o.prefix_caching = false;
    BatchEngine engine(f.be, f.tok, o);
    std::vector<GenerateRequest> reqs;
    for (int i = 0; i < 24; ++i) reqs.push_back(request(i, true));
    std::vector<Outcome> out;
    run_all(engine, reqs, out);
    for (int i = 0; i < 24; ++i) {
        ASSERT_TRUE(out[i].result) << i;
        expect_same(*out[i].result, alone(reqs[i]), fmt::format("request {}", i));
    }
    EXPECT_EQ(engine.kv_stats().prefix_hit_tokens, 0u);
    EXPECT_EQ(engine.kv_stats().pages_free, 40u);
}

TEST(BatchEngine, CancellationFreesThePagesAtOnceAndTheOthersContinueUnchanged) {
    ORCD_SKIP_WITHOUT_SHARED(kPhi3Vocab);
    auto& f = fx();
    BatchEngine engine(f.be, f.tok, opts(1024, 8));
    std::vector<GenerateRequest> reqs;
    for (int i = 0; i < 8; ++i) {
        reqs.push_back(request(i));
        reqs.back().max_tokens = 16;
        reqs.back().stop.clear();
    }
    std::vector<std::atomic<bool>> cancel(8);
    std::vector<Outcome> out;
    uint32_t used_before_cancel = 0;
    run_all(engine, reqs, out, nullptr, &cancel, [&](size_t s) {
        if (s == 4) {
            used_before_cancel = engine.kv_stats().pages_used;
            cancel[3] = true;
            cancel[6] = true;
        }
        if (s == 5) {
            // Dropped at the start of the step that followed: pages already released.
            EXPECT_LT(engine.kv_stats().pages_used, used_before_cancel);
            EXPECT_EQ(engine.kv_stats().sequences, engine.running());
        }
    });
    for (int i = 0; i < 8; ++i) {
        ASSERT_TRUE(out[i].result) << i;
        if (i == 3 || i == 6) {
            EXPECT_EQ(out[i].result->stop_reason, StopReason::Cancelled) << i;
            continue;
        }
        expect_same(*out[i].result, alone(reqs[i]), fmt::format("request {}", i));
    }
    EXPECT_EQ(engine.kv_stats().pages_used, 0u);
}

TEST(BatchEngine, ARequestLargerThanThePoolIsRefusedBeforeQueueing) {
    ORCD_SKIP_WITHOUT_SHARED(kPhi3Vocab);
    auto& f = fx();
    BatchEngine engine(f.be, f.tok, opts(8, 4));  // 32 positions
    GenerateRequest r = request(1);
    r.max_tokens = 40;
    try {
        engine.prepare(r);
        FAIL() << "accepted";
    } catch (const Error& e) {
        EXPECT_EQ(e.code(), ErrorCode::InvalidArgument);
        EXPECT_NE(std::string(e.what()).find("8 pages"), std::string::npos) << e.what();
    }
    EXPECT_TRUE(engine.idle());
    r.max_tokens = 600;  // beyond the served context: ContextOverflow, as Generator::generate
    EXPECT_THROW(
        try { engine.prepare(r); } catch (const Error& e) {
            EXPECT_EQ(e.code(), ErrorCode::ContextOverflow);
            throw;
        },
        Error);
}

TEST(BatchEngine, ABackendFailureFailsThatStepsRequestsOnlyAndFreesTheirPages) {
    ORCD_SKIP_WITHOUT_SHARED(kPhi3Vocab);
    auto& f = fx();
    BatchEngine engine(f.be, f.tok, opts(1024, 1));  // one at a time: the failing step holds one request
    std::vector<GenerateRequest> reqs = {request(0), request(1), request(2)};
    f.be.fail_on_token = engine.prepare(reqs[1])
                             ->tokens()
                             .back();  // the last prompt token of request 1 (request 0 and 2 avoid it: checked)
    std::vector<Outcome> out;
    run_all(engine, reqs, out);
    f.be.fail_on_token.reset();
    ASSERT_TRUE(out[1].error);
    EXPECT_FALSE(out[1].result);
    try {
        std::rethrow_exception(out[1].error);
    } catch (const Error& e) {
        EXPECT_EQ(e.code(), ErrorCode::Device);
    }
    EXPECT_EQ(engine.kv_stats().pages_used, 0u);
    for (int i : {0, 2}) {
        if (out[i].error) continue;  // its own tokens happened to contain the failing one
        ASSERT_TRUE(out[i].result) << i;
        expect_same(*out[i].result, alone(reqs[i]), fmt::format("request {}", i));
    }
}

// The real CPU backend (the reference): batched, preempted and served from the prefix cache, bit-identical to each
// request alone (test::expect_batched_equals_alone; tests/backend_cuda/test_cuda_engine.cpp runs it on the GPU).
TEST(BatchEngineCpu, RealModelBatchedEqualsAloneAcrossChunksPreemptionAndPrefixReuse) {
    ORCD_SKIP_WITHOUT_SHARED(kPhi3Vocab);
    auto& f = fx();
    auto cpu = backend::cpu::make_cpu_backend(f.model, {.n_threads = 2});
    test::expect_batched_equals_alone(*cpu, f.tok, "real CPU model");
}

}  // namespace
}  // namespace orcd::engine
