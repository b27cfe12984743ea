#pragma once
// The loader's view of an accelerator: allocate device memory and pinned host memory, copy host-to-device on an
// ordered stream, wait on events, check residency, and checksum device bytes. Two implementations: CudaDevice (the
// real thing) and HostDevice (host memory standing in for VRAM, with a capacity and fault injection, so that CI runs
// the plan, the chunked pipeline and every error path without a GPU).
//
// Every resource is an RAII object returned by the device; destroying it releases it. A Stream's destructor waits for
// its queued work, so buffers that outlive the stream are never freed under an in-flight copy. The Device must
// outlive every object it returned (LoadedModel holds it by shared_ptr for that reason).
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace orcd::device {

struct DeviceInfo {
    std::string kind;  // "cuda" | "host"
    int index = 0;     // GPU ordinal (0 for the host device)
    std::string name;  // "NVIDIA H100 80GB HBM3", "host"
    uint64_t total_bytes = 0;
    uint64_t free_bytes = 0;  // at the time of the query (cudaMemGetInfo; capacity minus live allocations)
};

// Test hooks, honoured by both implementations so that the device tests exercise the same error paths as CI.
struct Faults {
    uint64_t fail_alloc_at = 0;         // the N-th device allocation (1-based) fails with DeviceAlloc; 0 = never
    uint64_t fail_pinned_alloc_at = 0;  // the N-th pinned allocation fails with DeviceAlloc; 0 = never
    uint64_t fail_register_at = 0;      // the N-th register_host fails with Device; 0 = never
    // The host-to-device copy that would carry the device's cumulative copied byte X fails with Transfer.
    std::optional<uint64_t> fail_transfer_at_byte;
    // The cumulative copied byte X lands on the device with its bits inverted (proves that --verify catches it).
    std::optional<uint64_t> corrupt_byte;
    bool report_not_resident = false;  // residency() reports every allocation as host memory
    // The gather's file read (GatherSource::Read) for the window holding arena byte X fails with EIO.
    std::optional<uint64_t> fail_read_at_byte;
};

// Live device memory per allocation label (the `what` of Device::allocate), kept by the Device base for every
// implementation: what a backend reports as its VRAM in use (weights, KV caches, workspace) is read from here rather
// than predicted from a plan. Thread-safe; shared with the allocations so that it outlives whichever goes last.
class AllocationLedger {
public:
    void add(const std::string& label, uint64_t bytes);
    void remove(const std::string& label, uint64_t bytes);
    // Bytes of the live allocations whose label starts with `label_prefix` (all of them for an empty prefix).
    uint64_t live_bytes(std::string_view label_prefix = {}) const;

private:
    mutable std::mutex mu_;
    std::vector<std::pair<std::string, uint64_t>> by_label_;  // few labels: a vector beats a map here
};

// A block of bytes a device implementation allocated (device memory or pinned host memory); its destructor frees it.
class MemoryBlock {
public:
    virtual ~MemoryBlock() = default;
    std::byte* data() const { return ptr_; }
    uint64_t size() const { return size_; }

protected:
    MemoryBlock(std::byte* ptr, uint64_t size) : ptr_(ptr), size_(size) {}
    std::byte* ptr_;
    uint64_t size_;
};

class DeviceMemory : public MemoryBlock {
public:
    ~DeviceMemory() override;  // returns its bytes to the device's ledger (after the implementation freed them)

protected:
    using MemoryBlock::MemoryBlock;

private:
    friend class Device;
    std::shared_ptr<AllocationLedger> ledger_;
    std::string label_;
};

class PinnedMemory : public MemoryBlock {
protected:
    using MemoryBlock::MemoryBlock;
};

// Host memory the device may read by DMA in place (cudaHostRegister); unregistered on destruction.
class HostRegistration {
public:
    virtual ~HostRegistration() = default;
};

class Event {
public:
    virtual ~Event() = default;
    virtual void synchronize() = 0;  // blocks until the work recorded before it has completed
};

class Stream {
public:
    virtual ~Stream() = default;  // implementations wait for queued work before releasing anything
    // Queues a copy of n bytes from host memory (pinned for overlap; pageable works, synchronously) to device memory.
    virtual void copy_to_device(std::byte* dst, const std::byte* src, uint64_t n) = 0;
    // Queues a copy of n bytes between two device allocations (the bandwidth figure `orcd bench` compares decode
    // against).
    virtual void copy_on_device(std::byte* dst, const std::byte* src, uint64_t n) = 0;
    virtual void record(Event& e) = 0;
    virtual void synchronize() = 0;
};

struct Residency {
    bool device_memory = false;    // the pointer is device memory of this device
    bool host_accessible = false;  // a host pointer maps it (managed / host-mapped memory) — never allowed here
    std::string detail;            // what the runtime reported, for messages
    bool ok() const { return device_memory && !host_accessible; }
};

// What the fault hooks decide for one host-to-device copy.
struct CopyFault {
    bool fail = false;                   // refuse the copy (Transfer)
    std::optional<uint64_t> corrupt_at;  // byte offset within this copy to invert
    uint64_t first_byte = 0;             // cumulative offset of this copy's first byte
};

struct DeviceRange {
    const std::byte* ptr;
    uint64_t bytes;
};

class Device {
public:
    virtual ~Device() = default;
    virtual DeviceInfo info() const = 0;
    // `what` names the allocation in errors and labels it in the ledger ("weights", "KV cache ...", "activations").
    // Errors: DeviceAlloc naming `what`, the bytes requested and the device.
    std::unique_ptr<DeviceMemory> allocate(uint64_t bytes, std::string_view what);
    virtual std::unique_ptr<PinnedMemory> allocate_pinned(uint64_t bytes) = 0;
    virtual std::unique_ptr<Stream> create_stream() = 0;
    virtual std::unique_ptr<Event> create_event() = 0;
    virtual Residency residency(const std::byte* ptr) const = 0;
    // Registers [p, p + n) for DMA, read-only (a file mapping qualifies). Errors: Device when the runtime refuses
    // (no support, the range cannot be pinned); nothing stays registered then.
    virtual std::unique_ptr<HostRegistration> register_host(const std::byte* p, uint64_t n) = 0;
    // One checksum (see checksum.h) per range, computed where the bytes live.
    virtual std::vector<uint64_t> checksums(std::span<const DeviceRange> ranges) = 0;
    // Synchronous device-to-host copy (tests and diagnostics).
    virtual void copy_to_host(std::byte* dst, const std::byte* src, uint64_t n) = 0;

    // Whether the gather read of arena bytes [begin, end) must fail (Faults::fail_read_at_byte). The transfer reads
    // the file itself, so this hook is public; the others are consulted by the implementations.
    bool read_fault(uint64_t begin, uint64_t end) const {
        std::lock_guard lock(fault_mu_);
        return faults_.fail_read_at_byte && *faults_.fail_read_at_byte >= begin && *faults_.fail_read_at_byte < end;
    }
    // Device memory allocated through this Device and still live, in bytes: all of it, or that of the allocations
    // whose `what` starts with `label_prefix` ("KV cache"). Thread-safe.
    uint64_t live_bytes(std::string_view label_prefix = {}) const { return ledger_->live_bytes(label_prefix); }

    void set_faults(const Faults& f) {
        std::lock_guard lock(fault_mu_);
        faults_ = f;
        n_allocs_ = n_pinned_allocs_ = n_registers_ = copied_bytes_ = 0;
    }

protected:
    // What allocate() delegates to; the base records the result in the ledger.
    virtual std::unique_ptr<DeviceMemory> allocate_memory(uint64_t bytes, std::string_view what) = 0;

    // Fault bookkeeping shared by the implementations; each returns what the implementation must do.
    bool fault_alloc();         // true: this allocation must fail
    bool fault_pinned_alloc();  // true: this pinned allocation must fail
    bool fault_register();      // true: this registration must fail
    CopyFault fault_copy(uint64_t n);
    bool fault_residency() const {
        std::lock_guard lock(fault_mu_);
        return faults_.report_not_resident;
    }

private:
    mutable std::mutex fault_mu_;
    Faults faults_;
    uint64_t n_allocs_ = 0, n_pinned_allocs_ = 0, n_registers_ = 0, copied_bytes_ = 0;
    std::shared_ptr<AllocationLedger> ledger_ = std::make_shared<AllocationLedger>();
};

}  // namespace orcd::device
