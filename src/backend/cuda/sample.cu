// The sampling chain on the device (see sample_chain.h for its contract; sample_kernels.h for the launches).
// Penalty on a copy of the logits -> a stable descending radix sort of (logit, id) over the whole vocabulary, so the
// order is the host's (logit descending, ties by id ascending) -> one block of kSelectThreads walks the sorted
// survivors: top-k is a prefix length, top-p and the final pick are the first crossing of a cumulative sum (each
// thread sums a contiguous chunk in index order, a block scan orders the chunks), min-p the first index whose
// probability ratio to the top falls under min_p. The unnormalized probabilities are f32 (expf); their sums are
// double: with f32 sums the cumulative error over a flat 152k-token tail (~1e-6) is a sizeable fraction of one
// token's probability (~7e-6), and the device would pick a neighbour of the host's token in ~10% of such draws. With
// double sums the pick differs from the host's only where u, top_p or min_p lies within ~1e-9 of a boundary.
#include <cub/block/block_reduce.cuh>
#include <cub/block/block_scan.cuh>
#include <cub/device/device_radix_sort.cuh>

#include "backend/cuda/sample_kernels.h"

namespace orcd::backend::cuda::detail {

namespace {

constexpr int kSelectThreads = 1024;
constexpr int kCopyThreads = 256;

__global__ void iota_kernel(int32_t* ids, int64_t n) {
    const int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
    if (i < n) ids[i] = static_cast<int32_t>(i);
}

__global__ void copy_kernel(const float* __restrict__ x, int64_t n, float* __restrict__ y) {
    const int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
    if (i < n) y[i] = x[i];
}

// The window's ids are distinct (the host deduplicates them), so each logit is changed by one thread, once.
__global__ void penalty_kernel(float* work, const SampleHeader* h, const int32_t* window) {
    const float pen = h->repeat_penalty;
    if (pen == 1.f) return;
    for (int j = threadIdx.x; j < h->n_window; j += blockDim.x) {
        const float l = work[window[j]];
        work[window[j]] = l > 0.f ? l / pen : l * pen;
    }
}

using Scan = cub::BlockScan<double, kSelectThreads>;
using MinReduce = cub::BlockReduce<int, kSelectThreads>;

struct MinOp {
    __device__ int operator()(int a, int b) const { return a < b ? a : b; }
};

struct SelectShared {
    union {
        typename Scan::TempStorage scan;
        typename MinReduce::TempStorage reduce;
    } temp;
    int result;
};

// The smallest of every thread's `v`, in every thread.
__device__ int block_min(int v, SelectShared& sh) {
    const int m = MinReduce(sh.temp.reduce).Reduce(v, MinOp{});
    if (threadIdx.x == 0) sh.result = m;
    __syncthreads();
    const int r = sh.result;
    __syncthreads();  // temp and result free for the next use
    return r;
}

// The first index i in [0, n) where the cumulative sum of f(0..i) reaches frac x (the sum of all n): >= with
// kInclusive, > without; n when rounding leaves it short. Thread t sums the contiguous chunk t in index order, an
// exclusive block scan gives each chunk its start, and the walk repeats the chunk's sum from there.
template <bool kInclusive, class F>
__device__ int first_crossing(F f, int n, double frac, SelectShared& sh) {
    const int chunk = (n + kSelectThreads - 1) / kSelectThreads;
    const int lo = min(n, static_cast<int>(threadIdx.x) * chunk), hi = min(n, lo + chunk);
    double sum = 0.0;
    for (int i = lo; i < hi; ++i) sum += f(i);
    double start = 0.0, total = 0.0;
    Scan(sh.temp.scan).ExclusiveSum(sum, start, total);
    __syncthreads();
    const double threshold = frac * total;
    int first = n;
    double run = 0.0;
    for (int i = lo; i < hi; ++i) {
        run += f(i);
        const double cum = start + run;
        if (kInclusive ? cum >= threshold : cum > threshold) {
            first = i;
            break;
        }
    }
    return block_min(first, sh);
}

__global__ void __launch_bounds__(kSelectThreads)
    select_kernel(const float* __restrict__ keys, const int32_t* __restrict__ ids, int n,
                  const SampleHeader* __restrict__ h, int32_t* out) {
    __shared__ SelectShared sh;
    const SampleHeader p = *h;
    if (!(p.temperature > 0.f)) {  // greedy: the first after the stable sort is the lowest id of the largest logit
        if (threadIdx.x == 0) *out = ids[0];
        return;
    }
    int keep = p.top_k > 0 && p.top_k < n ? p.top_k : n;
    const float mx = keys[0];
    if (p.top_p < 1.f) {
        const int k = first_crossing<true>([&](int i) { return static_cast<double>(expf(keys[i] - mx)); }, keep,
                                           static_cast<double>(p.top_p), sh);
        if (k < keep) keep = k + 1;
    }
    if (p.min_p > 0.f) {
        // p_i / p_max = exp(l_i - max): the survivors are the prefix before the first ratio under min_p.
        int first = keep;
        for (int i = 1 + static_cast<int>(threadIdx.x); i < keep; i += kSelectThreads) {
            if (expf(keys[i] - mx) < p.min_p) {
                first = i;
                break;
            }
        }
        keep = block_min(first, sh);
    }
    const float temp = p.temperature;
    const int pick =
        first_crossing<false>([&](int i) { return static_cast<double>(expf((keys[i] - mx) / temp)); }, keep, p.u, sh);
    if (threadIdx.x == 0) *out = ids[pick < keep ? pick : keep - 1];
}

unsigned blocks(int64_t n, int threads) { return static_cast<unsigned>((n + threads - 1) / threads); }

}  // namespace

void launch_iota(int32_t* ids, int64_t n, cudaStream_t s) {
    iota_kernel<<<blocks(n, kCopyThreads), kCopyThreads, 0, s>>>(ids, n);
}

size_t sort_temp_bytes(int64_t n) {
    size_t bytes = 0;
    cub::DeviceRadixSort::SortPairsDescending(nullptr, bytes, static_cast<const float*>(nullptr),
                                              static_cast<float*>(nullptr), static_cast<const int32_t*>(nullptr),
                                              static_cast<int32_t*>(nullptr), static_cast<int>(n));
    return bytes;
}

void launch_sample_chain(const float* logits, int64_t n, const SampleBuffers& b, cudaStream_t s) {
    copy_kernel<<<blocks(n, kCopyThreads), kCopyThreads, 0, s>>>(logits, n, b.work);
    penalty_kernel<<<1, 256, 0, s>>>(b.work, b.header, b.window);
    size_t temp_bytes = b.sort_temp_bytes;
    // Radix sort is stable: equal logits keep the iota order, ids ascending, as the host's tie rule.
    cub::DeviceRadixSort::SortPairsDescending(b.sort_temp, temp_bytes, b.work, b.keys, b.iota, b.ids,
                                              static_cast<int>(n), 0, 32, s);
    select_kernel<<<1, kSelectThreads, 0, s>>>(b.keys, b.ids, static_cast<int>(n), b.header, b.out);
}

}  // namespace orcd::backend::cuda::detail
