#pragma once
// The background residency check: every `interval`, asks a probe whether the model's weights are still where they
// should be (device memory, not migrated or host-mapped) and remembers the answer for /health.
#include <chrono>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <thread>

namespace orcd::server {

class ResidencyMonitor {
public:
    // The probe returns nullopt when all is well, else what is wrong. It runs once at construction (so /health is
    // right from the first request) and then every `interval` on a background thread.
    using Probe = std::function<std::optional<std::string>()>;
    ResidencyMonitor(Probe probe, std::chrono::milliseconds interval);
    ~ResidencyMonitor();  // stops the thread (without waiting for the next interval)

    bool healthy() const;
    std::string problem() const;  // empty while healthy
    uint64_t checks() const;      // probes run so far

private:
    void check();
    Probe probe_;
    const std::chrono::milliseconds interval_;
    mutable std::mutex mu_;
    std::condition_variable cv_;
    bool stop_ = false;
    std::optional<std::string> problem_;
    uint64_t checks_ = 0;
    std::thread thread_;
};

}  // namespace orcd::server
