// CudaDevice: the Device interface over the CUDA runtime. Every runtime call goes through ORCD_CUDA_CHECK (or
// ORCD_CUDA_WARN in destructors); nothing here allocates managed or host-mapped memory.
#include "device/cuda_device.h"

#include <cuda_runtime_api.h>
#include <sys/mman.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <functional>

#include <fmt/format.h>

#include "common/error.h"
#include "device/checksum_kernel.h"
#include "device/cuda_check.h"

namespace orcd::device {

void throw_cuda_error(cudaError_t err, const char* call, const char* file, int line, ErrorCode code) {
    throw Error(code, fmt::format("CUDA error {} ({}) in {} at {}:{}: {}", static_cast<int>(err), cudaGetErrorName(err),
                                  call, file, line, cudaGetErrorString(err)));
}

void report_cuda_error(cudaError_t err, const char* call, const char* file, int line) noexcept {
    std::fprintf(stderr, "orcd: CUDA error %d (%s) in %s at %s:%d: %s\n", static_cast<int>(err), cudaGetErrorName(err),
                 call, file, line, cudaGetErrorString(err));
}

namespace {

// Makes `index` current on the calling thread: the runtime's current device is per thread, and the loader may be
// driven from any thread (the C API, the server).
void use(int index) { ORCD_CUDA_CHECK(cudaSetDevice(index)); }

class CudaMemory final : public DeviceMemory {
public:
    CudaMemory(std::byte* p, uint64_t n, int index) : DeviceMemory(p, n), index_(index) {}
    ~CudaMemory() override {
        ORCD_CUDA_WARN(cudaSetDevice(index_));
        ORCD_CUDA_WARN(cudaFree(ptr_));
    }

private:
    int index_;
};

class CudaPinned final : public PinnedMemory {
public:
    CudaPinned(std::byte* p, uint64_t n) : PinnedMemory(p, n) {}
    ~CudaPinned() override { ORCD_CUDA_WARN(cudaFreeHost(ptr_)); }
};

// Anonymous memory on transparent huge pages, registered with the driver; unregistered and unmapped on destruction.
class CudaRegisteredPinned final : public PinnedMemory {
public:
    CudaRegisteredPinned(std::byte* p, uint64_t n, uint64_t mapped) : PinnedMemory(p, n), mapped_(mapped) {}
    ~CudaRegisteredPinned() override {
        ORCD_CUDA_WARN(cudaHostUnregister(ptr_));
        ::munmap(ptr_, mapped_);
    }

private:
    uint64_t mapped_;
};

constexpr uint64_t kHugePage = 2ull << 20;

// nullptr when any step fails (no THP, no populate, registration refused): the caller uses cudaHostAlloc instead.
std::unique_ptr<PinnedMemory> try_huge_page_pinned(uint64_t bytes) {
    const uint64_t mapped = (std::max<uint64_t>(bytes, 1) + kHugePage - 1) / kHugePage * kHugePage;
    // Over-map by one huge page so the registered range can start on a 2 MiB boundary (THP needs aligned extents).
    const uint64_t reserve = mapped + kHugePage;
    void* raw = ::mmap(nullptr, reserve, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (raw == MAP_FAILED) return nullptr;
    const uintptr_t base = reinterpret_cast<uintptr_t>(raw);
    const uintptr_t aligned = (base + kHugePage - 1) / kHugePage * kHugePage;
    // Trim the slack on both sides: what is left is exactly [aligned, aligned + mapped).
    if (aligned > base) ::munmap(raw, aligned - base);
    if (base + reserve > aligned + mapped) {
        ::munmap(reinterpret_cast<void*>(aligned + mapped), base + reserve - aligned - mapped);
    }
    auto* p = reinterpret_cast<std::byte*>(aligned);
    (void)::madvise(p, mapped, MADV_HUGEPAGE);  // a hint: without THP the pages are small and registration slower
#ifdef MADV_POPULATE_WRITE
    if (::madvise(p, mapped, MADV_POPULATE_WRITE) != 0) std::memset(p, 0, mapped);  // kernels before 5.14
#else
    std::memset(p, 0, mapped);
#endif
    if (cudaHostRegister(p, mapped, cudaHostRegisterDefault) != cudaSuccess) {
        (void)cudaGetLastError();  // not sticky; keep it out of later calls
        ::munmap(p, mapped);
        return nullptr;
    }
    return std::make_unique<CudaRegisteredPinned>(p, bytes, mapped);
}

class CudaHostRegistration final : public HostRegistration {
public:
    explicit CudaHostRegistration(void* p) : p_(p) {}
    ~CudaHostRegistration() override { ORCD_CUDA_WARN(cudaHostUnregister(p_)); }

private:
    void* p_;
};

class CudaEvent final : public Event {
public:
    explicit CudaEvent(int index) : index_(index) {
        use(index_);
        ORCD_CUDA_CHECK(cudaEventCreateWithFlags(&ev_, cudaEventDisableTiming));
    }
    ~CudaEvent() override {
        ORCD_CUDA_WARN(cudaSetDevice(index_));
        ORCD_CUDA_WARN(cudaEventDestroy(ev_));
    }
    void synchronize() override { ORCD_CUDA_CHECK_AS(ErrorCode::Transfer, cudaEventSynchronize(ev_)); }
    cudaEvent_t get() const { return ev_; }

private:
    int index_;
    cudaEvent_t ev_ = nullptr;
};

class CudaStream final : public Stream {
public:
    CudaStream(int index, std::function<CopyFault(uint64_t)> fault) : index_(index), fault_(std::move(fault)) {
        use(index_);
        // Non-blocking: the loader's copies must not serialise with work on the legacy default stream.
        ORCD_CUDA_CHECK(cudaStreamCreateWithFlags(&s_, cudaStreamNonBlocking));
    }
    ~CudaStream() override {
        ORCD_CUDA_WARN(cudaSetDevice(index_));
        ORCD_CUDA_WARN(cudaStreamSynchronize(s_));  // queued copies finish before their buffers can be freed
        ORCD_CUDA_WARN(cudaStreamDestroy(s_));
    }
    void copy_to_device(std::byte* dst, const std::byte* src, uint64_t n) override {
        const CopyFault f = fault_(n);
        if (f.fail) {
            throw Error(ErrorCode::Transfer,
                        fmt::format("GPU {}: copy of {} bytes to {} failed (fault injected at cumulative byte {})",
                                    index_, n, static_cast<const void*>(dst), f.first_byte));
        }
        use(index_);
        ORCD_CUDA_CHECK_AS(ErrorCode::Transfer, cudaMemcpyAsync(dst, src, n, cudaMemcpyHostToDevice, s_));
        if (f.corrupt_at) {
            // Ordered after the copy on the same stream: the byte lands inverted, as a flipped bit in transit would.
            const int value = static_cast<int>(~static_cast<unsigned>(src[*f.corrupt_at]) & 0xFFu);
            ORCD_CUDA_CHECK(cudaMemsetAsync(dst + *f.corrupt_at, value, 1, s_));
        }
    }
    void copy_on_device(std::byte* dst, const std::byte* src, uint64_t n) override {
        use(index_);
        ORCD_CUDA_CHECK_AS(ErrorCode::Transfer, cudaMemcpyAsync(dst, src, n, cudaMemcpyDeviceToDevice, s_));
    }
    void record(Event& e) override { ORCD_CUDA_CHECK(cudaEventRecord(static_cast<CudaEvent&>(e).get(), s_)); }
    void synchronize() override { ORCD_CUDA_CHECK_AS(ErrorCode::Transfer, cudaStreamSynchronize(s_)); }
    cudaStream_t get() const { return s_; }

private:
    int index_;
    std::function<CopyFault(uint64_t)> fault_;
    cudaStream_t s_ = nullptr;
};

class CudaDevice final : public Device {
public:
    CudaDevice(int index, const CudaDeviceOptions& options) : index_(index), options_(options) {
        use(index_);
        cudaDeviceProp prop{};
        ORCD_CUDA_CHECK(cudaGetDeviceProperties(&prop, index_));
        name_ = prop.name;
    }

    DeviceInfo info() const override {
        use(index_);
        size_t free = 0, total = 0;
        ORCD_CUDA_CHECK(cudaMemGetInfo(&free, &total));
        return DeviceInfo{"cuda", index_, name_, total, free};
    }

    std::unique_ptr<DeviceMemory> allocate_memory(uint64_t bytes, std::string_view what) override {
        if (fault_alloc()) {
            throw Error(ErrorCode::DeviceAlloc, fmt::format("GPU {} ({}): cudaMalloc of {} bytes for {} failed "
                                                            "(fault injected)",
                                                            index_, name_, bytes, what));
        }
        use(index_);
        void* p = nullptr;
        const cudaError_t err = cudaMalloc(&p, bytes);
        if (err != cudaSuccess) {
            (void)cudaGetLastError();  // an allocation failure is not sticky; clear it for later calls
            size_t free = 0, total = 0;
            (void)cudaMemGetInfo(&free, &total);
            throw Error(ErrorCode::DeviceAlloc,
                        fmt::format("GPU {} ({}): cudaMalloc of {} bytes for {} failed: {} ({} of {} bytes free)",
                                    index_, name_, bytes, what, cudaGetErrorString(err), free, total));
        }
        return std::make_unique<CudaMemory>(static_cast<std::byte*>(p), bytes, index_);
    }

    std::unique_ptr<PinnedMemory> allocate_pinned(uint64_t bytes) override {
        if (fault_pinned_alloc()) {
            throw Error(ErrorCode::DeviceAlloc,
                        fmt::format("GPU {}: cudaHostAlloc of {} bytes failed (fault injected)", index_, bytes));
        }
        use(index_);
        if (options_.huge_page_staging) {
            if (auto m = try_huge_page_pinned(bytes)) return m;
        }
        void* p = nullptr;
        ORCD_CUDA_CHECK_AS(ErrorCode::DeviceAlloc, cudaHostAlloc(&p, bytes, cudaHostAllocDefault));
        return std::make_unique<CudaPinned>(static_cast<std::byte*>(p), bytes);
    }

    std::unique_ptr<Stream> create_stream() override {
        return std::make_unique<CudaStream>(index_, [this](uint64_t n) { return fault_copy(n); });
    }

    std::unique_ptr<Event> create_event() override { return std::make_unique<CudaEvent>(index_); }

    std::unique_ptr<HostRegistration> register_host(const std::byte* p, uint64_t n) override {
        if (fault_register()) {
            throw Error(ErrorCode::Device, fmt::format("GPU {}: cudaHostRegister of {} bytes at {} failed (fault "
                                                       "injected)",
                                                       index_, n, static_cast<const void*>(p)));
        }
        use(index_);
        int read_only = 0;
        (void)cudaDeviceGetAttribute(&read_only, cudaDevAttrHostRegisterReadOnlySupported, index_);
        // A read-only mapping can only be pinned without write access; the flag asks exactly that.
        const unsigned flags = read_only ? cudaHostRegisterReadOnly : cudaHostRegisterDefault;
        const cudaError_t err = cudaHostRegister(const_cast<std::byte*>(p), n, flags);
        if (err != cudaSuccess) {
            (void)cudaGetLastError();
            throw Error(ErrorCode::Device,
                        fmt::format("GPU {}: cudaHostRegister of {} bytes at {} ({}) failed: {} ({})", index_, n,
                                    static_cast<const void*>(p), read_only ? "read-only" : "read-only not supported",
                                    cudaGetErrorName(err), cudaGetErrorString(err)));
        }
        return std::make_unique<CudaHostRegistration>(const_cast<std::byte*>(p));
    }

    Residency residency(const std::byte* ptr) const override {
        // The server asks from its monitor thread: without this, the runtime would create a context on GPU 0 there.
        use(index_);
        Residency r;
        cudaPointerAttributes a{};
        ORCD_CUDA_CHECK_AS(ErrorCode::Residency, cudaPointerGetAttributes(&a, ptr));
        r.device_memory = a.type == cudaMemoryTypeDevice && a.device == index_;
        r.host_accessible = a.hostPointer != nullptr || a.type == cudaMemoryTypeManaged;
        const char* type = a.type == cudaMemoryTypeDevice    ? "device"
                           : a.type == cudaMemoryTypeHost    ? "host"
                           : a.type == cudaMemoryTypeManaged ? "managed"
                                                             : "unregistered";
        r.detail =
            fmt::format("cudaPointerGetAttributes: type {}, device {}, hostPointer {}", type, a.device, a.hostPointer);
        if (fault_residency()) {
            r.device_memory = false;
            r.host_accessible = true;
            r.detail += " (reported as host memory: fault injected)";
        }
        return r;
    }

    std::vector<uint64_t> checksums(std::span<const DeviceRange> ranges) override {
        std::vector<uint64_t> out(ranges.size());
        if (ranges.empty()) return out;
        use(index_);
        std::vector<ChecksumJob> jobs;
        unsigned long long max_bytes = 0;
        for (const auto& r : ranges) {
            jobs.push_back({reinterpret_cast<const unsigned char*>(r.ptr), r.bytes});
            max_bytes = std::max<unsigned long long>(max_bytes, r.bytes);
        }
        auto jobs_dev = allocate(jobs.size() * sizeof(ChecksumJob), "checksum jobs");
        auto out_dev = allocate(out.size() * sizeof(unsigned long long), "checksum results");
        ORCD_CUDA_CHECK(
            cudaMemcpy(jobs_dev->data(), jobs.data(), jobs.size() * sizeof(ChecksumJob), cudaMemcpyHostToDevice));
        ORCD_CUDA_CHECK(launch_checksums(reinterpret_cast<const ChecksumJob*>(jobs_dev->data()),
                                         static_cast<unsigned>(jobs.size()),
                                         reinterpret_cast<unsigned long long*>(out_dev->data()), max_bytes, nullptr));
        ORCD_CUDA_CHECK(cudaMemcpy(out.data(), out_dev->data(), out.size() * sizeof(uint64_t), cudaMemcpyDeviceToHost));
        return out;
    }

    void copy_to_host(std::byte* dst, const std::byte* src, uint64_t n) override {
        use(index_);
        ORCD_CUDA_CHECK(cudaMemcpy(dst, src, n, cudaMemcpyDeviceToHost));
    }

private:
    int index_;
    CudaDeviceOptions options_;
    std::string name_;
};

}  // namespace

int cuda_device_count() {
    int n = 0;
    if (cudaGetDeviceCount(&n) != cudaSuccess) {
        (void)cudaGetLastError();
        return 0;
    }
    return n;
}

std::string cuda_unavailable_reason() {
    int n = 0;
    const cudaError_t err = cudaGetDeviceCount(&n);
    if (err != cudaSuccess) {
        (void)cudaGetLastError();
        switch (err) {
            // What the runtime says on a machine without a GPU or without the NVIDIA driver: with no libcuda.so at
            // all it reports "CUDA driver version is insufficient for CUDA runtime version", which sends a user
            // looking for a driver upgrade; the runtime's own words follow in parentheses for the rare real case.
            case cudaErrorInsufficientDriver:
            case cudaErrorNoDevice:
            case cudaErrorStubLibrary:
            case cudaErrorSystemDriverMismatch:
            case cudaErrorInitializationError:
                return fmt::format("no NVIDIA GPU or driver was found (cudaGetDeviceCount: {})",
                                   cudaGetErrorString(err));
            default:
                return fmt::format("the CUDA runtime cannot use the GPU (cudaGetDeviceCount: {})",
                                   cudaGetErrorString(err));
        }
    }
    if (n == 0) return "no NVIDIA GPU or driver was found (cudaGetDeviceCount reports 0 devices)";
    return {};
}

std::shared_ptr<Device> open_cuda_device(int index, const CudaDeviceOptions& options) {
    const int n = cuda_device_count();
    if (n == 0) {
        throw Error(ErrorCode::NoDevice,
                    fmt::format("cannot open GPU {}: {}; use --device cpu", index, cuda_unavailable_reason()));
    }
    if (index < 0 || index >= n) {
        throw Error(
            ErrorCode::NoDevice,
            fmt::format("GPU index {} does not exist: {} CUDA device(s) present (indices 0..{})", index, n, n - 1));
    }
    return std::make_shared<CudaDevice>(index, options);
}

}  // namespace orcd::device
