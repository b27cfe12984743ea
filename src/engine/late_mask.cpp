#include "engine/late_mask.h"

#include <algorithm>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <thread>
#include <utility>
#include <vector>

#include "common/error.h"

namespace orcd::engine {

namespace {

enum Phase : int { kIdle, kQueued, kRunning, kDone };

// The shared workers: a queue of claims. A claim runs its computation only if nobody has claimed it yet, so a stale
// one (its computation already run by the resolver, or withdrawn) is a no-op.
class Workers {
public:
    static Workers& get() {
        static Workers w;
        return w;
    }
    unsigned size() const { return static_cast<unsigned>(threads_.size()); }
    void push(std::function<void()> claim) {
        {
            std::lock_guard lock(mu_);
            queue_.push_back(std::move(claim));
        }
        cv_.notify_one();
    }
    ~Workers() {
        {
            std::lock_guard lock(mu_);
            stop_ = true;
        }
        cv_.notify_all();
        for (auto& t : threads_) t.join();
    }

private:
    Workers() {
        // Half the cores, up to 8: enough for the masks of a step's constrained sequences to be computed side by
        // side, while the rest of the machine feeds the device (or, on the CPU backend, computes the model).
        const unsigned n = std::clamp(std::thread::hardware_concurrency() / 2, 1u, 8u);
        for (unsigned i = 0; i < n; ++i) threads_.emplace_back([this] { loop(); });
    }
    void loop() {
        for (;;) {
            std::function<void()> claim;
            {
                std::unique_lock lock(mu_);
                cv_.wait(lock, [&] { return stop_ || !queue_.empty(); });
                if (stop_) return;
                claim = std::move(queue_.front());
                queue_.pop_front();
            }
            claim();
        }
    }

    std::mutex mu_;
    std::condition_variable cv_;
    std::deque<std::function<void()>> queue_;
    bool stop_ = false;
    std::vector<std::thread> threads_;
};

}  // namespace

struct LateMask::State {
    std::function<std::span<const uint64_t>()> compute;
    std::atomic<int> phase{kIdle};
    std::span<const uint64_t> result;  // written by the claimer before kDone
    std::exception_ptr error;

    // Runs the queued computation if this caller is the first to claim it.
    bool run_if_queued() {
        int expected = kQueued;
        if (!phase.compare_exchange_strong(expected, kRunning, std::memory_order_acq_rel)) return false;
        try {
            result = compute();
        } catch (...) {
            error = std::current_exception();
        }
        phase.store(kDone, std::memory_order_release);
        phase.notify_all();
        return true;
    }
    void wait_running() {
        for (int p = phase.load(std::memory_order_acquire); p == kRunning; p = phase.load(std::memory_order_acquire)) {
            phase.wait(kRunning, std::memory_order_acquire);
        }
    }
    // Withdraws a queued computation or waits for a running one; true when it was withdrawn.
    bool withdraw_or_wait() {
        int expected = kQueued;
        if (phase.compare_exchange_strong(expected, kIdle, std::memory_order_acq_rel)) return true;
        wait_running();
        return false;
    }
};

LateMask::LateMask(std::function<std::span<const uint64_t>()> compute) : state_(std::make_shared<State>()) {
    state_->compute = std::move(compute);
}

LateMask::~LateMask() {
    if (started_) state_->withdraw_or_wait();
}

unsigned LateMask::workers() { return Workers::get().size(); }

void LateMask::start() {
    if (started_) throw Error(ErrorCode::Internal, "LateMask::start: the previous mask was not finished");
    state_->result = {};
    state_->error = nullptr;
    state_->phase.store(kQueued, std::memory_order_release);
    started_ = true;
    Workers::get().push([s = state_] { s->run_if_queued(); });
}

std::span<const uint64_t> LateMask::resolve() {
    if (!started_) throw Error(ErrorCode::Internal, "LateMask::resolve: no mask was started");
    if (!state_->run_if_queued()) state_->wait_running();
    return state_->error ? std::span<const uint64_t>{} : state_->result;
}

void LateMask::finish() {
    if (!started_) return;
    started_ = false;
    if (state_->withdraw_or_wait()) return;
    if (state_->error) std::rethrow_exception(std::exchange(state_->error, nullptr));
}

}  // namespace orcd::engine
