#pragma once
// Runs jobs one at a time in arrival order on one worker thread (the engine is single-sequence), with a bounded
// queue of waiting jobs. Submission, cancellation and draining are safe from any thread.
#include <condition_variable>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "server/job.h"
#include "server/metrics.h"
#include "server/service.h"

namespace orcd::server {

enum class SubmitStatus { Accepted, QueueFull, Draining, DuplicateId };
enum class CancelStatus { Running, Queued, NotFound };

class Scheduler {
public:
    // `max_queue`: jobs that may wait while one runs (0: only the running one).
    Scheduler(InferenceService& service, Metrics& metrics, size_t max_queue);
    ~Scheduler();  // cancels everything (Shutdown) and joins the worker
    Scheduler(const Scheduler&) = delete;
    Scheduler& operator=(const Scheduler&) = delete;

    struct Submission {
        SubmitStatus status;
        std::shared_ptr<Job> job;  // set when Accepted
    };
    Submission submit(std::string job_id, engine::GenerateRequest request);

    // Idempotent. A queued job is removed and ends with error CANCELLED at once; a running one stops before its next
    // token. Unknown (or already finished) ids are NotFound.
    CancelStatus cancel(const std::string& job_id, CancelReason reason);

    // Shutdown, step 1: refuse new jobs and cancel the queued ones. Returns at once.
    void begin_drain();
    // Shutdown, step 2: waits until no job runs, up to `timeout`, then cancels the running one and waits for it to
    // stop. Returns true when the running job (if any) finished on its own.
    bool drain(std::chrono::milliseconds timeout);

    bool draining() const;
    size_t queued() const;
    bool busy() const;  // a job is running

private:
    void worker_loop();
    void run(const std::shared_ptr<Job>& job);
    void publish_depth();  // requires mu_

    InferenceService& service_;
    Metrics& metrics_;
    const size_t max_queue_;
    mutable std::mutex mu_;
    std::condition_variable cv_;       // wakes the worker: a job queued, or stopping
    std::condition_variable idle_cv_;  // wakes drain(): the running job ended
    std::deque<std::shared_ptr<Job>> queue_;
    std::shared_ptr<Job> running_;
    bool draining_ = false;
    bool stopping_ = false;
    std::thread worker_;
};

}  // namespace orcd::server
