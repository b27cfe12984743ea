#pragma once
// A small persistent thread pool that performs a list of memcpy/zero-fill segments in parallel, the calling thread
// included. Gathering a staging buffer from a page-cache-backed mapping runs at a few GB/s per thread (page faults
// plus the copy), well below a PCIe 5 DMA, so the gather is spread over several threads.
#include <atomic>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <mutex>
#include <span>
#include <thread>
#include <vector>

namespace orcd::loader {

struct Segment {
    std::byte* dst;
    const std::byte* src;  // nullptr: fill with zeros
    uint64_t n;
};

class CopyPool {
public:
    explicit CopyPool(unsigned threads);  // threads >= 1; threads - 1 workers are started
    CopyPool(const CopyPool&) = delete;
    CopyPool& operator=(const CopyPool&) = delete;
    ~CopyPool();

    unsigned threads() const { return static_cast<unsigned>(workers_.size()) + 1; }
    // Performs every segment; returns when all are done.
    void run(std::span<const Segment> segments);

private:
    void worker();
    void drain();

    std::vector<std::thread> workers_;
    std::mutex mu_;
    std::condition_variable cv_, done_cv_;
    std::vector<Segment> pieces_;
    std::atomic<size_t> next_{0};
    size_t active_ = 0;
    uint64_t generation_ = 0;
    bool stop_ = false;
};

}  // namespace orcd::loader
