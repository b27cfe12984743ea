#include "backend/cpu/thread_pool.h"

#include <algorithm>
#include <thread>
#include <utility>

namespace orcd::backend::cpu {

ThreadPool::ThreadPool(unsigned n_threads)
    : crew_(n_threads != 0 ? n_threads : std::max(1u, std::thread::hardware_concurrency())) {}

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

void ThreadPool::parallel_for(int64_t n, int64_t grain, const std::function<void(int64_t, int64_t)>& fn) {
    if (n <= 0) return;
    grain = std::max<int64_t>(1, grain);
    // Small jobs, or a pool of one, run inline: waking workers costs microseconds.
    if (size() == 1 || n <= grain) {
        fn(0, n);
        return;
    }
    // About four chunks per thread: enough to balance uneven work, few enough that the counter is not contended.
    const int64_t target = static_cast<int64_t>(size()) * 4;
    const int64_t chunk = std::max(grain, (n + target - 1) / target);
    // Set before the crew's run, which publishes them to the workers (and theirs back to this thread when it returns).
    fn_ = &fn;
    n_ = n;
    chunk_ = chunk;
    next_.store(0, std::memory_order_relaxed);
    error_ = nullptr;
    crew_.run([this] { run_chunks(); });
    fn_ = nullptr;
    if (error_) std::rethrow_exception(std::exchange(error_, nullptr));
}

}  // namespace orcd::backend::cpu
