#include "engine/batch_engine.h"

#include <fmt/format.h>

#include <algorithm>
#include <utility>

#include "common/error.h"

namespace orcd::engine {

using backend::Phase;

namespace {

BatchEngineOptions checked(const BatchEngineOptions& o, const backend::Backend& backend) {
    BatchEngineOptions r = o;
    const uint32_t model_ctx = backend.config().context_length;
    if (r.n_ctx == 0) r.n_ctx = model_ctx;
    if (r.n_ctx > model_ctx) {
        throw Error(ErrorCode::InvalidArgument,
                    fmt::format("context of {} tokens exceeds the model's context length {}", r.n_ctx, model_ctx));
    }
    if (r.parallel == 0) throw Error(ErrorCode::InvalidArgument, "--parallel must be at least 1");
    if (r.max_batch_tokens < r.parallel) {
        // Every running sequence decodes one token a step; a budget below that could never run them all.
        throw Error(ErrorCode::InvalidArgument,
                    fmt::format("--max-batch-tokens {} is below --parallel {}: every running sequence needs one "
                                "token a step",
                                r.max_batch_tokens, r.parallel));
    }
    if (r.num_pages == 0) throw Error(ErrorCode::InvalidArgument, "the KV pool has no pages");
    if (r.page_size == 0) throw Error(ErrorCode::InvalidArgument, "the KV page size must be at least 1");
    if (r.prefill_chunk == 0) throw Error(ErrorCode::InvalidArgument, "the prefill chunk must be at least 1");
    return r;
}

}  // namespace

BatchEngine::BatchEngine(backend::Backend& backend, const tokenizer::Tokenizer& tokenizer,
                         const BatchEngineOptions& options)
    : backend_(backend),
      tokenizer_(tokenizer),
      generator_(backend, tokenizer),
      options_(checked(options, backend)),
      pool_(backend.new_kv_pool(
          {.num_pages = options_.num_pages, .page_size = options_.page_size, .kv_type = options_.kv_type})),
      blocks_({.num_pages = options_.num_pages,
               .page_size = options_.page_size,
               .prefix_caching = options_.prefix_caching}) {}

BatchEngine::~BatchEngine() = default;

std::unique_ptr<Generation> BatchEngine::prepare(const GenerateRequest& request,
                                                 std::function<void(std::string_view)> on_text) const {
    validate(request.sampling);
    std::vector<TokenId> prompt = generator_.prompt_tokens(request);
    if (prompt.empty()) {
        throw Error(ErrorCode::InvalidArgument, "the prompt is empty (no tokens after tokenization)");
    }
    if (prompt.size() + request.max_tokens > options_.n_ctx) {
        throw Error(ErrorCode::ContextOverflow,
                    fmt::format("prompt of {} tokens + {} tokens to generate exceed the context of {} tokens",
                                prompt.size(), request.max_tokens, options_.n_ctx));
    }
    // A request that could never fit the whole pool is refused now rather than waiting forever.
    blocks_.check_request(prompt.size(), request.max_tokens);
    return std::make_unique<Generation>(tokenizer_, request, std::move(prompt), std::move(on_text));
}

uint64_t BatchEngine::add(std::unique_ptr<Generation> generation, RequestSink sink, const std::atomic<bool>* cancel) {
    if (!generation) throw Error(ErrorCode::InvalidArgument, "BatchEngine::add: no generation");
    auto r = std::make_unique<Request>();
    r->id = next_id_++;
    r->gen = std::move(generation);
    r->sink = std::move(sink);
    r->cancel = cancel;
    const uint64_t id = r->id;
    if (r->gen->done()) {  // max_tokens 0: nothing to compute
        if (r->sink.on_start) r->sink.on_start();
        end(std::move(r));
    } else {
        waiting_.push_back(std::move(r));
    }
    return id;
}

void BatchEngine::end(RequestPtr r) {
    if (blocks_.contains(r->id)) blocks_.finish(r->id);
    GenerateResult result = r->gen->finish();
    if (r->sink.on_end) r->sink.on_end(std::move(result));
}

void BatchEngine::fail(RequestPtr r, std::exception_ptr error) {
    if (blocks_.contains(r->id)) blocks_.finish(r->id);
    if (r->sink.on_error) r->sink.on_error(std::move(error));
}

void BatchEngine::drop_cancelled() {
    std::vector<RequestPtr> gone;
    auto take_cancelled = [&](auto& list) {
        for (auto& r : list) {
            if (r->cancelled()) gone.push_back(std::move(r));
        }
        list.erase(std::remove(list.begin(), list.end(), nullptr), list.end());
    };
    take_cancelled(running_);
    take_cancelled(waiting_);
    for (auto& r : gone) {
        r->gen->cancel();
        end(std::move(r));
    }
}

void BatchEngine::make_room(StepReport& report) {
    // Oldest first, so that when the pool runs dry the newest sequences are the ones preempted.
    std::vector<RequestPtr> preempted;
    for (auto& r : running_) {
        if (!r) continue;  // preempted earlier in this loop
        const std::span<const TokenId> tokens = r->gen->tokens();
        const uint32_t have = blocks_.length(r->id);
        if (tokens.size() == have) continue;  // still prefilling: its positions are allocated
        for (const kvcache::Preempted& p : blocks_.append_or_preempt(r->id, tokens.subspan(have))) {
            auto it = std::find_if(running_.begin(), running_.end(),
                                   [&](const RequestPtr& q) { return q && q->id == p.seq; });
            if (it == running_.end()) {
                throw Error(ErrorCode::Internal, fmt::format("preempted sequence {} is not running", p.seq));
            }
            preempted.push_back(std::move(*it));
            ++report.preempted;
        }
    }
    running_.erase(std::remove(running_.begin(), running_.end(), nullptr), running_.end());
    // Newest first in `preempted`: pushing each to the head leaves the oldest first in the queue.
    for (auto& r : preempted) waiting_.push_front(std::move(r));
}

StepReport BatchEngine::step() {
    StepReport report;
    drop_cancelled();
    make_room(report);

    struct Planned {
        Request* r;
        Generation::Feed feed;
    };
    std::vector<Planned> plan;
    uint32_t budget = options_.max_batch_tokens;
    bool chunk_taken = false;  // the first prompt chunk of a step runs even past the budget: progress
    auto fits = [&](const Generation::Feed& f) { return !chunk_taken || f.size() <= budget; };
    auto take = [&](Request& r, const Generation::Feed& f) {
        plan.push_back({&r, f});
        budget -= std::min(budget, f.size());
    };
    // Decodes first: one token each, always (max_batch_tokens >= parallel).
    for (auto& r : running_) {
        const Generation::Feed f = r->gen->next(options_.prefill_chunk);
        if (f.phase == Phase::Generated && f.size() == 1) {
            take(*r, f);
            ++report.decodes;
        }
    }
    // Then the chunks of partially computed sequences (prompts, or generated tokens replayed after a preemption).
    for (auto& r : running_) {
        const Generation::Feed f = r->gen->next(options_.prefill_chunk);
        if (f.phase == Phase::Generated && f.size() == 1) continue;
        if (!fits(f)) continue;
        take(*r, f);
        chunk_taken = true;
    }
    // Then admissions from the head of the queue, first come first served.
    while (!waiting_.empty() && running_.size() < options_.parallel && (budget > 0 || !chunk_taken)) {
        Request& r = *waiting_.front();
        const auto admitted = blocks_.admit(r.id, r.gen->tokens(), r.gen->remaining_new());
        if (!admitted) break;  // no room now: it waits, and so does everything behind it
        r.gen->restart_at(admitted->cached_tokens);
        running_.push_back(std::move(waiting_.front()));
        waiting_.pop_front();
        ++report.admitted;
        if (!r.started) {
            r.started = true;
            if (r.sink.on_start) r.sink.on_start();
        }
        const Generation::Feed f = r.gen->next(options_.prefill_chunk);
        if (!fits(f)) break;  // admitted; its chunk runs next step
        take(r, f);
        chunk_taken = true;
    }
    if (plan.empty()) return report;

    std::vector<backend::BatchEntry> entries;
    entries.reserve(plan.size());
    for (const Planned& p : plan) {
        backend::BatchEntry e = p.r->gen->entry(p.feed);
        e.pages = blocks_.page_table(p.r->id);
        entries.push_back(e);
        report.tokens += p.feed.size();
    }
    report.sequences = static_cast<uint32_t>(entries.size());
    std::vector<backend::BatchResult> results(entries.size());
    std::exception_ptr step_error;
    try {
        backend_.step(*pool_, entries, results);
    } catch (...) {
        step_error = std::current_exception();
    }

    // Results: commit the written positions, let each generation take its pick, end the finished ones.
    std::vector<uint64_t> finished;
    std::vector<std::pair<uint64_t, std::exception_ptr>> failed;
    for (size_t i = 0; i < plan.size(); ++i) {
        Request& r = *plan[i].r;
        if (step_error) {
            failed.emplace_back(r.id, step_error);
            continue;
        }
        blocks_.commit(r.id, plan[i].feed.end);
        if (r.cancelled()) {
            r.gen->cancel();  // the step's pick is dropped, as Generator::generate does
        } else {
            try {
                r.gen->accept(plan[i].feed, results[i]);
            } catch (...) {
                failed.emplace_back(r.id, std::current_exception());
                continue;
            }
        }
        if (r.gen->done()) finished.push_back(r.id);
    }
    auto remove_running = [&](uint64_t id) {
        auto it = std::find_if(running_.begin(), running_.end(), [&](const RequestPtr& q) { return q->id == id; });
        RequestPtr r = std::move(*it);
        running_.erase(it);
        return r;
    };
    for (const uint64_t id : finished) end(remove_running(id));
    for (auto& [id, error] : failed) fail(remove_running(id), error);
    return report;
}

}  // namespace orcd::engine
