#pragma once
// A constrained sequence's token mask computed while the step's forward pass runs (backend::LateTokenMask). Each step
// the generation starts the computation when it makes its batch entry; a few shared worker threads take the
// computations of a step's constrained entries in parallel, and the backend resolves each one after it has started
// the forward pass. A computation no worker has taken yet when the backend resolves it runs right there, on the
// step's thread, so resolving never waits behind other sequences' masks.
#include <atomic>
#include <cstdint>
#include <exception>
#include <functional>
#include <memory>
#include <span>

#include "backend/backend.h"

namespace orcd::engine {

class LateMask final : public backend::LateTokenMask {
public:
    // `compute` returns the mask (a span valid until the next computation starts) or throws; it runs on a worker or
    // on the resolving thread, one computation at a time.
    explicit LateMask(std::function<std::span<const uint64_t>()> compute);
    ~LateMask() override;  // waits for a computation under way; one not yet taken never runs
    LateMask(const LateMask&) = delete;
    LateMask& operator=(const LateMask&) = delete;

    // Queues a computation for the workers. The previous one must be finished (finish()).
    void start();
    // The mask, once computed (here if no worker has taken it). When the computation threw: empty (an unconstrained
    // pick, which the owner then does not use: finish() rethrows the error).
    std::span<const uint64_t> resolve() override;
    // Waits for the started computation (a queued one is withdrawn), then rethrows its error if it threw. Nothing
    // to do when none was started. After it, start() may be called again.
    void finish();

    // Threads of the shared worker pool (started on first use).
    static unsigned workers();

private:
    struct State;
    std::shared_ptr<State> state_;
    bool started_ = false;
};

}  // namespace orcd::engine
