#pragma once
// A small persistent thread pool for the CPU backend's data-parallel loops (matmul rows, attention heads). Workers are
// started once and sleep on a condition variable between jobs, because a decode step issues a few hundred short
// parallel loops and thread creation per loop would cost more than the work. The calling thread takes part in every
// job, so a pool of n threads starts n - 1 workers (common/worker_crew.h runs them; this splits a job into chunks).
#include <atomic>
#include <cstdint>
#include <exception>
#include <functional>
#include <mutex>

#include "common/worker_crew.h"

namespace orcd::backend::cpu {

class ThreadPool {
public:
    // n_threads == 0 picks std::thread::hardware_concurrency().
    explicit ThreadPool(unsigned n_threads = 0);
    ThreadPool(const ThreadPool&) = delete;
    ThreadPool& operator=(const ThreadPool&) = delete;

    unsigned size() const { return crew_.threads(); }

    // Calls fn(begin, end) over disjoint ranges covering [0, n), in chunks of at least `grain` items, on all threads;
    // returns when every chunk has run. Chunks are claimed dynamically (an atomic counter), so uneven rows balance.
    // Not re-entrant: fn must not call parallel_for on the same pool. An exception thrown by fn is rethrown here.
    void parallel_for(int64_t n, int64_t grain, const std::function<void(int64_t, int64_t)>& fn);

private:
    void run_chunks();

    // The current job (valid while a parallel_for is in flight).
    const std::function<void(int64_t, int64_t)>* fn_ = nullptr;
    int64_t n_ = 0;
    int64_t chunk_ = 1;
    std::atomic<int64_t> next_{0};
    std::exception_ptr error_;
    std::mutex error_mu_;
    // Last: destroyed first, so that its workers are joined before the job's state above goes away.
    WorkerCrew crew_;
};

}  // namespace orcd::backend::cpu
