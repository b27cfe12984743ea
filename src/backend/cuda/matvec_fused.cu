// Fused decode matvec (matvec_fused.h): the checked entry point, its launch and kernel. One kernel for every type: a
// warp looks up which row source its row is in and switches on that source's type (warp-uniform, so no divergence),
// which lets Q, K and V matrices of different types share one launch and the gate/up rows of a SwiGLU come from one
// fused matrix or from two.
//
// Block of 8 warps: (1) prefetches its first rows into L2 (so the weight fetch overlaps the prologue), (2) stages x
// in shared memory, normalized when a norm is given (block_rms_scale, norm.cuh, as rms_norm_kernel computes it, so
// the normalized values are bit-identical to the separate kernel's), (3) computes 8 / wpr output
// rows at a time, wpr warps per row, each lane taking groups of 4 consecutive elements (the formats of
// matvec_formats.cuh) straight from global memory, (4) adds the wpr partial sums in warp order and applies the
// epilogue. The grid is capped at what fits on the GPU at once; blocks then loop over the remaining rows.
#include "backend/cuda/matvec_fused.h"

#include <algorithm>
#include <cstdlib>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "backend/cuda/matvec_common.cuh"
#include "backend/cuda/matvec_formats.cuh"
#include "backend/cuda/norm.cuh"
#include "backend/cuda/tuning.h"
#include "common/error.h"
#include "device/cuda_check.h"
#include "device/device_query.h"

namespace orcd::cuda {

namespace {

using namespace orcd::cuda::formats;
using gguf::TensorType;
using ::orcd::device::sm_count;

constexpr int kThreads = 256;
constexpr int kWarps = kThreads / 32;
constexpr int64_t kFusedMaxCols = 16384;  // x is staged in shared memory

struct Params {
    const float* x;
    const float* norm;
    float eps;
    int cols;
    int n_src;
    MatvecSource src[3];
    int epilogue;  // MatvecEpilogue
    float* y;
    int64_t n_out;  // output rows
    int wpr;        // warps per output row: 1, 2, 4 or 8
};

// This lane's share of the dot product of one row with xs: groups first, first + stride, ... (of 4 consecutive
// elements each; consecutive lanes take consecutive groups, so the warp's x reads are contiguous), read straight
// from global memory.
template <typename T>
__device__ __forceinline__ float row_dot(const uint8_t* row, const float* xs, int first, int n_groups, int stride) {
    constexpr int kGroups = T::kBlockElems / 4;
    const auto* blocks = reinterpret_cast<const typename T::Block*>(row);
    float acc = 0.0f;
#pragma unroll 4
    for (int i = first; i < n_groups; i += stride) {
        const float4 xv = *reinterpret_cast<const float4*>(xs + 4 * i);
        if constexpr (T::kBlockElems == 4) {
            acc = T::dot_acc(blocks[i], xv, acc);  // plain floats: the plain matvec kernel's order
        } else {
            acc += T::dot4(blocks[i / kGroups], i % kGroups, xv);
        }
    }
    return acc;
}

__device__ float row_partial(const Params& p, int64_t r, const float* xs, int first, int stride) {
    const MatvecSource s = locate_source(p, r);
    const uint8_t* row = s.w + r * s.row_bytes;
    const int n = p.cols / 4;
    float acc = __int_as_float(0x7fc00000);  // stays NaN only for a type the host refuses
    visit_matvec_format(s.type, [&](auto f) { acc = row_dot<decltype(f)>(row, xs, first, n, stride); });
    return acc;
}

__device__ __forceinline__ void prefetch_l2(const void* p) { asm volatile("prefetch.global.L2 [%0];" ::"l"(p)); }

__global__ void __launch_bounds__(kThreads) fused_matvec_kernel(const Params p) {
    extern __shared__ float4 xs4[];  // x: cols floats
    float* xs = reinterpret_cast<float*>(xs4);
    __shared__ double red[kThreads];
    __shared__ float part[2][kWarps];
    const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
    const int per_iter = kWarps / p.wpr;  // output rows per block per iteration
    const int slot = warp / p.wpr, sub = warp % p.wpr;
    const bool swiglu = p.epilogue == 2;
    const int n_rows_per_out = swiglu ? 2 : 1;

    // (1) Start this block's first rows on their way from DRAM into L2 while x is staged.
    {
        const int64_t first = static_cast<int64_t>(blockIdx.x) * per_iter;
        for (int k = warp; k < per_iter * n_rows_per_out; k += kWarps) {
            int64_t r = first + k % per_iter;
            if (r >= p.n_out) continue;
            if (k >= per_iter) r += p.n_out;
            const MatvecSource s = locate_source(p, r);
            const uint8_t* row = s.w + r * s.row_bytes;
            for (int64_t off = 128 * lane; off < s.row_bytes + 127; off += 32 * 128) {
                prefetch_l2(row + min(off, s.row_bytes - 1));
            }
        }
    }

    // (2) x into shared memory, normalized as rms_norm_kernel does it.
    const int cols = p.cols;
    if (p.norm) {
        const float scale = block_rms_scale<kThreads>(p.x, cols, p.eps, red);
        for (int i = threadIdx.x; i < cols; i += kThreads) xs[i] = __fmul_rn(__fmul_rn(p.x[i], scale), p.norm[i]);
    } else {
        for (int i = threadIdx.x; i < cols / 4; i += kThreads) xs4[i] = reinterpret_cast<const float4*>(p.x)[i];
    }
    __syncthreads();

    // (3) + (4)
    for (int64_t base = static_cast<int64_t>(blockIdx.x) * per_iter; base < p.n_out;
         base += static_cast<int64_t>(gridDim.x) * per_iter) {
        const int64_t o = base + slot;
        float a = 0.0f, b = 0.0f;
        if (o < p.n_out) {
            a = warp_sum(row_partial(p, o, xs, sub * 32 + lane, 32 * p.wpr));
            if (swiglu) b = warp_sum(row_partial(p, o + p.n_out, xs, sub * 32 + lane, 32 * p.wpr));
        }
        int64_t out = o;
        if (p.wpr > 1) {
            if (lane == 0) {
                part[0][warp] = a;
                part[1][warp] = b;
            }
            __syncthreads();
            out = base + threadIdx.x;
            if (threadIdx.x < per_iter) {
                a = b = 0.0f;
                for (int k = 0; k < p.wpr; ++k) {
                    a += part[0][threadIdx.x * p.wpr + k];
                    b += part[1][threadIdx.x * p.wpr + k];
                }
            }
            __syncthreads();  // part is refilled by the next iteration
        }
        const bool writer = p.wpr > 1 ? static_cast<int>(threadIdx.x) < per_iter : lane == 0;
        if (writer && out < p.n_out) {
            matvec_epilogue_store(p.y, out, a, b, p.epilogue);
        }
    }
}

// Resident blocks per SM for a dynamic shared-memory size, cached (no runtime query once a shape has run, so a
// captured graph makes only launches). Raises the kernel's dynamic shared-memory limit the first time.
int blocks_per_sm(size_t smem) {
    static std::mutex mu;
    static std::vector<std::pair<size_t, int>> cache;
    static bool raised = false;
    std::lock_guard lock(mu);
    for (const auto& [bytes, n] : cache) {
        if (bytes == smem) return n;
    }
    if (!raised) {
        cudaFuncSetAttribute(fused_matvec_kernel, cudaFuncAttributeMaxDynamicSharedMemorySize,
                             static_cast<int>(kFusedMaxCols * sizeof(float)));
        raised = true;
    }
    int n = 0;
    if (cudaOccupancyMaxActiveBlocksPerMultiprocessor(&n, fused_matvec_kernel, kThreads, smem) != cudaSuccess ||
        n < 1) {
        n = 1;
    }
    cache.emplace_back(smem, n);
    return n;
}

// Bytes and elements per block of a type's format (0 bytes: no kernel).
int64_t block_bytes(TensorType t) {
    int64_t bytes = 0;
    visit_matvec_format(t, [&](auto f) { bytes = sizeof(typename decltype(f)::Block); });
    return bytes;
}

int64_t block_elems(TensorType t) {
    int64_t elems = 0;
    visit_matvec_format(t, [&](auto f) { elems = decltype(f)::kBlockElems; });
    return elems;
}

bool fused_matvec_type_supported(TensorType t) { return block_bytes(t) > 0; }

}  // namespace

int fused_matvec_warps_per_row(int64_t n_out, int64_t cols) {
    if (const int forced = tuning::matvec_warps_per_row()) return forced;
    // Enough warps in flight to cover the GPU (~16 per SM) while each lane still has a group of 4 to decode.
    int wpr = 1;
    while (wpr < kWarps && n_out * wpr < 16LL * sm_count() && cols / 4 >= 32LL * 2 * wpr) wpr *= 2;
    return wpr;
}

bool fused_matvec_supported(const FusedMatvec& op) {
    if (op.n_src < 1 || op.n_src > 3 || op.cols <= 0 || op.cols > kFusedMaxCols) return false;
    for (int i = 0; i < op.n_src; ++i) {
        if (!fused_matvec_type_supported(op.src[i].type)) return false;
    }
    return true;
}

int64_t check_row_sources(const RowSource* src, int n_src, int64_t cols, MatvecEpilogue epilogue,
                          bool (*supported)(gguf::TensorType), const char* op_name, const char* kind) {
    auto bad = [op_name](const std::string& what) {
        throw Error(ErrorCode::InvalidArgument, std::string(op_name) + ": " + what);
    };
    int64_t rows = 0;
    for (int i = 0; i < n_src; ++i) {
        const RowSource& s = src[i];
        const std::string name(gguf::type_name(s.type));
        if (!supported(s.type)) {
            throw Error(ErrorCode::UnsupportedTensorType,
                        "no " + std::string(kind) + " kernel for tensor type " + name);
        }
        const int64_t be = gguf::traits(s.type).block_elems;
        if (cols % be != 0) {
            bad("row length " + std::to_string(cols) + " is not a multiple of the " + name + " block size " +
                std::to_string(be));
        }
        const std::string source = "row source " + std::to_string(i);
        if (s.rows <= 0 || s.w == nullptr) bad(source + " has " + std::to_string(s.rows) + " rows");
        if (reinterpret_cast<uintptr_t>(s.w) % 2 != 0) bad(source + " is not 2-byte aligned");
        rows += s.rows;
    }
    if (epilogue == MatvecEpilogue::SwiGLU && rows % 2 != 0) {
        bad("SwiGLU needs [gate | up] rows, an even count; got " + std::to_string(rows));
    }
    return rows;
}

void fused_matvec(const FusedMatvec& op, cudaStream_t s) {
    auto bad = [](const std::string& what) { throw Error(ErrorCode::InvalidArgument, "fused_matvec: " + what); };
    if (op.n_src < 1 || op.n_src > 3) bad("needs 1 to 3 row sources, got " + std::to_string(op.n_src));
    if (op.cols <= 0 || op.cols > kFusedMaxCols) {
        bad("row length " + std::to_string(op.cols) + " outside 1 .. " + std::to_string(kFusedMaxCols) +
            " (x is staged in shared memory)");
    }
    if (op.cols % 4 != 0) bad("row length " + std::to_string(op.cols) + " is not a multiple of 4");
    check_row_sources(op.src, op.n_src, op.cols, op.epilogue, fused_matvec_type_supported, "fused_matvec",
                      "fused CUDA matvec");
    if (reinterpret_cast<uintptr_t>(op.x) % 16 != 0) bad("x must be 16-byte aligned");

    Params p{};
    p.x = op.x;
    p.norm = op.norm;
    p.eps = op.eps;
    set_row_sources(p, op, block_bytes, block_elems);
    p.wpr = fused_matvec_warps_per_row(p.n_out, op.cols);
    const size_t smem = static_cast<size_t>(op.cols) * sizeof(float);
    const int per_iter = kWarps / p.wpr;
    const int64_t iters = (p.n_out + per_iter - 1) / per_iter;
    const int64_t grid = std::min<int64_t>(iters, static_cast<int64_t>(sm_count()) * blocks_per_sm(smem));
    fused_matvec_kernel<<<static_cast<unsigned>(grid), kThreads, smem, s>>>(p);
    ORCD_CUDA_CHECK(cudaGetLastError());
}

}  // namespace orcd::cuda
