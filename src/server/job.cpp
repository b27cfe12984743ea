#include "server/job.h"

namespace orcd::server {

std::string_view job_error_code_name(JobErrorCode c) {
    switch (c) {
        case JobErrorCode::Cancelled: return "CANCELLED";
        case JobErrorCode::VramOom: return "VRAM_OOM";
        case JobErrorCode::ContextOverflow: return "CONTEXT_OVERFLOW";
        case JobErrorCode::InvalidRequest: return "INVALID_REQUEST";
        case JobErrorCode::Internal: return "INTERNAL";
    }
    return "INTERNAL";
}

std::string_view cancel_reason_text(CancelReason r) {
    switch (r) {
        case CancelReason::None: return "not cancelled";
        case CancelReason::Request: return "cancelled by request";
        case CancelReason::ClientGone: return "cancelled: the client disconnected";
        case CancelReason::Shutdown: return "cancelled: the worker is shutting down";
    }
    return "cancelled";
}

void Job::push(JobEvent ev) {
    std::function<void()> listener;
    {
        std::lock_guard lock(mu_);
        if (terminal_pushed_) return;
        terminal_pushed_ = ev.terminal();
        events_.push_back(std::move(ev));
        listener = listener_;
    }
    cv_.notify_all();
    if (listener) listener();
}

void Job::set_listener(const std::function<void()>& listener) {
    bool pending = false;
    {
        std::lock_guard lock(mu_);
        listener_ = listener;
        pending = !events_.empty();
    }
    if (pending && listener) listener();
}

std::optional<JobEvent> Job::try_pop() {
    std::lock_guard lock(mu_);
    if (events_.empty()) return std::nullopt;
    JobEvent ev = std::move(events_.front());
    events_.pop_front();
    return ev;
}

std::optional<JobEvent> Job::pop(std::chrono::milliseconds timeout) {
    std::unique_lock lock(mu_);
    if (!cv_.wait_for(lock, timeout, [&] { return !events_.empty(); })) return std::nullopt;
    JobEvent ev = std::move(events_.front());
    events_.pop_front();
    return ev;
}

bool Job::finished() const {
    std::lock_guard lock(mu_);
    return terminal_pushed_;
}

}  // namespace orcd::server
