#include "loader/copy_pool.h"

#include <algorithm>
#include <cstring>

namespace orcd::loader {

namespace {
// Pieces small enough to balance the threads, large enough that the atomic counter costs nothing.
constexpr uint64_t kPieceBytes = 1ull << 20;
}  // namespace

CopyPool::CopyPool(unsigned threads) {
    for (unsigned i = 1; i < std::max(1u, threads); ++i) workers_.emplace_back([this] { worker(); });
}

CopyPool::~CopyPool() {
    {
        std::lock_guard lock(mu_);
        stop_ = true;
    }
    cv_.notify_all();
    for (auto& t : workers_) t.join();
}

void CopyPool::drain() {
    for (size_t i; (i = next_.fetch_add(1, std::memory_order_relaxed)) < pieces_.size();) {
        const Segment& s = pieces_[i];
        if (s.src) {
            std::memcpy(s.dst, s.src, s.n);
        } else {
            std::memset(s.dst, 0, s.n);
        }
    }
}

void CopyPool::worker() {
    uint64_t seen = 0;
    std::unique_lock lock(mu_);
    for (;;) {
        cv_.wait(lock, [&] { return stop_ || generation_ != seen; });
        if (stop_) return;
        seen = generation_;
        lock.unlock();
        drain();
        lock.lock();
        if (--active_ == 0) done_cv_.notify_all();
    }
}

void CopyPool::run(std::span<const Segment> segments) {
    std::unique_lock lock(mu_);
    pieces_.clear();
    for (const Segment& s : segments) {
        for (uint64_t o = 0; o < s.n; o += kPieceBytes) {
            const uint64_t n = std::min(kPieceBytes, s.n - o);
            pieces_.push_back({s.dst + o, s.src ? s.src + o : nullptr, n});
        }
    }
    next_.store(0, std::memory_order_relaxed);
    if (workers_.empty()) {
        lock.unlock();
        drain();
        return;
    }
    active_ = workers_.size();
    ++generation_;
    lock.unlock();
    cv_.notify_all();
    drain();
    lock.lock();
    done_cv_.wait(lock, [&] { return active_ == 0; });
}

}  // namespace orcd::loader
