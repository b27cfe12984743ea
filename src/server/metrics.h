#pragma once
// The worker's Prometheus metrics, kept as plain atomics/locked arrays and rendered in the text exposition format
// (version 0.0.4). Names and label values are fixed here so that dashboards can rely on them: base units (seconds,
// bytes), vLLM's names where vLLM has the same quantity (num_requests_running, kv_cache_usage_perc,
// time_to_first_token_seconds ...) behind the worker_ prefix, and a `model` label (the served model id, --alias) on
// every sample so that one dashboard can hold several workers.
#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <mutex>
#include <span>
#include <string>
#include <vector>

#include "server/batch_state.h"

namespace orcd::server {

// Outcomes of worker_requests_total: every inference request (/execute and the OpenAI endpoints) is counted once.
enum class Outcome { Success, Cancelled, Error, Rejected, Invalid };
inline constexpr size_t kOutcomeCount = 5;
std::string_view outcome_label(Outcome o);  // "success", "cancelled", "error", "rejected", "invalid"

class Histogram {
public:
    explicit Histogram(std::vector<double> upper_bounds);  // ascending; +Inf is implicit
    void observe(double v);
    // `name` without suffixes; writes the _bucket (cumulative), _sum and _count lines, each carrying `labels`
    // (already rendered: `model="m"`).
    void render(std::string& out, std::string_view name, std::string_view labels) const;

private:
    std::vector<double> bounds_;
    mutable std::mutex mu_;
    std::vector<uint64_t> counts_;  // per bucket (not cumulative), last = +Inf
    double sum_ = 0;
    uint64_t count_ = 0;
};

// The continuous batch as the scheduler last saw it (after a step), for /metrics and /health: the service's state and
// the most requests that may run at once.
struct BatchSnapshot : BatchState {
    uint32_t parallel = 0;
    // Pages not held by a running sequence: free, or holding only evictable prefix-cache content (what /metrics and
    // /health call free; kv.pages_free counts only the pages that hold nothing).
    uint32_t kv_pages_unheld() const { return kv.pages_total - kv.pages_used; }
};

class Metrics {
public:
    explicit Metrics(const std::string& model);  // the `model` label's value: the id clients use

    void count_request(Outcome o) { requests_[static_cast<size_t>(o)].fetch_add(1, std::memory_order_relaxed); }
    void add_tokens(uint64_t n) { tokens_.fetch_add(n, std::memory_order_relaxed); }
    void observe_inference_seconds(double s) { inference_s_.observe(s); }
    void observe_ttft_seconds(double s) { ttft_s_.observe(s); }
    void set_queue_depth(uint64_t n) { queue_depth_.store(n, std::memory_order_relaxed); }
    void set_vram_bytes(uint64_t n) { vram_bytes_.store(n, std::memory_order_relaxed); }
    // Per finished request: time per output token after the first, and from acceptance to the end.
    void observe_tpot_seconds(double s) { tpot_s_.observe(s); }
    void observe_e2e_seconds(double s) { e2e_s_.observe(s); }
    // Per step: sequences and tokens in it.
    void observe_step(uint32_t sequences, uint32_t tokens) {
        batch_size_.observe(sequences);
        batch_tokens_.observe(tokens);
    }
    void set_batch(const BatchSnapshot& b) {
        std::lock_guard lock(batch_mu_);
        batch_ = b;
    }
    BatchSnapshot batch() const {
        std::lock_guard lock(batch_mu_);
        return batch_;
    }

    uint64_t requests(Outcome o) const { return requests_[static_cast<size_t>(o)].load(); }
    double uptime_seconds() const;

    std::string render() const;

private:
    const std::chrono::steady_clock::time_point start_;
    const std::string labels_;  // `model="..."`, escaped once
    std::array<std::atomic<uint64_t>, kOutcomeCount> requests_{};
    std::atomic<uint64_t> tokens_{0};
    std::atomic<uint64_t> queue_depth_{0};
    std::atomic<uint64_t> vram_bytes_{0};
    Histogram inference_s_;
    Histogram ttft_s_;
    Histogram tpot_s_;
    Histogram e2e_s_;
    Histogram batch_size_;
    Histogram batch_tokens_;
    mutable std::mutex batch_mu_;
    BatchSnapshot batch_;
};

}  // namespace orcd::server
