#pragma once
// The persistent workers behind the project's small thread pools (backend/cpu/thread_pool.h's ThreadPool, the
// loader's CopyPool): threads - 1 workers started once, asleep on a condition variable between jobs, each job run by
// every worker and the calling thread together. The pools keep their own ways of splitting a job (chunks of a range,
// pieces of a copy); this owns the waking, the waiting for the last worker, and the shutdown.
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace orcd {

class WorkerCrew {
public:
    // threads >= 1 (0 counts as 1): the calling thread is one of them, so threads - 1 workers are started.
    explicit WorkerCrew(unsigned threads);
    ~WorkerCrew();
    WorkerCrew(const WorkerCrew&) = delete;
    WorkerCrew& operator=(const WorkerCrew&) = delete;

    unsigned threads() const { return static_cast<unsigned>(workers_.size()) + 1; }

    // Calls job() once on every worker and once on the calling thread; returns when all of them have returned, and
    // what the workers wrote is then visible to the caller. job must not throw (the pools catch inside it), and it
    // usually claims its share of the work from an atomic counter. One job at a time: run is not re-entrant.
    void run(const std::function<void()>& job);

private:
    void worker_loop();

    std::vector<std::thread> workers_;
    std::mutex mu_;
    std::condition_variable cv_start_;
    std::condition_variable cv_done_;
    const std::function<void()>* job_ = nullptr;  // the current job (set while run is in flight)
    uint64_t generation_ = 0;                     // bumped per job; workers wait for a new value
    unsigned active_ = 0;                         // workers still inside the current job
    bool stop_ = false;
};

}  // namespace orcd
