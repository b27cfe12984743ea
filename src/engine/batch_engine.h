#pragma once
// Continuous batching (docs/BATCHING.md): many generations share one backend and one KV pool, and every step() runs
// one Backend::step over all of them. Requests join and leave at step boundaries. Per step:
//   1. cancelled requests are dropped (their pages free at once);
//   2. every decoding sequence gets room for its next token (BlockManager::append_or_preempt); a preempted one goes
//      back to the head of the queue and is later re-admitted with its prompt + generated tokens (recomputed, mostly
//      from the prefix cache), so its output does not change;
//   3. prompt chunks fill the token budget (max_batch_tokens): first those of partially prefilled sequences, then
//      admissions from the queue head, first come first served, stopping at the first that does not fit. Chunks end
//      at prefill_chunk_ends boundaries, never elsewhere: a chunk runs whole or waits. So that a long prompt always
//      progresses, the first chunk of a step runs even when it overflows the budget;
//   4. one Backend::step; every entry's positions are committed (complete pages join the prefix cache) and each
//      Generation takes its result (text streamed, end conditions applied); finished ones free their pages.
// A request's tokens never depend on its neighbours: each entry is computed as if alone (Backend::step's batch
// invariance), the chunk split depends on positions alone, and each request samples with its own seeded generator.
//
// Not thread-safe: one thread (the server's scheduler worker) owns it. prepare() alone is safe from any thread.
#include <atomic>
#include <cstdint>
#include <deque>
#include <exception>
#include <functional>
#include <memory>
#include <string_view>
#include <vector>

#include "backend/backend.h"
#include "engine/generation.h"
#include "kvcache/block_manager.h"
#include "tokenizer/tokenizer.h"

namespace orcd::engine {

struct BatchEngineOptions {
    uint32_t parallel = 4;            // most sequences running at once (--parallel)
    uint32_t max_batch_tokens = 512;  // tokens per step: decodes first, then prompt chunks (--max-batch-tokens)
    uint32_t n_ctx = 0;               // most positions per sequence (prompt + max_tokens); 0: the model's context
    uint32_t num_pages = 0;           // KV pool pages (--kv-memory / page bytes)
    uint32_t page_size = 16;          // positions per page (--kv-page-size)
    bool prefix_caching = true;       // --no-prefix-cache: false
    backend::KvCacheType kv_type = backend::KvCacheType::F16;
    uint32_t prefill_chunk = backend::PagedSequence::kPrefillChunk;  // where prompts are split (tests shrink it)
};

// What the engine reports about one request, from inside step() on the engine's thread. Each may be empty.
struct RequestSink {
    std::function<void()> on_start;  // admitted for the first time (its prefill begins)
    // Exactly one of the two ends every request: on_end with the result (StopReason::Cancelled when its cancel
    // flag was set), or on_error when its step failed (a backend error fails the requests of that step only).
    std::function<void(GenerateResult)> on_end;
    std::function<void(std::exception_ptr)> on_error;
};

// One step's shape, for the batch-size histogram and tests.
struct StepReport {
    uint32_t sequences = 0;  // entries in the step
    uint32_t tokens = 0;     // tokens in the step
    uint32_t decodes = 0;    // entries of generated tokens
    uint32_t admitted = 0;   // requests admitted this step
    uint32_t preempted = 0;  // sequences preempted this step
};

class BatchEngine {
public:
    // Allocates the KV pool once. Errors: InvalidArgument (no pages, parallel 0, max_batch_tokens < parallel, n_ctx
    // beyond the model's context); the pool's allocation errors.
    BatchEngine(backend::Backend& backend, const tokenizer::Tokenizer& tokenizer, const BatchEngineOptions& options);
    ~BatchEngine();
    BatchEngine(const BatchEngine&) = delete;
    BatchEngine& operator=(const BatchEngine&) = delete;

    // Thread-safe. Tokenizes and checks a request and builds its Generation (`on_text` streams its text from inside
    // step()). Errors, before anything is queued: InvalidArgument (sampling, an empty prompt, a constraint for
    // another vocabulary, a request larger than the whole KV pool: BlockManager::check_request's message naming the
    // limit), ContextOverflow (prompt + max_tokens beyond n_ctx), ChatTemplate.
    std::unique_ptr<Generation> prepare(const GenerateRequest& request,
                                        std::function<void(std::string_view)> on_text = {}) const;
    // Queues a prepared request at the tail. `cancel` (may be null) is read at every step and must outlive the
    // request's end. Returns the request's id (its KV sequence id).
    uint64_t add(std::unique_ptr<Generation> generation, RequestSink sink, const std::atomic<bool>* cancel = nullptr);

    // Runs one step (see the header comment). Returns what ran; sequences == 0 when there was nothing to do.
    StepReport step();

    bool idle() const { return running_.empty() && waiting_.empty(); }
    size_t running() const { return running_.size(); }
    size_t waiting() const { return waiting_.size(); }
    kvcache::BlockStats kv_stats() const { return blocks_.stats(); }
    const kvcache::BlockManager& blocks() const { return blocks_; }
    const backend::KvPool& pool() const { return *pool_; }
    const BatchEngineOptions& options() const { return options_; }

private:
    struct Request {
        uint64_t id = 0;
        std::unique_ptr<Generation> gen;
        RequestSink sink;
        const std::atomic<bool>* cancel = nullptr;
        bool started = false;
        bool cancelled() const { return cancel && cancel->load(std::memory_order_relaxed); }
    };
    using RequestPtr = std::unique_ptr<Request>;

    void drop_cancelled();
    void make_room(StepReport& report);
    void end(RequestPtr r);
    void fail(RequestPtr r, std::exception_ptr error);

    backend::Backend& backend_;
    const tokenizer::Tokenizer& tokenizer_;
    Generator generator_;  // prompt formatting and tokenization (thread-safe)
    BatchEngineOptions options_;
    std::unique_ptr<backend::KvPool> pool_;
    kvcache::BlockManager blocks_;
    std::vector<RequestPtr> running_;  // in admission order: oldest first
    std::deque<RequestPtr> waiting_;   // FCFS; preempted sequences go back to the head
    uint64_t next_id_ = 1;
};

}  // namespace orcd::engine
