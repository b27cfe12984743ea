#include "device/bandwidth.h"

#include <algorithm>
#include <chrono>
#include <cstring>
#include <memory>

#include "common/error.h"

namespace orcd::device {

namespace {

// Best-of-reps: the ceiling is what the link can do, not an average over scheduler noise.
double best_gbps(Device& dev, DeviceMemory& dst, const std::byte* src, uint64_t bytes, int reps) {
    auto stream = dev.create_stream();
    stream->copy_to_device(dst.data(), src, bytes);  // warm-up: first-touch and TLB costs stay out of the figure
    stream->synchronize();
    double best = 0.0;
    for (int r = 0; r < reps; ++r) {
        const auto t0 = std::chrono::steady_clock::now();
        stream->copy_to_device(dst.data(), src, bytes);
        stream->synchronize();
        const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        if (s > 0) best = std::max(best, static_cast<double>(bytes) / s / 1e9);
    }
    return best;
}

}  // namespace

H2dBandwidth measure_h2d_bandwidth(Device& dev, uint64_t bytes, int reps, bool pageable) {
    if (bytes == 0 || reps <= 0) throw Error(ErrorCode::InvalidArgument, "measure_h2d_bandwidth: bytes and reps > 0");
    H2dBandwidth r;
    r.bytes = bytes;
    r.reps = reps;
    auto dst = dev.allocate(bytes, "bandwidth test");
    {
        auto pinned = dev.allocate_pinned(bytes);
        std::memset(pinned->data(), 0x5A, bytes);
        r.pinned_gbps = best_gbps(dev, *dst, pinned->data(), bytes, reps);
    }
    if (pageable) {
        auto host = std::make_unique<std::byte[]>(bytes);
        std::memset(host.get(), 0x5A, bytes);
        r.pageable_gbps = best_gbps(dev, *dst, host.get(), bytes, reps);
    }
    return r;
}

RegisteredCopy measure_registered_copy(Device& dev, const std::byte* host, uint64_t bytes) {
    using Clock = std::chrono::steady_clock;
    auto secs = [](Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); };
    RegisteredCopy r;
    r.bytes = bytes;
    auto dst = dev.allocate(bytes, "registered-copy test");
    auto t0 = Clock::now();
    std::unique_ptr<HostRegistration> reg;
    try {
        reg = dev.register_host(host, bytes);
    } catch (const Error& e) {
        r.error = e.what();
        return r;
    }
    r.register_s = secs(t0);
    {
        auto stream = dev.create_stream();
        t0 = Clock::now();
        stream->copy_to_device(dst->data(), host, bytes);
        stream->synchronize();
        r.copy_s = secs(t0);
    }
    t0 = Clock::now();
    reg.reset();
    r.unregister_s = secs(t0);
    return r;
}

double measure_pinned_h2d_gbps(Device& dev, uint64_t bytes, int reps) {
    return measure_h2d_bandwidth(dev, bytes, reps, false).pinned_gbps;
}

double measure_d2d_gbps(Device& dev, uint64_t bytes, int reps, int copies_per_rep) {
    if (bytes == 0 || reps <= 0 || copies_per_rep <= 0) {
        throw Error(ErrorCode::InvalidArgument, "measure_d2d_gbps: bytes, reps and copies_per_rep > 0");
    }
    auto src = dev.allocate(bytes, "bandwidth test (source)");
    auto dst = dev.allocate(bytes, "bandwidth test (destination)");
    auto stream = dev.create_stream();
    double best = 0.0;
    for (int r = -1; r < reps; ++r) {  // round -1: warm-up (first touch of the pages, clocks ramping up)
        const auto t0 = std::chrono::steady_clock::now();
        for (int c = 0; c < copies_per_rep; ++c) stream->copy_on_device(dst->data(), src->data(), bytes);
        stream->synchronize();
        const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        if (r >= 0 && s > 0) best = std::max(best, 2.0 * static_cast<double>(bytes) * copies_per_rep / s / 1e9);
    }
    return best;
}

double measure_memcpy_gbps(uint64_t bytes, int reps) {
    if (bytes == 0 || reps <= 0) throw Error(ErrorCode::InvalidArgument, "measure_memcpy_gbps: bytes and reps > 0");
    auto src = std::make_unique<std::byte[]>(bytes);
    auto dst = std::make_unique<std::byte[]>(bytes);
    std::memset(src.get(), 0x5A, bytes);
    std::memset(dst.get(), 0, bytes);  // first touch outside the timing
    double best = 0.0;
    for (int r = 0; r < reps; ++r) {
        const auto t0 = std::chrono::steady_clock::now();
        std::memcpy(dst.get(), src.get(), bytes);
        const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        if (s > 0) best = std::max(best, 2.0 * static_cast<double>(bytes) / s / 1e9);
    }
    // Keeps the copies observable, so that the optimizer cannot drop them.
    volatile std::byte sink = dst[bytes / 2];
    (void)sink;
    return best;
}

}  // namespace orcd::device
