#pragma once
// A Device backed by host memory: "VRAM" is aligned heap memory limited to a capacity, streams run their copies in
// order on a worker thread (so the pipeline meets real asynchrony: a buffer refilled before its copy completed shows up
// as corrupted data), and counters record every live resource so tests can prove that a failed load released
// everything. Fault injection comes from Device::set_faults.
#include <atomic>
#include <map>
#include <memory>

#include "device/device.h"

namespace orcd::device {

struct HostDeviceOptions {
    uint64_t capacity = 8ull << 30;  // bytes of "VRAM"
    std::string name = "host";
    bool async = true;           // copies on a worker thread (false: inline, for debugging)
    uint32_t copy_delay_us = 0;  // sleep before each copy, to widen races in tests
};

struct HostCounters {
    uint64_t live_allocs = 0, live_bytes = 0, peak_bytes = 0, allocs_total = 0;
    uint64_t live_pinned = 0, live_pinned_bytes = 0, pinned_total = 0;
    uint64_t live_streams = 0, live_events = 0;
    uint64_t live_registrations = 0, registrations_total = 0;
    uint64_t copies = 0, copied_bytes = 0;

    bool all_released() const {
        return live_allocs == 0 && live_bytes == 0 && live_pinned == 0 && live_pinned_bytes == 0 && live_streams == 0 &&
               live_events == 0 && live_registrations == 0;
    }
};

class HostDevice final : public Device {
public:
    explicit HostDevice(HostDeviceOptions options = {});
    ~HostDevice() override;

    DeviceInfo info() const override;
    std::unique_ptr<PinnedMemory> allocate_pinned(uint64_t bytes) override;
    std::unique_ptr<Stream> create_stream() override;
    std::unique_ptr<Event> create_event() override;
    std::unique_ptr<HostRegistration> register_host(const std::byte* p, uint64_t n) override;
    Residency residency(const std::byte* ptr) const override;
    std::vector<uint64_t> checksums(std::span<const DeviceRange> ranges) override;
    void copy_to_host(std::byte* dst, const std::byte* src, uint64_t n) override;

    HostCounters counters() const;

    // Internal bookkeeping used by the resource classes (in host_device.cpp).
    struct State;

protected:
    std::unique_ptr<DeviceMemory> allocate_memory(uint64_t bytes, std::string_view what) override;

private:
    HostDeviceOptions options_;
    std::shared_ptr<State> state_;
};

}  // namespace orcd::device
