#include "backend/cpu/thread_pool.h"

#include <algorithm>
#include <utility>

namespace orcd::backend::cpu {

ThreadPool::ThreadPool(unsigned n_threads) {
    if (n_threads == 0) n_threads = std::max(1u, std::thread::hardware_concurrency());
    workers_.reserve(n_threads - 1);
    for (unsigned i = 0; i + 1 < n_threads; ++i) workers_.emplace_back([this] { worker_loop(); });
}

ThreadPool::~ThreadPool() {
    {
        std::lock_guard lock(mu_);
        stop_ = true;
    }
    cv_start_.notify_all();
    for (auto& t : workers_) t.join();
}

void ThreadPool::run_chunks() {
    for (;;) {
        const int64_t begin = next_.fetch_add(chunk_, std::memory_order_relaxed);
        if (begin >= n_) return;
        const int64_t end = std::min(n_, begin + chunk_);
        try {
            (*fn_)(begin, end);
        } catch (...) {
            std::lock_guard lock(error_mu_);
            if (!error_) error_ = std::current_exception();
            next_.store(n_, std::memory_order_relaxed);  // abandon the remaining chunks
            return;
        }
    }
}

void ThreadPool::worker_loop() {
    uint64_t seen = 0;
    for (;;) {
        {
            std::unique_lock lock(mu_);
            cv_start_.wait(lock, [&] { return stop_ || generation_ != seen; });
            if (stop_) return;
            seen = generation_;
        }
        run_chunks();
        {
            std::lock_guard lock(mu_);
            if (--active_ == 0) cv_done_.notify_one();
        }
    }
}

void ThreadPool::parallel_for(int64_t n, int64_t grain, const std::function<void(int64_t, int64_t)>& fn) {
    if (n <= 0) return;
    grain = std::max<int64_t>(1, grain);
    // Small jobs, or a pool of one, run inline: waking workers costs microseconds.
    if (workers_.empty() || n <= grain) {
        fn(0, n);
        return;
    }
    // About four chunks per thread: enough to balance uneven work, few enough that the counter is not contended.
    const int64_t target = static_cast<int64_t>(size()) * 4;
    const int64_t chunk = std::max(grain, (n + target - 1) / target);
    {
        std::lock_guard lock(mu_);
        fn_ = &fn;
        n_ = n;
        chunk_ = chunk;
        next_.store(0, std::memory_order_relaxed);
        error_ = nullptr;
        active_ = static_cast<unsigned>(workers_.size());
        ++generation_;
    }
    cv_start_.notify_all();
    run_chunks();
    std::unique_lock lock(mu_);
    cv_done_.wait(lock, [&] { return active_ == 0; });
    fn_ = nullptr;
    if (error_) std::rethrow_exception(std::exchange(error_, nullptr));
}

}  // namespace orcd::backend::cpu
