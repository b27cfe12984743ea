#pragma once
// Requests for the batching engine's tests and the loop that serves them (tests/engine/test_batch_engine.cpp over a
// stand-in and the CPU backend, tests/backend_cuda/test_cuda_engine.cpp over the CUDA backend).
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <atomic>
#include <cstdio>
#include <exception>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "backend/backend.h"
#include "engine/batch_engine.h"
#include "engine/generator.h"
#include "tokenizer/tokenizer.h"

namespace orcd::test {

inline const char* const kWords[] = {"alpha", "bravo",  "charlie", "delta", "echo", "foxtrot",  "golf",  "hotel",
                                     "india", "juliet", "kilo",    "lima",  "mike", "november", "oscar", "papa"};

// Request i: greedy or seeded sampling, its own prompt (some sharing a long prefix), its own length.
inline engine::GenerateRequest request(int i, bool shared_prefix = false) {
    engine::GenerateRequest r;
    if (shared_prefix && i % 2 == 0) {
        r.prompt = "You are a helpful assistant who answers every question briefly and politely. ";
    }
    for (int w = 0; w < 3 + i % 7; ++w) {
        r.prompt += kWords[(i * 5 + w * 3) % 16];
        r.prompt += ' ';
    }
    r.max_tokens = 6 + static_cast<uint32_t>(i % 11);
    r.sampling.seed = 1000 + i;  // (greedy draws nothing, but reports its seed)
    if (i % 3 == 0) {
        r.sampling.temperature = 0.f;
    } else {
        r.sampling.temperature = 1.0f;
        if (i % 3 == 2) r.sampling.repeat_penalty = 1.2f;
    }
    return r;
}

struct Outcome {
    bool started = false;
    std::optional<engine::GenerateResult> result;
    std::string streamed;
    std::exception_ptr error;
};

// Submits every request, then steps until idle, checking the block manager's invariants after every step.
inline void run_all(engine::BatchEngine& engine, const std::vector<engine::GenerateRequest>& reqs,
                    std::vector<Outcome>& out, std::vector<engine::StepReport>* reports = nullptr,
                    const std::vector<std::atomic<bool>>* cancel = nullptr,
                    const std::function<void(size_t step)>& between = {}) {
    out.resize(reqs.size());
    for (size_t i = 0; i < reqs.size(); ++i) {
        Outcome& o = out[i];
        auto gen = engine.prepare(reqs[i], [&o](std::string_view s) { o.streamed += s; });
        engine::RequestSink sink;
        sink.on_start = [&o] { o.started = true; };
        sink.on_end = [&o](engine::GenerateResult r) { o.result = std::move(r); };
        sink.on_error = [&o](std::exception_ptr e) { o.error = e; };
        engine.add(std::move(gen), std::move(sink), cancel ? &(*cancel)[i] : nullptr);
    }
    for (size_t s = 0; !engine.idle(); ++s) {
        ASSERT_LT(s, 100000u) << "the engine does not finish";
        const engine::StepReport rep = engine.step();
        ASSERT_GT(rep.sequences, 0u) << "a step with work left ran nothing";
        if (reports) reports->push_back(rep);
        engine.blocks().check_invariants();
        if (between) between(s);
    }
}

inline void expect_same(const engine::GenerateResult& a, const engine::GenerateResult& b, const std::string& what) {
    EXPECT_EQ(a.tokens, b.tokens) << what;
    EXPECT_EQ(a.text, b.text) << what;
    EXPECT_EQ(a.stop_reason, b.stop_reason) << what;
    EXPECT_EQ(a.seed, b.seed) << what;
    EXPECT_EQ(a.prompt_tokens, b.prompt_tokens) << what;
}

// A real backend's batching against the same requests alone (Generator::generate on the backend's own sequence):
// six requests, one with a prompt longer than a 512-token chunk, in a pool too small for all of them (the others are
// preempted around it), then the long one again (its pages from the prefix cache: the rest of its prompt in a chunk
// of its own, where alone that part shares a chunk), then all six again. Every output bit-identical to its request
// alone, every page back at the end.
inline void expect_batched_equals_alone(backend::Backend& be, const tokenizer::Tokenizer& tok, const char* what) {
    std::vector<engine::GenerateRequest> reqs;
    for (int i = 0; i < 6; ++i) reqs.push_back(request(i, true));
    reqs[0].prompt.clear();
    for (int w = 0; w < 400; ++w) reqs[0].prompt += std::string(kWords[(w * 7) % 16]) + " ";  // > 512 tokens
    reqs[0].max_tokens = 8;
    engine::BatchEngineOptions o;
    o.parallel = 6;
    o.max_batch_tokens = 512;
    o.n_ctx = 1024;
    o.page_size = 16;
    o.num_pages = 46;  // the long prompt needs ~42 pages: the others are preempted around it
    o.kv_type = backend::SequenceOptions{}.kv_type;
    engine::BatchEngine engine(be, tok, o);
    const engine::Generator gen(be, tok);
    std::vector<engine::GenerateResult> alone;
    for (const engine::GenerateRequest& r : reqs) {
        auto seq = be.new_sequence({.n_ctx = 1024});
        alone.push_back(gen.generate(*seq, r));
    }
    ASSERT_GT(alone[0].prompt_tokens.size(), 512u);
    auto serve = [&](const std::vector<size_t>& which, const std::string& round) {
        std::vector<engine::GenerateRequest> batch;
        for (const size_t i : which) batch.push_back(reqs[i]);
        std::vector<Outcome> out;
        run_all(engine, batch, out);
        for (size_t k = 0; k < which.size(); ++k) {
            ASSERT_TRUE(out[k].result) << round << ", request " << which[k];
            expect_same(*out[k].result, alone[which[k]], fmt::format("{}, {}, request {}", what, round, which[k]));
        }
    };
    serve({0, 1, 2, 3, 4, 5}, "together");
    EXPECT_GT(engine.kv_stats().preemptions, 0u);
    const uint64_t hits = engine.kv_stats().prefix_hit_tokens;
    serve({0}, "the long prompt again");
    EXPECT_GE(engine.kv_stats().prefix_hit_tokens - hits, 512u) << "the long prompt's pages were not reused";
    serve({0, 1, 2, 3, 4, 5}, "together again");
    EXPECT_EQ(engine.kv_stats().pages_used, 0u);
    std::printf("%s: %llu preemptions, %llu prefix-hit tokens\n", what,
                static_cast<unsigned long long>(engine.kv_stats().preemptions),
                static_cast<unsigned long long>(engine.kv_stats().prefix_hit_tokens));
}

}  // namespace orcd::test
