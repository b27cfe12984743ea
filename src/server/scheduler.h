#pragma once
// Runs jobs as one continuous batch (docs/BATCHING.md) on one worker thread: the service's engine takes up to
// --parallel jobs at once, and jobs join and leave the batch at step boundaries. Up to --max-queue jobs may wait
// beyond those. Submission, cancellation and draining are safe from any thread.
#include <condition_variable>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <unordered_map>

#include "common/error.h"
#include "server/job.h"
#include "server/metrics.h"
#include "server/service.h"

namespace orcd::server {

enum class SubmitStatus { Accepted, QueueFull, Draining, DuplicateId, Refused };
enum class CancelStatus { Running, Queued, NotFound };

class Scheduler {
public:
    // `max_queue`: jobs that may wait while `service.info().parallel` run (0: only the running ones).
    Scheduler(InferenceService& service, Metrics& metrics, size_t max_queue);
    ~Scheduler();  // cancels everything (Shutdown) and joins the worker
    Scheduler(const Scheduler&) = delete;
    Scheduler& operator=(const Scheduler&) = delete;

    struct Submission {
        SubmitStatus status;
        std::shared_ptr<Job> job;                      // set when Accepted
        ErrorCode error = ErrorCode::InvalidArgument;  // Refused: why (the service's prepare() refused it)
        std::string message{};                         // Refused: its message (e.g. the KV pool's limit)
    };
    // Checks and tokenizes the request on the calling thread; a request the service refuses (larger than the whole
    // KV pool, bad sampling) is Refused at once and never queued. One beyond the context is Accepted as a job that
    // has already ended with the error event CONTEXT_OVERFLOW (the worker API's contract).
    Submission submit(std::string job_id, engine::GenerateRequest request);

    // Idempotent. A job that has not started ends with error CANCELLED at the next step boundary, a running one
    // stops there too (its pages free at once). Unknown (or already finished) ids are NotFound.
    CancelStatus cancel(const std::string& job_id, CancelReason reason);

    // Shutdown, step 1: refuse new jobs and cancel the ones that have not started. Returns at once.
    void begin_drain();
    // Shutdown, step 2: waits until no job runs, up to `timeout`, then cancels the running ones and waits for them
    // to stop. Returns true when every running job finished on its own.
    bool drain(std::chrono::milliseconds timeout);

    bool draining() const;
    size_t queued() const;  // accepted jobs that have not started
    bool busy() const;      // a job is running

private:
    struct Tracked {
        std::shared_ptr<Job> job;
        bool started = false;
        Clock::time_point started_at{};
    };
    struct Inbox {
        std::shared_ptr<Job> job;
        std::unique_ptr<PreparedJob> prepared;
    };
    void worker_loop();
    engine::RequestSink sink_for(const std::shared_ptr<Job>& job);
    void job_ended(const std::shared_ptr<Job>& job, JobEvent terminal, Outcome outcome,
                   const engine::GenerateResult* result);
    void cancel_all(CancelReason reason, bool only_waiting);  // requires mu_
    void publish_depth();                                     // requires mu_

    InferenceService& service_;
    Metrics& metrics_;
    const size_t max_queue_;
    const size_t parallel_;
    mutable std::mutex mu_;
    std::condition_variable cv_;                     // wakes the worker: a job submitted or cancelled, or stopping
    std::condition_variable idle_cv_;                // wakes drain(): a job ended
    std::deque<Inbox> inbox_;                        // accepted, not yet handed to the engine
    std::unordered_map<std::string, Tracked> jobs_;  // every accepted job that has not ended
    size_t started_ = 0;                             // of jobs_, those that started
    bool draining_ = false;
    bool stopping_ = false;
    std::thread worker_;
};

}  // namespace orcd::server
