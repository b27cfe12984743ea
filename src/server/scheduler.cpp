#include "server/scheduler.h"

#include <fmt/format.h>

#include <new>

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
        case ErrorCode::Cancelled:
            return JobErrorCode::Cancelled;
        case ErrorCode::DeviceAlloc:
        case ErrorCode::InsufficientVram:
            return JobErrorCode::VramOom;
        case ErrorCode::ContextOverflow:
            return JobErrorCode::ContextOverflow;
        case ErrorCode::InvalidArgument:
        case ErrorCode::ChatTemplate:
            return JobErrorCode::InvalidRequest;
        default:
            return JobErrorCode::Internal;
    }
}

}  // namespace

Scheduler::Scheduler(InferenceService& service, Metrics& metrics, size_t max_queue)
    : service_(service), metrics_(metrics), max_queue_(max_queue) {
    worker_ = std::thread([this] { worker_loop(); });
}

Scheduler::~Scheduler() {
    std::deque<std::shared_ptr<Job>> dropped;
    {
        std::lock_guard lock(mu_);
        stopping_ = draining_ = true;
        dropped.swap(queue_);
        if (running_) running_->cancel(CancelReason::Shutdown);
        publish_depth();
    }
    cv_.notify_all();
    for (auto& j : dropped) {
        j->cancel(CancelReason::Shutdown);
        j->push(error_event(JobErrorCode::Cancelled, std::string(cancel_reason_text(CancelReason::Shutdown))));
        metrics_.count_request(Outcome::Cancelled);
    }
    worker_.join();
}

Scheduler::Submission Scheduler::submit(std::string job_id, engine::GenerateRequest request) {
    std::lock_guard lock(mu_);
    if (draining_) return {SubmitStatus::Draining, nullptr};
    if (running_ && running_->id() == job_id) return {SubmitStatus::DuplicateId, nullptr};
    for (const auto& j : queue_) {
        if (j->id() == job_id) return {SubmitStatus::DuplicateId, nullptr};
    }
    // The running job occupies the engine, not a queue slot.
    const bool engine_free = !running_ && queue_.empty();
    if (!engine_free && queue_.size() >= max_queue_) return {SubmitStatus::QueueFull, nullptr};
    auto job = std::make_shared<Job>(std::move(job_id), std::move(request));
    queue_.push_back(job);
    publish_depth();
    cv_.notify_all();
    return {SubmitStatus::Accepted, job};
}

CancelStatus Scheduler::cancel(const std::string& job_id, CancelReason reason) {
    std::shared_ptr<Job> removed;
    {
        std::lock_guard lock(mu_);
        if (running_ && running_->id() == job_id) {
            running_->cancel(reason);
            return CancelStatus::Running;
        }
        for (auto it = queue_.begin(); it != queue_.end(); ++it) {
            if ((*it)->id() == job_id) {
                removed = *it;
                queue_.erase(it);
                publish_depth();
                break;
            }
        }
    }
    if (!removed) return CancelStatus::NotFound;
    removed->cancel(reason);
    removed->push(error_event(JobErrorCode::Cancelled, std::string(cancel_reason_text(removed->cancel_reason()))));
    metrics_.count_request(Outcome::Cancelled);
    return CancelStatus::Queued;
}

void Scheduler::begin_drain() {
    std::deque<std::shared_ptr<Job>> dropped;
    {
        std::lock_guard lock(mu_);
        draining_ = true;
        dropped.swap(queue_);
        publish_depth();
    }
    for (auto& j : dropped) {
        j->cancel(CancelReason::Shutdown);
        j->push(error_event(JobErrorCode::Cancelled, std::string(cancel_reason_text(CancelReason::Shutdown))));
        metrics_.count_request(Outcome::Cancelled);
    }
}

bool Scheduler::drain(std::chrono::milliseconds timeout) {
    std::unique_lock lock(mu_);
    if (idle_cv_.wait_for(lock, timeout, [&] { return !running_ && queue_.empty(); })) return true;
    if (running_) running_->cancel(CancelReason::Shutdown);
    idle_cv_.wait(lock, [&] { return !running_; });
    return false;
}

bool Scheduler::draining() const {
    std::lock_guard lock(mu_);
    return draining_;
}

size_t Scheduler::queued() const {
    std::lock_guard lock(mu_);
    return queue_.size();
}

bool Scheduler::busy() const {
    std::lock_guard lock(mu_);
    return running_ != nullptr;
}

void Scheduler::publish_depth() {
    metrics_.set_queue_depth(queue_.size());
}

void Scheduler::worker_loop() {
    for (;;) {
        std::shared_ptr<Job> job;
        {
            std::unique_lock lock(mu_);
            cv_.wait(lock, [&] { return stopping_ || !queue_.empty(); });
            if (stopping_ && queue_.empty()) return;
            job = queue_.front();
            queue_.pop_front();
            running_ = job;
            publish_depth();
        }
        run(job);
        {
            std::lock_guard lock(mu_);
            running_.reset();
        }
        idle_cv_.notify_all();
    }
}

void Scheduler::run(const std::shared_ptr<Job>& job) {
    const auto start = Clock::now();
    {
        JobEvent ev;
        ev.kind = JobEvent::Kind::Started;
        ev.started_at_ms = unix_ms();
        job->push(std::move(ev));
    }
    uint64_t index = 0;
    auto on_text = [&](std::string_view text) {
        JobEvent ev;
        ev.kind = JobEvent::Kind::Token;
        ev.text = std::string(text);
        ev.index = index++;
        job->push(std::move(ev));
    };

    JobEvent terminal;
    Outcome outcome = Outcome::Error;
    try {
        engine::GenerateResult r = service_.generate(job->request(), on_text, job->cancel_flag());
        metrics_.add_tokens(r.tokens.size());
        if (!r.tokens.empty()) {
            // From acceptance (queueing included) to the first sampled token.
            const double queued_ms = std::chrono::duration<double, std::milli>(start - job->submitted()).count();
            metrics_.observe_ttft_ms(queued_ms + r.timings.ttft_s * 1000.0);
        }
        if (r.stop_reason == engine::StopReason::Cancelled) {
            terminal = error_event(
                JobErrorCode::Cancelled,
                fmt::format("{} after {} tokens", cancel_reason_text(job->cancel_reason()), r.tokens.size()));
            outcome = Outcome::Cancelled;
        } else {
            terminal.kind = JobEvent::Kind::End;
            terminal.prompt_tokens = r.prompt_tokens.size();
            terminal.tokens_out = r.tokens.size();
            terminal.decode_time_ms = (r.timings.prefill_s + r.timings.decode_s) * 1000.0;
            terminal.stop_reason = r.stop_reason;
            terminal.seed = r.seed;
            outcome = Outcome::Success;
        }
    } catch (const Error& e) {
        terminal = error_event(job_error_code(e.code()), e.what());
        outcome = e.code() == ErrorCode::Cancelled ? Outcome::Cancelled : Outcome::Error;
    } catch (const std::bad_alloc&) {
        terminal = error_event(JobErrorCode::VramOom, "out of memory while running the job");
    } catch (const std::exception& e) {
        terminal = error_event(JobErrorCode::Internal, e.what());
    }
    metrics_.observe_inference_ms(std::chrono::duration<double, std::milli>(Clock::now() - start).count());
    metrics_.count_request(outcome);
    job->push(std::move(terminal));
}

}  // namespace orcd::server
