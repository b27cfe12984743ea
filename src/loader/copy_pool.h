#pragma once
// A small persistent thread pool that performs a list of memcpy / pread / zero-fill segments in parallel, the calling
// thread included. Gathering a staging buffer from a page-cache-backed mapping runs at a few GB/s per thread (page
// faults plus the copy), well below a PCIe 5 DMA, so the gather is spread over several threads. pread() from the
// file descriptor copies out of the page cache without mapping anything into this process: no page faults, no page
// table entries to tear down afterwards.
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <vector>

#include "common/worker_crew.h"

namespace orcd::loader {

struct Segment {
    std::byte* dst;
    const std::byte* src;  // nullptr: fill with zeros (unless fd >= 0)
    uint64_t n;
    int fd = -1;  // >= 0: pread n bytes of this descriptor at file_offset instead of copying src
    uint64_t file_offset = 0;
};

// The first read that failed (a pool run continues the other pieces; the caller reports this one).
struct ReadFailure {
    uint64_t file_offset = 0;
    uint64_t bytes = 0;  // requested
    uint64_t got = 0;    // read before the failure
    int error = 0;       // errno; 0: end of file came first
};

class CopyPool {
public:
    // threads >= 1; threads - 1 workers are started. streaming: memory-to-memory segments are copied with
    // non-temporal stores (see streaming_copy), fenced before run() returns.
    explicit CopyPool(unsigned threads, bool streaming = false);
    CopyPool(const CopyPool&) = delete;
    CopyPool& operator=(const CopyPool&) = delete;

    unsigned threads() const { return crew_.threads(); }
    // Performs every segment; returns when all are done: the first failed read, if any (its piece's bytes in the
    // destination are unspecified).
    std::optional<ReadFailure> run(std::span<const Segment> segments);

private:
    void drain();

    std::vector<Segment> pieces_;  // the current run's segments cut into pieces (set while run is in flight)
    std::atomic<size_t> next_{0};
    std::atomic<bool> failed_{false};
    ReadFailure failure_;  // written once, by the thread that set failed_
    bool streaming_ = false;
    // Last: destroyed first, so that its workers are joined before the state above goes away.
    WorkerCrew crew_;
};

// memcpy with non-temporal stores where the CPU has them (SSE2 on x86-64; plain memcpy elsewhere): the destination's
// cache lines are written without being read first and do not evict the cache. Ends with a store fence.
void streaming_copy(std::byte* dst, const std::byte* src, uint64_t n);

}  // namespace orcd::loader
