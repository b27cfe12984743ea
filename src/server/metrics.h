#pragma once
// The worker's Prometheus metrics, kept as plain atomics/locked arrays and rendered in the text exposition format
// (version 0.0.4). Names and label values are fixed here so that dashboards can rely on them.
#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <mutex>
#include <span>
#include <string>
#include <vector>

namespace orcd::server {

// Outcomes of worker_requests_total: every inference request (/execute and the OpenAI endpoints) is counted once.
enum class Outcome { Success, Cancelled, Error, Rejected, Invalid };
inline constexpr size_t kOutcomeCount = 5;
std::string_view outcome_label(Outcome o);  // "success", "cancelled", "error", "rejected", "invalid"

class Histogram {
public:
    explicit Histogram(std::vector<double> upper_bounds);  // ascending; +Inf is implicit
    void observe(double v);
    // `name` without suffixes; writes the _bucket (cumulative), _sum and _count lines.
    void render(std::string& out, std::string_view name) const;

private:
    std::vector<double> bounds_;
    mutable std::mutex mu_;
    std::vector<uint64_t> counts_;  // per bucket (not cumulative), last = +Inf
    double sum_ = 0;
    uint64_t count_ = 0;
};

// The continuous batch as the scheduler last saw it (after a step), for /metrics and /health.
struct BatchSnapshot {
    uint32_t parallel = 0;
    uint32_t running = 0;
    uint32_t waiting = 0;
    uint32_t kv_page_size = 0;
    uint64_t kv_pool_bytes = 0;
    uint32_t kv_pages_total = 0;
    uint32_t kv_pages_used = 0;    // held by running sequences
    uint32_t kv_pages_free = 0;    // holding nothing, or only evictable prefix-cache content
    uint32_t kv_pages_cached = 0;  // holding prefix-cache content (used or evictable)
    uint64_t prefix_queried_tokens = 0;
    uint64_t prefix_hit_tokens = 0;
    uint64_t preemptions = 0;
    double prefix_hit_rate() const {
        return prefix_queried_tokens == 0 ? 0.0
                                          : static_cast<double>(prefix_hit_tokens) / prefix_queried_tokens;
    }
};

class Metrics {
public:
    Metrics();

    void count_request(Outcome o) { requests_[static_cast<size_t>(o)].fetch_add(1, std::memory_order_relaxed); }
    void add_tokens(uint64_t n) { tokens_.fetch_add(n, std::memory_order_relaxed); }
    void observe_inference_ms(double ms) { inference_ms_.observe(ms); }
    void observe_ttft_ms(double ms) { ttft_ms_.observe(ms); }
    void set_queue_depth(uint64_t n) { queue_depth_.store(n, std::memory_order_relaxed); }
    void set_vram_bytes(uint64_t n) { vram_bytes_.store(n, std::memory_order_relaxed); }
    // Per finished request: time per output token after the first, and from acceptance to the end.
    void observe_tpot_ms(double ms) { tpot_ms_.observe(ms); }
    void observe_e2e_ms(double ms) { e2e_ms_.observe(ms); }
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
    std::array<std::atomic<uint64_t>, kOutcomeCount> requests_{};
    std::atomic<uint64_t> tokens_{0};
    std::atomic<uint64_t> queue_depth_{0};
    std::atomic<uint64_t> vram_bytes_{0};
    Histogram inference_ms_;
    Histogram ttft_ms_;
    Histogram tpot_ms_;
    Histogram e2e_ms_;
    Histogram batch_size_;
    Histogram batch_tokens_;
    mutable std::mutex batch_mu_;
    BatchSnapshot batch_;
};

}  // namespace orcd::server
