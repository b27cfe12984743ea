#include "common/worker_crew.h"

#include <algorithm>

namespace orcd {

WorkerCrew::WorkerCrew(unsigned threads) {
    threads = std::max(1u, threads);
    workers_.reserve(threads - 1);
    for (unsigned i = 0; i + 1 < threads; ++i) workers_.emplace_back([this] { worker_loop(); });
}

WorkerCrew::~WorkerCrew() {
    {
        std::lock_guard lock(mu_);
        stop_ = true;
    }
    cv_start_.notify_all();
    for (auto& t : workers_) t.join();
}

void WorkerCrew::worker_loop() {
    uint64_t seen = 0;
    std::unique_lock lock(mu_);
    for (;;) {
        cv_start_.wait(lock, [&] { return stop_ || generation_ != seen; });
        if (stop_) return;
        seen = generation_;
        const std::function<void()>& job = *job_;
        lock.unlock();
        job();
        lock.lock();
        if (--active_ == 0) cv_done_.notify_one();
    }
}

void WorkerCrew::run(const std::function<void()>& job) {
    if (workers_.empty()) {
        job();
        return;
    }
    {
        std::lock_guard lock(mu_);
        job_ = &job;
        active_ = static_cast<unsigned>(workers_.size());
        ++generation_;
    }
    cv_start_.notify_all();
    job();
    std::unique_lock lock(mu_);
    cv_done_.wait(lock, [&] { return active_ == 0; });
    job_ = nullptr;
}

}  // namespace orcd
