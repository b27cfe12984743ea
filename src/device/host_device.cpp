#include "device/host_device.h"

#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <functional>
#include <thread>

#include <fmt/format.h>

#include "common/error.h"
#include "device/checksum.h"

namespace orcd::device {

struct HostDevice::State {
    mutable std::mutex mu;
    HostCounters c;
    std::map<const std::byte*, uint64_t> allocations;  // live "device" allocations: start -> size
};

namespace {

constexpr uint64_t kAlign = 256;  // what cudaMalloc guarantees, so alignment bugs show up here too

uint64_t round_up(uint64_t v, uint64_t a) { return (v + a - 1) / a * a; }

std::byte* aligned_bytes(uint64_t n) {
    void* p = std::aligned_alloc(kAlign, round_up(n == 0 ? 1 : n, kAlign));
    return static_cast<std::byte*>(p);
}

// A block from aligned_bytes (Base: DeviceMemory for allocate(), PinnedMemory for allocate_pinned()). Its destructor
// takes it off the device's books with `forget`, under the lock, then frees it; each allocating function passes the
// forget that undoes its own bookkeeping, so the two sides are read together.
template <typename Base>
class HostBlock final : public Base {
public:
    using Forget = void (*)(HostDevice::State& s, const std::byte* p, uint64_t n);
    HostBlock(std::byte* p, uint64_t n, std::shared_ptr<HostDevice::State> s, Forget forget)
        : Base(p, n), s_(std::move(s)), forget_(forget) {}
    ~HostBlock() override {
        {
            std::lock_guard lock(s_->mu);
            forget_(*s_, this->ptr_, this->size_);
        }
        std::free(this->ptr_);
    }

private:
    std::shared_ptr<HostDevice::State> s_;
    Forget forget_;
};

// A live stream, event or registration in the device's counters (`live`, one of HostCounters' live_* fields): counted
// while this member exists, so that every way of making or dropping its owner keeps the count.
class LiveCount {
public:
    LiveCount(std::shared_ptr<HostDevice::State> s, uint64_t HostCounters::*live) : s_(std::move(s)), live_(live) {
        std::lock_guard lock(s_->mu);
        ++(s_->c.*live_);
    }
    ~LiveCount() {
        std::lock_guard lock(s_->mu);
        --(s_->c.*live_);
    }
    LiveCount(const LiveCount&) = delete;
    LiveCount& operator=(const LiveCount&) = delete;

    HostDevice::State& state() const { return *s_; }

private:
    std::shared_ptr<HostDevice::State> s_;
    uint64_t HostCounters::*live_;
};

class HostRegistered final : public HostRegistration {
public:
    explicit HostRegistered(std::shared_ptr<HostDevice::State> s)
        : live_(std::move(s), &HostCounters::live_registrations) {}

private:
    LiveCount live_;
};

class HostEvent final : public Event {
public:
    explicit HostEvent(std::shared_ptr<HostDevice::State> s) : live_(std::move(s), &HostCounters::live_events) {}
    // Stream side: a new recording makes the event pending until the worker reaches it.
    void arm() {
        std::lock_guard lock(mu_);
        ++armed_;
    }
    void fire() {
        {
            std::lock_guard lock(mu_);
            ++fired_;
        }
        cv_.notify_all();
    }
    void synchronize() override {
        std::unique_lock lock(mu_);
        cv_.wait(lock, [&] { return fired_ >= armed_; });
    }

private:
    LiveCount live_;
    std::mutex mu_;
    std::condition_variable cv_;
    uint64_t armed_ = 0, fired_ = 0;
};

// An in-order queue executed by one worker thread, like a CUDA stream.
class HostStream final : public Stream {
public:
    HostStream(std::shared_ptr<HostDevice::State> s, bool async, uint32_t delay_us)
        : live_(std::move(s), &HostCounters::live_streams), async_(async), delay_us_(delay_us) {
        if (async_) worker_ = std::thread([this] { run(); });
    }
    ~HostStream() override {
        if (async_) {
            {
                std::lock_guard lock(mu_);
                stop_ = true;
            }
            cv_.notify_all();
            worker_.join();  // drains the queue first: queued copies complete before buffers are freed
        }
    }  // live_, the first member, goes last: the stream counts as live until its worker is done

    void copy_to_device(std::byte* dst, const std::byte* src, uint64_t n) override;
    void copy_on_device(std::byte* dst, const std::byte* src, uint64_t n) override {
        submit([dst, src, n] { std::memmove(dst, src, n); });
    }
    void record(Event& e) override {
        auto& he = static_cast<HostEvent&>(e);
        he.arm();
        submit([&he] { he.fire(); });
    }
    void synchronize() override {
        std::unique_lock lock(mu_);
        idle_cv_.wait(lock, [&] { return queue_.empty() && !busy_; });
    }

    // The fault hook lives on the Device (shared with CUDA); HostDevice hands it through this callback.
    std::function<CopyFault(uint64_t)> fault;

private:
    void submit(std::function<void()> task) {
        if (!async_) {
            task();
            return;
        }
        {
            std::lock_guard lock(mu_);
            queue_.push_back(std::move(task));
        }
        cv_.notify_all();
    }
    void run() {
        std::unique_lock lock(mu_);
        for (;;) {
            cv_.wait(lock, [&] { return stop_ || !queue_.empty(); });
            if (queue_.empty()) return;  // stop requested and nothing left
            auto task = std::move(queue_.front());
            queue_.pop_front();
            busy_ = true;
            lock.unlock();
            task();
            lock.lock();
            busy_ = false;
            if (queue_.empty()) idle_cv_.notify_all();
        }
    }

    LiveCount live_;
    bool async_;
    uint32_t delay_us_;
    std::mutex mu_;
    std::condition_variable cv_, idle_cv_;
    std::deque<std::function<void()>> queue_;
    bool busy_ = false, stop_ = false;
    std::thread worker_;
};

void HostStream::copy_to_device(std::byte* dst, const std::byte* src, uint64_t n) {
    const CopyFault f = fault(n);
    if (f.fail) {
        throw Error(ErrorCode::Transfer,
                    fmt::format("host device: copy of {} bytes to {} failed (fault injected at cumulative byte {})", n,
                                static_cast<const void*>(dst), f.first_byte));
    }
    {
        HostDevice::State& s = live_.state();
        std::lock_guard lock(s.mu);
        // A copy must land inside one live allocation, as cudaMemcpy would insist.
        auto it = s.allocations.upper_bound(dst);
        if (it == s.allocations.begin() || std::prev(it)->first + std::prev(it)->second < dst + n) {
            throw Error(ErrorCode::Transfer, fmt::format("host device: copy of {} bytes to {} is outside every live "
                                                         "allocation",
                                                         n, static_cast<const void*>(dst)));
        }
        s.c.copies++;
        s.c.copied_bytes += n;
    }
    const uint32_t delay = delay_us_;
    submit([dst, src, n, delay, corrupt = f.corrupt_at] {
        if (delay) std::this_thread::sleep_for(std::chrono::microseconds(delay));
        std::memcpy(dst, src, n);
        if (corrupt) dst[*corrupt] = ~dst[*corrupt];
    });
}

}  // namespace

HostDevice::HostDevice(HostDeviceOptions options) : options_(std::move(options)), state_(std::make_shared<State>()) {}

HostDevice::~HostDevice() = default;

DeviceInfo HostDevice::info() const {
    std::lock_guard lock(state_->mu);
    DeviceInfo i;
    i.kind = "host";
    i.index = 0;
    i.name = options_.name;
    i.total_bytes = options_.capacity;
    i.free_bytes = options_.capacity - std::min(options_.capacity, state_->c.live_bytes);
    return i;
}

std::unique_ptr<DeviceMemory> HostDevice::allocate_memory(uint64_t bytes, std::string_view what) {
    if (fault_alloc()) {
        throw Error(ErrorCode::DeviceAlloc,
                    fmt::format("host device '{}': allocation of {} bytes for {} failed (fault injected)",
                                options_.name, bytes, what));
    }
    {
        std::lock_guard lock(state_->mu);
        if (state_->c.live_bytes + bytes > options_.capacity) {
            throw Error(
                ErrorCode::DeviceAlloc,
                fmt::format("host device '{}': allocation of {} bytes for {} failed: {} of {} bytes free",
                            options_.name, bytes, what, options_.capacity - state_->c.live_bytes, options_.capacity));
        }
    }
    std::byte* p = aligned_bytes(bytes);
    if (!p) {
        throw Error(ErrorCode::DeviceAlloc, fmt::format("host device '{}': allocation of {} bytes for {} failed: out "
                                                        "of host memory",
                                                        options_.name, bytes, what));
    }
    std::lock_guard lock(state_->mu);
    state_->allocations[p] = bytes;
    state_->c.live_allocs++;
    state_->c.allocs_total++;
    state_->c.live_bytes += bytes;
    state_->c.peak_bytes = std::max(state_->c.peak_bytes, state_->c.live_bytes);
    auto forget = [](State& s, const std::byte* q, uint64_t n) {
        s.allocations.erase(q);
        s.c.live_allocs--;
        s.c.live_bytes -= n;
    };
    return std::make_unique<HostBlock<DeviceMemory>>(p, bytes, state_, forget);
}

std::unique_ptr<PinnedMemory> HostDevice::allocate_pinned(uint64_t bytes) {
    if (fault_pinned_alloc()) {
        throw Error(ErrorCode::DeviceAlloc, fmt::format("host device '{}': pinned allocation of {} bytes failed (fault "
                                                        "injected)",
                                                        options_.name, bytes));
    }
    std::byte* p = aligned_bytes(bytes);
    if (!p) {
        throw Error(ErrorCode::DeviceAlloc,
                    fmt::format("host device '{}': pinned allocation of {} bytes failed", options_.name, bytes));
    }
    std::lock_guard lock(state_->mu);
    state_->c.live_pinned++;
    state_->c.pinned_total++;
    state_->c.live_pinned_bytes += bytes;
    auto forget = [](State& s, const std::byte*, uint64_t n) {
        s.c.live_pinned--;
        s.c.live_pinned_bytes -= n;
    };
    return std::make_unique<HostBlock<PinnedMemory>>(p, bytes, state_, forget);
}

std::unique_ptr<Stream> HostDevice::create_stream() {
    auto s = std::make_unique<HostStream>(state_, options_.async, options_.copy_delay_us);
    s->fault = [this](uint64_t n) { return fault_copy(n); };
    return s;
}

std::unique_ptr<Event> HostDevice::create_event() { return std::make_unique<HostEvent>(state_); }

std::unique_ptr<HostRegistration> HostDevice::register_host(const std::byte* p, uint64_t n) {
    if (fault_register()) {
        throw Error(ErrorCode::Device, fmt::format("host device '{}': registering {} bytes at {} failed (fault "
                                                   "injected)",
                                                   options_.name, n, static_cast<const void*>(p)));
    }
    auto r = std::make_unique<HostRegistered>(state_);
    std::lock_guard lock(state_->mu);
    state_->c.registrations_total++;
    return r;
}

Residency HostDevice::residency(const std::byte* ptr) const {
    Residency r;
    std::lock_guard lock(state_->mu);
    auto it = state_->allocations.upper_bound(ptr);
    const bool inside = it != state_->allocations.begin() && ptr < std::prev(it)->first + std::prev(it)->second;
    if (fault_residency()) {
        r.device_memory = false;
        r.host_accessible = true;
        r.detail = "host memory (fault injected)";
    } else if (inside) {
        r.device_memory = true;
        r.detail = fmt::format("host-device allocation of {} bytes", std::prev(it)->second);
    } else {
        r.detail = "not a live allocation of this device";
    }
    return r;
}

std::vector<uint64_t> HostDevice::checksums(std::span<const DeviceRange> ranges) {
    std::vector<uint64_t> out;
    out.reserve(ranges.size());
    for (const auto& r : ranges) out.push_back(checksum_bytes({r.ptr, r.bytes}));
    return out;
}

void HostDevice::copy_to_host(std::byte* dst, const std::byte* src, uint64_t n) { std::memcpy(dst, src, n); }

HostCounters HostDevice::counters() const {
    std::lock_guard lock(state_->mu);
    return state_->c;
}

}  // namespace orcd::device
