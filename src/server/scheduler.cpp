#include "server/scheduler.h"

#include <fmt/format.h>

#include <algorithm>
#include <new>
#include <optional>

#include "common/error.h"

namespace orcd::server {

namespace {

int64_t unix_ms() {
    return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
        .count();
}

JobEvent error_event(JobErrorCode code, std::string message) {
    JobEvent ev;
    ev.kind = JobEvent::Kind::Error;
    ev.error_code = code;
    ev.message = std::move(message);
    return ev;
}

// The error event's code for a library error: what the orchestrator can act on (retry elsewhere, shorten, ...).
JobErrorCode job_error_code(ErrorCode c) {
    switch (c) {
        case ErrorCode::Cancelled: return JobErrorCode::Cancelled;
        case ErrorCode::DeviceAlloc:
        case ErrorCode::InsufficientVram: return JobErrorCode::VramOom;
        case ErrorCode::ContextOverflow: return JobErrorCode::ContextOverflow;
        case ErrorCode::InvalidArgument:
        case ErrorCode::ChatTemplate: return JobErrorCode::InvalidRequest;
        default: return JobErrorCode::Internal;
    }
}

}  // namespace

BatchSnapshot snapshot(const BatchState& st, uint32_t parallel) { return BatchSnapshot{st, parallel}; }

Scheduler::Scheduler(InferenceService& service, Metrics& metrics, size_t max_queue)
    : service_(service),
      metrics_(metrics),
      max_queue_(max_queue),
      parallel_(std::max<uint32_t>(1, service.info().parallel)) {
    metrics_.set_batch(snapshot(service_.batch_state(), static_cast<uint32_t>(parallel_)));
    worker_ = std::thread([this] { worker_loop(); });
}

Scheduler::~Scheduler() {
    {
        std::lock_guard lock(mu_);
        stopping_ = draining_ = true;
        cancel_all(CancelReason::Shutdown, /*only_waiting=*/false);
    }
    cv_.notify_all();
    worker_.join();  // the worker ends every job (cancelled at the next step) before it returns
}

Scheduler::Submission Scheduler::submit(std::string job_id, engine::GenerateRequest request) {
    auto refused_now = [&]() -> std::optional<SubmitStatus> {
        if (draining_) return SubmitStatus::Draining;
        if (jobs_.count(job_id)) return SubmitStatus::DuplicateId;
        // The running jobs occupy the engine, not queue slots.
        if (jobs_.size() >= parallel_ + max_queue_) return SubmitStatus::QueueFull;
        return std::nullopt;
    };
    {
        std::lock_guard lock(mu_);
        if (auto st = refused_now()) return {*st, nullptr};
    }
    auto job = std::make_shared<Job>(job_id, std::move(request));
    // Tokenizing and checking happen here, on the caller's thread, so the worker's steps are not held up and a
    // request that could never run is refused before it is queued.
    std::unique_ptr<PreparedJob> prepared;
    try {
        auto index = std::make_shared<uint64_t>(0);
        prepared = service_.prepare(job->request(), [job, index](std::string_view text) {
            JobEvent ev;
            ev.kind = JobEvent::Kind::Token;
            ev.text = std::string(text);
            ev.index = (*index)++;
            job->push(std::move(ev));
        });
    } catch (const Error& e) {
        if (e.code() != ErrorCode::ContextOverflow) return {SubmitStatus::Refused, nullptr, e.code(), e.what()};
        // The worker API's contract: a prompt that does not fit the context with max_tokens is a job that starts
        // and ends with the error event CONTEXT_OVERFLOW (the orchestrator reads it from the stream).
        JobEvent started;
        started.kind = JobEvent::Kind::Started;
        started.started_at_ms = unix_ms();
        job->push(std::move(started));
        metrics_.count_request(Outcome::Error);
        job->push(error_event(JobErrorCode::ContextOverflow, e.what()));
        return {SubmitStatus::Accepted, job};
    }
    std::lock_guard lock(mu_);
    if (auto st = refused_now()) return {*st, nullptr};
    jobs_.emplace(job_id, Tracked{job});
    inbox_.push_back({job, std::move(prepared)});
    publish_depth();
    cv_.notify_all();
    return {SubmitStatus::Accepted, job};
}

CancelStatus Scheduler::cancel(const std::string& job_id, CancelReason reason) {
    std::lock_guard lock(mu_);
    auto it = jobs_.find(job_id);
    if (it == jobs_.end()) return CancelStatus::NotFound;
    it->second.job->cancel(reason);
    cv_.notify_all();
    return it->second.started ? CancelStatus::Running : CancelStatus::Queued;
}

void Scheduler::cancel_all(CancelReason reason, bool only_waiting) {
    for (auto& [id, t] : jobs_) {
        if (!only_waiting || !t.started) t.job->cancel(reason);
    }
}

void Scheduler::begin_drain() {
    {
        std::lock_guard lock(mu_);
        draining_ = true;
        cancel_all(CancelReason::Shutdown, /*only_waiting=*/true);
    }
    cv_.notify_all();
}

bool Scheduler::drain(std::chrono::milliseconds timeout) {
    std::unique_lock lock(mu_);
    if (idle_cv_.wait_for(lock, timeout, [&] { return jobs_.empty(); })) return true;
    cancel_all(CancelReason::Shutdown, /*only_waiting=*/false);
    cv_.notify_all();
    idle_cv_.wait(lock, [&] { return jobs_.empty(); });
    return false;
}

bool Scheduler::draining() const {
    std::lock_guard lock(mu_);
    return draining_;
}

size_t Scheduler::queued() const {
    std::lock_guard lock(mu_);
    return jobs_.size() - started_;
}

bool Scheduler::busy() const {
    std::lock_guard lock(mu_);
    return started_ > 0;
}

void Scheduler::publish_depth() { metrics_.set_queue_depth(jobs_.size() - started_); }

engine::RequestSink Scheduler::sink_for(const std::shared_ptr<Job>& job) {
    engine::RequestSink sink;
    sink.on_start = [this, job] {
        {
            std::lock_guard lock(mu_);
            Tracked& t = jobs_.at(job->id());
            t.started = true;
            t.started_at = Clock::now();
            ++started_;
            publish_depth();
        }
        JobEvent ev;
        ev.kind = JobEvent::Kind::Started;
        ev.started_at_ms = unix_ms();
        job->push(std::move(ev));
    };
    sink.on_end = [this, job](const engine::GenerateResult& r) {
        metrics_.add_tokens(r.tokens.size());
        if (r.stop_reason == engine::StopReason::Cancelled) {
            const std::string reason(cancel_reason_text(job->cancel_reason()));
            bool started = false;
            {
                std::lock_guard lock(mu_);
                started = jobs_.at(job->id()).started;
            }
            job_ended(job,
                      error_event(JobErrorCode::Cancelled,
                                  started ? fmt::format("{} after {} tokens", reason, r.tokens.size()) : reason),
                      Outcome::Cancelled, &r);
            return;
        }
        JobEvent terminal;
        terminal.kind = JobEvent::Kind::End;
        terminal.prompt_tokens = r.prompt_tokens.size();
        terminal.tokens_out = r.tokens.size();
        terminal.decode_time_ms = (r.timings.prefill_s + r.timings.decode_s) * 1000.0;
        terminal.stop_reason = r.stop_reason;
        terminal.seed = r.seed;
        job_ended(job, std::move(terminal), Outcome::Success, &r);
    };
    sink.on_error = [this, job](const std::exception_ptr& error) {
        JobEvent terminal;
        Outcome outcome = Outcome::Error;
        try {
            std::rethrow_exception(error);
        } catch (const Error& e) {
            terminal = error_event(job_error_code(e.code()), e.what());
            if (e.code() == ErrorCode::Cancelled) outcome = Outcome::Cancelled;
        } catch (const std::bad_alloc&) {
            terminal = error_event(JobErrorCode::VramOom, "out of memory while running the job");
        } catch (const std::exception& e) {
            terminal = error_event(JobErrorCode::Internal, e.what());
        }
        job_ended(job, std::move(terminal), outcome, nullptr);
    };
    return sink;
}

void Scheduler::job_ended(const std::shared_ptr<Job>& job, JobEvent terminal, Outcome outcome,
                          const engine::GenerateResult* r) {
    const auto now = Clock::now();
    Clock::time_point start = job->submitted();
    bool started = false;
    {
        std::lock_guard lock(mu_);
        auto it = jobs_.find(job->id());
        if (it != jobs_.end()) {
            started = it->second.started;
            if (started) {
                start = it->second.started_at;
                --started_;
            }
            jobs_.erase(it);
        }
        publish_depth();
    }
    if (r && !r->tokens.empty()) {
        // From acceptance (queueing included) to the first sampled token.
        const double queued_s = std::chrono::duration<double>(start - job->submitted()).count();
        metrics_.observe_ttft_seconds(queued_s + r->timings.ttft_s);
        if (r->tokens.size() > 1 && outcome == Outcome::Success) {
            metrics_.observe_tpot_seconds(r->timings.decode_s / static_cast<double>(r->tokens.size() - 1));
        }
    }
    if (started) metrics_.observe_inference_seconds(std::chrono::duration<double>(now - start).count());
    metrics_.observe_e2e_seconds(std::chrono::duration<double>(now - job->submitted()).count());
    metrics_.count_request(outcome);
    job->push(std::move(terminal));
    idle_cv_.notify_all();
}

void Scheduler::worker_loop() {
    bool engine_busy = false;  // the engine has running or waiting jobs
    for (;;) {
        std::deque<Inbox> incoming;
        {
            std::unique_lock lock(mu_);
            cv_.wait(lock, [&] { return stopping_ || !inbox_.empty() || engine_busy; });
            if (stopping_ && inbox_.empty() && !engine_busy) return;
            incoming.swap(inbox_);
        }
        for (Inbox& in : incoming) {
            service_.add(std::move(in.prepared), sink_for(in.job), in.job->cancel_flag());
        }
        engine::StepReport report;
        try {
            report = service_.step();
        } catch (const std::exception& e) {
            // The engine fails the requests of a failed backend step itself; this is a broken invariant.
            fmt::print(stderr, "scheduler: the batch step failed: {}\n", e.what());
        }
        if (report.sequences > 0) metrics_.observe_step(report.sequences, report.tokens);
        const BatchState st = service_.batch_state();
        engine_busy = st.running + st.waiting > 0;
        metrics_.set_batch(snapshot(st, static_cast<uint32_t>(parallel_)));
        if (engine_busy && report.sequences == 0) {
            // Nothing could run (should not happen: the oldest request always fits an empty pool): do not spin.
            std::unique_lock lock(mu_);
            cv_.wait_for(lock, std::chrono::milliseconds(1));
        }
    }
}

}  // namespace orcd::server
