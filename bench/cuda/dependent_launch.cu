// What one dependent kernel costs on this GPU when it does next to nothing: the floor under each of a single-stream
// decode step's ~270 launches (issue 19, docs/PERF.md). Captures a CUDA graph of kKernels kernels on one stream, each
// depending on the one before, and times its replays with events:
//   empty       the kernel only waits for its predecessor (pdl_wait) and lets the next one be scheduled (pdl_trigger);
//   round trip  every block also reads the whole vector the previous kernel wrote (n floats, from L2), reduces it and
//               writes its share of the next vector: the least a dependent decode phase does (a quantization reads its
//               input and sums its squares), the dependency carried through memory as in the decode.
// Each at the decode's grid sizes (4 blocks: a quantization of 896 values; one block a SM; 4 a SM: the matvecs'), with
// programmatic dependent launch (pdl.cuh, as the decode launches) and without. Prints one table; not a test.
// With --profile it only launches each kind at each grid 8 times, outside graphs, for ncu to time each kernel alone
// (scripts/device_launch_floor.sh).
#include <cuda_runtime.h>

#include <cstdio>
#include <string_view>

#include "backend/cuda/pdl.cuh"
#include "bench_check.h"

namespace {

using orcd::cuda::launch_pdl;
using orcd::cuda::pdl_trigger;
using orcd::cuda::pdl_wait;

constexpr int kThreads = 256;
constexpr int kKernels = 256;  // per graph: about a Qwen2.5-0.5B token's 268
constexpr int kReplays = 20;

__global__ void __launch_bounds__(kThreads) empty_kernel(const float*, float*, int) {
    pdl_wait();
    pdl_trigger();
}

__global__ void __launch_bounds__(kThreads) round_trip_kernel(const float* in, float* out, int n) {
    __shared__ float warp_sums[kThreads / 32];
    pdl_wait();  // `in` is the predecessor's output, and it may still read `out`
    pdl_trigger();
    float s = 0.f;
    for (int i = static_cast<int>(threadIdx.x); i < n; i += kThreads) s += in[i] * in[i];
    for (int off = 16; off > 0; off >>= 1) s += __shfl_xor_sync(0xffffffffu, s, off);
    if (threadIdx.x % 32 == 0) warp_sums[threadIdx.x / 32] = s;
    __syncthreads();
    float total = 0.f;
    for (int w = 0; w < kThreads / 32; ++w) total += warp_sums[w];
    const float scale = rsqrtf(total / static_cast<float>(n) + 1e-6f);
    // This block's share of the next vector.
    const int per_block = (n + static_cast<int>(gridDim.x) - 1) / static_cast<int>(gridDim.x);
    const int begin = static_cast<int>(blockIdx.x) * per_block;
    for (int i = begin + static_cast<int>(threadIdx.x); i < n && i < begin + per_block; i += kThreads) {
        out[i] = in[i] * scale;
    }
}

using Kernel = void (*)(const float*, float*, int);

// Microseconds per kernel of a graph of kKernels `kernel` launches (grid blocks each), ping-ponging between a and b.
int time_chain(Kernel kernel, int grid, bool pdl, float* a, float* b, int n, cudaStream_t s, double& us) {
    cudaGraph_t graph;
    cudaGraphExec_t exec;
    CHECK(cudaStreamBeginCapture(s, cudaStreamCaptureModeThreadLocal));
    for (int k = 0; k < kKernels; ++k) {
        const float* in = k % 2 ? b : a;
        float* out = k % 2 ? a : b;
        if (pdl) {
            launch_pdl(kernel, dim3(grid), dim3(kThreads), 0, s, in, out, n);
        } else {
            kernel<<<grid, kThreads, 0, s>>>(in, out, n);
        }
    }
    CHECK(cudaStreamEndCapture(s, &graph));
    CHECK(cudaGraphInstantiate(&exec, graph, 0));
    for (int i = 0; i < 3; ++i) CHECK(cudaGraphLaunch(exec, s));
    cudaEvent_t t0, t1;
    CHECK(cudaEventCreate(&t0));
    CHECK(cudaEventCreate(&t1));
    CHECK(cudaEventRecord(t0, s));
    for (int i = 0; i < kReplays; ++i) CHECK(cudaGraphLaunch(exec, s));
    CHECK(cudaEventRecord(t1, s));
    CHECK(cudaEventSynchronize(t1));
    float ms = 0.f;
    CHECK(cudaEventElapsedTime(&ms, t0, t1));
    us = 1e3 * ms / (kReplays * kKernels);
    CHECK(cudaEventDestroy(t0));
    CHECK(cudaEventDestroy(t1));
    CHECK(cudaGraphExecDestroy(exec));
    CHECK(cudaGraphDestroy(graph));
    return 0;
}

}  // namespace

int main(int argc, char** argv) {
    const bool profile = argc > 1 && std::string_view(argv[1]) == "--profile";
    int n_dev = 0;
    if (cudaGetDeviceCount(&n_dev) != cudaSuccess || n_dev == 0) {
        std::printf("SKIP: no CUDA device\n");
        return 0;
    }
    int sms = 0;
    CHECK(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, 0));
    constexpr int kN = 896;  // floats: Qwen2.5-0.5B's residual stream
    float *a, *b;
    CHECK(cudaMalloc(&a, kN * sizeof(float)));
    CHECK(cudaMalloc(&b, kN * sizeof(float)));
    CHECK(cudaMemset(a, 0, kN * sizeof(float)));
    CHECK(cudaMemset(b, 0, kN * sizeof(float)));
    cudaStream_t s;
    CHECK(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking));
    if (!profile)
        std::printf("one CUDA graph of %d dependent kernels of %d threads, %d replays; %d SMs\n", kKernels, kThreads,
                    kReplays, sms);
    if (!profile) std::printf("%-12s %8s %14s %14s\n", "kernel", "blocks", "us/kernel PDL", "us/kernel none");
    const struct {
        const char* name;
        Kernel kernel;
    } kinds[] = {{"empty", empty_kernel}, {"round trip", round_trip_kernel}};
    for (const auto& kind : kinds) {
        for (const int grid : {4, sms, 4 * sms}) {
            if (profile) {
                for (int k = 0; k < 8; ++k) launch_pdl(kind.kernel, dim3(grid), dim3(kThreads), 0, s, a, b, kN);
                CHECK(cudaStreamSynchronize(s));
                continue;
            }
            double with = 0, without = 0;
            if (time_chain(kind.kernel, grid, true, a, b, kN, s, with) != 0) return 1;
            if (time_chain(kind.kernel, grid, false, a, b, kN, s, without) != 0) return 1;
            std::printf("%-12s %8d %14.2f %14.2f\n", kind.name, grid, with, without);
        }
    }
    CHECK(cudaStreamDestroy(s));
    CHECK(cudaFree(a));
    CHECK(cudaFree(b));
    return 0;
}
