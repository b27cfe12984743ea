#pragma once
// One inference job as the server sees it: the request, its cancellation flag, and the channel of events that the
// worker thread produces and the HTTP handler thread consumes (started, token*, then exactly one end or error).
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <mutex>
#include <optional>
#include <string>

#include "engine/generator.h"

namespace orcd::server {

using Clock = std::chrono::steady_clock;

// Error codes of the `error` event (the worker API's contract with the orchestrator).
enum class JobErrorCode { Cancelled, VramOom, ContextOverflow, InvalidRequest, Internal };
std::string_view job_error_code_name(JobErrorCode c);  // "CANCELLED", "VRAM_OOM", "CONTEXT_OVERFLOW", ...

// Why a job was cancelled; reported in the error event's message and the log.
enum class CancelReason : int { None = 0, Request, ClientGone, Shutdown };
std::string_view cancel_reason_text(CancelReason r);

struct JobEvent {
    enum class Kind { Started, Token, End, Error };
    Kind kind = Kind::Token;
    // Started
    int64_t started_at_ms = 0;  // Unix time, milliseconds
    // Token
    std::string text;
    uint64_t index = 0;  // 0-based position of this token event in the stream
    // End
    uint64_t prompt_tokens = 0;
    uint64_t tokens_out = 0;
    double decode_time_ms = 0;
    engine::StopReason stop_reason = engine::StopReason::MaxTokens;
    uint64_t seed = 0;
    // Error
    JobErrorCode error_code = JobErrorCode::Internal;
    std::string message;

    bool terminal() const { return kind == Kind::End || kind == Kind::Error; }
};

class Job {
public:
    Job(std::string id, engine::GenerateRequest request)
        : id_(std::move(id)), request_(std::move(request)), submitted_(Clock::now()) {}

    const std::string& id() const { return id_; }
    const engine::GenerateRequest& request() const { return request_; }
    Clock::time_point submitted() const { return submitted_; }

    // The first reason wins; later calls keep it (cancel is idempotent).
    void cancel(CancelReason reason) {
        int expected = 0;
        reason_.compare_exchange_strong(expected, static_cast<int>(reason));
        flag_.store(true, std::memory_order_relaxed);
    }
    bool cancelled() const { return flag_.load(std::memory_order_relaxed); }
    CancelReason cancel_reason() const { return static_cast<CancelReason>(reason_.load()); }
    const std::atomic<bool>* cancel_flag() const { return &flag_; }

    // Producer side. Events after the terminal one are dropped, so a job can never end twice.
    void push(JobEvent ev);
    // Consumer side: waits up to `timeout` for the next event.
    std::optional<JobEvent> pop(std::chrono::milliseconds timeout);
    bool finished() const;  // the terminal event has been pushed
    // Consumer side without a thread: `listener` runs on the producer's thread after every push (and once now if
    // events are already waiting); the consumer then takes them with try_pop(). It must not block.
    void set_listener(const std::function<void()>& listener);
    std::optional<JobEvent> try_pop();

private:
    const std::string id_;
    const engine::GenerateRequest request_;
    const Clock::time_point submitted_;
    std::atomic<bool> flag_{false};
    std::atomic<int> reason_{0};
    mutable std::mutex mu_;
    std::condition_variable cv_;
    std::deque<JobEvent> events_;
    bool terminal_pushed_ = false;
    std::function<void()> listener_;
};

}  // namespace orcd::server
