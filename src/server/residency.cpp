#include "server/residency.h"

namespace orcd::server {

ResidencyMonitor::ResidencyMonitor(Probe probe, std::chrono::milliseconds interval)
    : probe_(std::move(probe)), interval_(interval) {
    check();
    thread_ = std::thread([this] {
        std::unique_lock lock(mu_);
        while (!cv_.wait_for(lock, interval_, [&] { return stop_; })) {
            lock.unlock();
            check();
            lock.lock();
        }
    });
}

ResidencyMonitor::~ResidencyMonitor() {
    {
        std::lock_guard lock(mu_);
        stop_ = true;
    }
    cv_.notify_all();
    thread_.join();
}

void ResidencyMonitor::check() {
    std::optional<std::string> p;
    try {
        p = probe_();
    } catch (const std::exception& e) {
        p = std::string("the residency check failed: ") + e.what();
    }
    std::lock_guard lock(mu_);
    problem_ = std::move(p);
    ++checks_;
}

bool ResidencyMonitor::healthy() const {
    std::lock_guard lock(mu_);
    return !problem_;
}

std::string ResidencyMonitor::problem() const {
    std::lock_guard lock(mu_);
    return problem_.value_or("");
}

uint64_t ResidencyMonitor::checks() const {
    std::lock_guard lock(mu_);
    return checks_;
}

}  // namespace orcd::server
