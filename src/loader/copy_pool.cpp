#include "loader/copy_pool.h"

#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

namespace orcd::loader {

namespace {
// Pieces small enough to balance the threads, large enough that the atomic counter costs nothing.
constexpr uint64_t kPieceBytes = 1ull << 20;

// pread until n bytes arrived (a regular file may return short counts, e.g. on a signal); nullopt on success.
std::optional<ReadFailure> read_fully(int fd, std::byte* dst, uint64_t n, uint64_t offset) {
    uint64_t got = 0;
    while (got < n) {
        const ssize_t r = ::pread(fd, dst + got, n - got, static_cast<off_t>(offset + got));
        if (r > 0) {
            got += static_cast<uint64_t>(r);
        } else if (r < 0 && errno == EINTR) {
            continue;
        } else {
            return ReadFailure{offset, n, got, r < 0 ? errno : 0};
        }
    }
    return std::nullopt;
}
}  // namespace

void streaming_copy(std::byte* dst, const std::byte* src, uint64_t n) {
#if defined(__SSE2__)
    // Head: plain copy up to the first 16-byte boundary of the destination (stream stores need aligned addresses).
    const uint64_t head = std::min<uint64_t>(n, (16 - (reinterpret_cast<uintptr_t>(dst) & 15)) & 15);
    std::memcpy(dst, src, head);
    dst += head;
    src += head;
    n -= head;
    auto* d = reinterpret_cast<__m128i*>(dst);
    const auto* s = reinterpret_cast<const __m128i*>(src);
    uint64_t blocks = n / 64;  // four 16-byte stores per iteration: one whole cache line
    for (; blocks > 0; --blocks, d += 4, s += 4) {
        const __m128i a = _mm_loadu_si128(s), b = _mm_loadu_si128(s + 1), c = _mm_loadu_si128(s + 2),
                      e = _mm_loadu_si128(s + 3);
        _mm_stream_si128(d, a);
        _mm_stream_si128(d + 1, b);
        _mm_stream_si128(d + 2, c);
        _mm_stream_si128(d + 3, e);
    }
    const uint64_t done = n / 64 * 64;
    std::memcpy(dst + done, src + done, n - done);
    _mm_sfence();  // streaming stores are weakly ordered: visible before the DMA is queued
#else
    std::memcpy(dst, src, n);
#endif
}

CopyPool::CopyPool(unsigned threads, bool streaming) : streaming_(streaming), crew_(threads) {}

void CopyPool::drain() {
    for (size_t i; (i = next_.fetch_add(1, std::memory_order_relaxed)) < pieces_.size();) {
        const Segment& s = pieces_[i];
        if (s.fd >= 0) {
            if (auto f = read_fully(s.fd, s.dst, s.n, s.file_offset); f && !failed_.exchange(true)) failure_ = *f;
        } else if (s.src && streaming_) {
            streaming_copy(s.dst, s.src, s.n);
        } else if (s.src) {
            std::memcpy(s.dst, s.src, s.n);
        } else {
            std::memset(s.dst, 0, s.n);
        }
    }
}

std::optional<ReadFailure> CopyPool::run(std::span<const Segment> segments) {
    pieces_.clear();
    for (const Segment& s : segments) {
        for (uint64_t o = 0; o < s.n; o += kPieceBytes) {
            const uint64_t n = std::min(kPieceBytes, s.n - o);
            pieces_.push_back({s.dst + o, s.src ? s.src + o : nullptr, n, s.fd, s.file_offset + o});
        }
    }
    next_.store(0, std::memory_order_relaxed);
    failed_.store(false);
    crew_.run([this] { drain(); });
    if (failed_.load()) return failure_;
    return std::nullopt;
}

}  // namespace orcd::loader
