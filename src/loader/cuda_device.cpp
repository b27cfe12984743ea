// CudaDevice: the Device interface over the CUDA runtime. Every runtime call goes through ORCD_CUDA_CHECK (or
// ORCD_CUDA_WARN in destructors); nothing here allocates managed or host-mapped memory.
#include "loader/cuda_device.h"

#include <cuda_runtime_api.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <functional>

#include <fmt/format.h>

#include "common/error.h"
#include "loader/checksum_kernel.h"
#include "loader/cuda_check.h"

namespace orcd::loader {

void throw_cuda_error(cudaError_t err, const char* call, const char* file, int line, ErrorCode code) {
    throw Error(code, fmt::format("CUDA error {} ({}) in {} at {}:{}: {}", static_cast<int>(err),
                                  cudaGetErrorName(err), call, file, line, cudaGetErrorString(err)));
}

void report_cuda_error(cudaError_t err, const char* call, const char* file, int line) noexcept {
    std::fprintf(stderr, "orcd: CUDA error %d (%s) in %s at %s:%d: %s\n", static_cast<int>(err),
                 cudaGetErrorName(err), call, file, line, cudaGetErrorString(err));
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
    explicit CudaDevice(int index) : index_(index) {
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
        void* p = nullptr;
        ORCD_CUDA_CHECK_AS(ErrorCode::DeviceAlloc, cudaHostAlloc(&p, bytes, cudaHostAllocDefault));
        return std::make_unique<CudaPinned>(static_cast<std::byte*>(p), bytes);
    }

    std::unique_ptr<Stream> create_stream() override {
        return std::make_unique<CudaStream>(index_, [this](uint64_t n) { return fault_copy(n); });
    }

    std::unique_ptr<Event> create_event() override { return std::make_unique<CudaEvent>(index_); }

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
        r.detail = fmt::format("cudaPointerGetAttributes: type {}, device {}, hostPointer {}", type, a.device,
                               a.hostPointer);
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
        ORCD_CUDA_CHECK(cudaMemcpy(jobs_dev->data(), jobs.data(), jobs.size() * sizeof(ChecksumJob),
                                   cudaMemcpyHostToDevice));
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
        return fmt::format("no CUDA device: cudaGetDeviceCount: {}", cudaGetErrorString(err));
    }
    if (n == 0) return "no CUDA device: cudaGetDeviceCount reports 0 devices";
    return {};
}

std::shared_ptr<Device> open_cuda_device(int index) {
    const int n = cuda_device_count();
    if (n == 0) throw Error(ErrorCode::NoDevice, cuda_unavailable_reason() + " (use --device host for a dry run)");
    if (index < 0 || index >= n) {
        throw Error(ErrorCode::NoDevice,
                    fmt::format("GPU index {} does not exist: {} CUDA device(s) present (indices 0..{})", index, n,
                                n - 1));
    }
    return std::make_shared<CudaDevice>(index);
}

}  // namespace orcd::loader
