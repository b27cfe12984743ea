#include "device/checksum.h"
#include "device/checksum_kernel.h"

namespace orcd::device {

namespace {

constexpr unsigned kThreads = 256;

// One job per blockIdx.y; blocks along x stride over the job's 8-byte words. Each block reduces its partial sums and
// adds them with one 64-bit integer atomic: integer addition is exact and order-free, so the result is deterministic.
__global__ void checksum_kernel(const ChecksumJob* jobs, unsigned long long* out) {
    const ChecksumJob job = jobs[blockIdx.y];
    const unsigned long long n_full = job.bytes / 8;
    const unsigned long long tail = job.bytes % 8;
    const bool aligned = (reinterpret_cast<uintptr_t>(job.ptr) % 8) == 0;
    unsigned long long sum = 0;
    const unsigned long long stride = static_cast<unsigned long long>(gridDim.x) * blockDim.x;
    for (unsigned long long w = blockIdx.x * blockDim.x + threadIdx.x; w < n_full; w += stride) {
        uint64_t v;
        if (aligned) {
            v = reinterpret_cast<const uint64_t*>(job.ptr)[w];
        } else {
            v = 0;
            for (int b = 0; b < 8; ++b) v |= static_cast<uint64_t>(job.ptr[w * 8 + b]) << (8 * b);
        }
        sum += checksum_mix(v, w);
    }
    if (tail && blockIdx.x == 0 && threadIdx.x == 0) {
        uint64_t v = 0;
        for (unsigned long long b = 0; b < tail; ++b) v |= static_cast<uint64_t>(job.ptr[n_full * 8 + b]) << (8 * b);
        sum += checksum_mix(v, n_full);
    }
    for (int o = 16; o > 0; o /= 2) sum += __shfl_down_sync(0xffffffffu, sum, o);
    __shared__ unsigned long long warp_sums[kThreads / 32];
    if (threadIdx.x % 32 == 0) warp_sums[threadIdx.x / 32] = sum;
    __syncthreads();
    if (threadIdx.x == 0) {
        unsigned long long block = 0;
        for (unsigned i = 0; i < kThreads / 32; ++i) block += warp_sums[i];
        atomicAdd(&out[blockIdx.y], block);
    }
}

}  // namespace

cudaError_t launch_checksums(const ChecksumJob* jobs_device, unsigned n_jobs, unsigned long long* out_device,
                             unsigned long long max_bytes, cudaStream_t stream) {
    if (n_jobs == 0) return cudaSuccess;
    cudaError_t err = cudaMemsetAsync(out_device, 0, n_jobs * sizeof(unsigned long long), stream);
    if (err != cudaSuccess) return err;
    // Enough blocks along x for the largest job (capped: the grid-stride loop covers the rest).
    const unsigned long long words = (max_bytes + 7) / 8;
    const unsigned long long want = (words + kThreads - 1) / kThreads;
    const unsigned bx = static_cast<unsigned>(want < 1024 ? (want == 0 ? 1 : want) : 1024);
    // gridDim.y is limited to 65535; launch in slices of jobs.
    for (unsigned first = 0; first < n_jobs; first += 65535) {
        const unsigned n = n_jobs - first < 65535 ? n_jobs - first : 65535;
        checksum_kernel<<<dim3(bx, n), kThreads, 0, stream>>>(jobs_device + first, out_device + first);
        err = cudaGetLastError();
        if (err != cudaSuccess) return err;
    }
    return cudaSuccess;
}

}  // namespace orcd::device
