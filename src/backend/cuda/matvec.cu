// Fused dequantize-and-dot matrix-vector kernels (matvec.h): the checked entry point, its launches and kernels.
//
// Quantized types (block layouts of 18 to 210 bytes, most only 2-byte aligned) go through a staged tile: a thread
// block takes R consecutive rows, which are one contiguous byte range of the matrix, copies that range into shared
// memory with 16-byte coalesced asynchronous copies (cp.async), then decodes from shared memory. The grid is
// persistent (as many blocks as fit on the SMs) and each block double-buffers its tiles: tile i+1 is in flight while
// tile i is decoded (measured: no gain over load-then-decode with 4 blocks per SM, but no loss, and it keeps the
// weight stream going while a block decodes; see bench/cuda/NOTES.md). R is chosen per launch so a tile is about kTileTarget bytes and every SM
// still gets tiles. When a tile has fewer rows than warps, several warps share a row and their partial sums are added
// in warp order. Every weight byte is read once; x (a few KB, shared by all rows) stays in L1, which the weight
// stream bypasses.
//
// Decoding gives each lane four consecutive elements at a time (see matvec_formats.cuh), reads their weight bytes
// from shared memory as one 32-bit word, unpacks the four values with masks, and avoids the int-to-float conversion
// unit (a quarter of the FMA rate on Hopper): one byte permute places a value in the mantissa of 2^23, and one exact
// add subtracts 2^23 plus the format's offset.
//
// All reductions (per-lane sums, the shuffle butterfly, the cross-warp sum) have a fixed order: no atomics, so the
// result is bit-identical from run to run.
#include "backend/cuda/matvec.h"

#include <algorithm>
#include <cstdlib>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "backend/cuda/matvec_formats.cuh"
#include "backend/cuda/tuning.h"
#include "common/error.h"
#include "device/cuda_check.h"
#include "device/device_query.h"

namespace orcd::cuda {

namespace {

using gguf::TensorType;
using namespace orcd::cuda::formats;
using ::orcd::device::sm_count;

constexpr int kThreads = 256;  // per block of the tiled kernel: 8 warps
constexpr int kWarps = kThreads / 32;
constexpr int kTileTarget = 16 * 1024;    // bytes of weights staged per block
constexpr int kMaxTileBytes = 48 * 1024;  // the default dynamic shared-memory limit, for both tile buffers

// Asynchronous 16-byte global-to-shared copies (cp.async, cached in L2 only, so the weight stream does not evict x
// from L1), committed in groups so that one tile can load while the previous one is decoded.
__device__ __forceinline__ void cp_async16(void* smem, const void* gmem) {
    const auto s = static_cast<uint32_t>(__cvta_generic_to_shared(smem));
    asm volatile("cp.async.cg.shared.global [%0], [%1], 16;\n" ::"r"(s), "l"(gmem) : "memory");
}
__device__ __forceinline__ void cp_async_commit() { asm volatile("cp.async.commit_group;\n" ::: "memory"); }
__device__ __forceinline__ void cp_async_wait_all_but_one() { asm volatile("cp.async.wait_group 1;\n" ::: "memory"); }

struct TileSpan {
    uintptr_t a0;  // 16-byte boundary at or below the tile's first byte
    int lead;      // bytes from a0 to the tile's first byte
    int n_chunks;  // 16-byte chunks from a0 covering the tile
    int64_t r0;    // first row
    int nr;        // rows in the tile
};

__device__ __forceinline__ TileSpan tile_span(const uint8_t* w, int64_t rows, int64_t rb, int rows_per_tile,
                                              int64_t t) {
    TileSpan s;
    s.r0 = t * rows_per_tile;
    s.nr = static_cast<int>(min(static_cast<int64_t>(rows_per_tile), rows - s.r0));
    const uintptr_t g0 = reinterpret_cast<uintptr_t>(w) + static_cast<uintptr_t>(s.r0 * rb);
    s.a0 = g0 & ~uintptr_t{15};
    s.lead = static_cast<int>(g0 - s.a0);
    s.n_chunks = static_cast<int>((g0 + static_cast<uintptr_t>(s.nr * rb) - s.a0 + 15) / 16);
    return s;
}

// Starts copying a tile into `buf`. A chunk that would reach past either end of the matrix (only the first and the
// last can) is copied byte by byte with ordinary loads and stores, visible after the next barrier.
__device__ __forceinline__ void stage_tile(const TileSpan& s, uintptr_t base, uintptr_t end, uint4* buf) {
    for (int c = threadIdx.x; c < s.n_chunks; c += kThreads) {
        const uintptr_t p = s.a0 + 16 * static_cast<uintptr_t>(c);
        if (p >= base && p + 16 <= end) {
            cp_async16(buf + c, reinterpret_cast<const void*>(p));
        } else {
            uint8_t* dst = reinterpret_cast<uint8_t*>(buf + c);
            for (int k = 0; k < 16; ++k) {
                if (p + k >= base && p + k < end) dst[k] = *reinterpret_cast<const uint8_t*>(p + k);
            }
        }
    }
}

// The staged tile kernel (see the top of the file), persistent: block b handles tiles b, b + gridDim.x, ... and
// double-buffers them, copying tile i+1 while decoding tile i. Tile t covers rows [t*R, min(t*R + R, rows)).
template <typename T>
__global__ void __launch_bounds__(kThreads)
    matvec_tiled(const uint8_t* __restrict__ w, int64_t rows, int64_t cols, int rows_per_tile, int buf_chunks,
                 const float* __restrict__ x, float* __restrict__ y) {
    extern __shared__ uint4 tiles[];  // two buffers of buf_chunks chunks
    __shared__ float partial[kWarps];
    const int64_t rb = cols / T::kBlockElems * static_cast<int64_t>(sizeof(typename T::Block));
    const int64_t n_tiles = (rows + rows_per_tile - 1) / rows_per_tile;
    const uintptr_t base = reinterpret_cast<uintptr_t>(w), end = base + static_cast<uintptr_t>(rows * rb);
    const int64_t n_groups = cols / 4;
    const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;

    int64_t t = blockIdx.x;
    if (t < n_tiles) stage_tile(tile_span(w, rows, rb, rows_per_tile, t), base, end, tiles);
    cp_async_commit();
    for (int iter = 0; t < n_tiles; t += gridDim.x, ++iter) {
        uint4* cur = tiles + (iter & 1) * buf_chunks;
        uint4* nxt = tiles + ((iter + 1) & 1) * buf_chunks;
        const int64_t t_next = t + gridDim.x;
        if (t_next < n_tiles) stage_tile(tile_span(w, rows, rb, rows_per_tile, t_next), base, end, nxt);
        cp_async_commit();            // (an empty group on the last tile keeps the wait below uniform)
        cp_async_wait_all_but_one();  // this thread's copies of the current tile have landed
        __syncthreads();              // ... and every other thread's

        const TileSpan s = tile_span(w, rows, rb, rows_per_tile, t);
        const uint8_t* staged = reinterpret_cast<const uint8_t*>(cur) + s.lead;
        if (s.nr >= kWarps) {
            // A warp per row.
            for (int r = warp; r < s.nr; r += kWarps) {
                const auto* blocks = reinterpret_cast<const typename T::Block*>(staged + r * rb);
                const float acc = warp_sum(row_partial<T>(blocks, x, lane, n_groups, 32));
                if (lane == 0) y[s.r0 + r] = acc;
            }
        } else {
            // wpr warps per row (a power of two); their sums are added in warp order.
            int wpr = kWarps;
            while (wpr * s.nr > kWarps) wpr >>= 1;
            const int r = warp / wpr, sub = warp % wpr;
            float acc = 0.0f;
            if (r < s.nr) {
                const auto* blocks = reinterpret_cast<const typename T::Block*>(staged + r * rb);
                acc = warp_sum(row_partial<T>(blocks, x, sub * 32 + lane, n_groups, 32 * wpr));
            }
            if (lane == 0) partial[warp] = acc;
            __syncthreads();
            if (threadIdx.x < s.nr) {
                float sum = 0.0f;
                for (int k = 0; k < wpr; ++k) sum += partial[threadIdx.x * wpr + k];
                y[s.r0 + threadIdx.x] = sum;
            }
        }
        __syncthreads();  // every warp is done with `cur` (and `partial`) before they are refilled
    }
}

// Fallback for rows too long to stage (over 48 KB) or a matrix that is not 2-byte aligned: a warp per row reading
// straight from global memory.
constexpr int kFallbackWarps = 4;
template <typename T>
__global__ void __launch_bounds__(kFallbackWarps * 32)
    matvec_direct(const uint8_t* __restrict__ w, int64_t rows, int64_t cols, const float* __restrict__ x,
                  float* __restrict__ y) {
    const int lane = threadIdx.x % 32;
    const int64_t row = static_cast<int64_t>(blockIdx.x) * kFallbackWarps + threadIdx.x / 32;
    if (row >= rows) return;
    const int64_t blocks_per_row = cols / T::kBlockElems;
    const auto* blocks =
        reinterpret_cast<const typename T::Block*>(w + row * blocks_per_row * sizeof(typename T::Block));
    const float acc = warp_sum(row_partial<T>(blocks, x, lane, cols / 4, 32));
    if (lane == 0) y[row] = acc;
}

// Plain float types, a warp per row. Vectorized: each lane reads 16 bytes (4 f32 or 8 f16/bf16) per step, kUnroll
// steps issued before use; needs a 16-byte aligned matrix and row length. Scalar otherwise.
template <typename E, bool kBf16>
__device__ __forceinline__ float elem(E v) {
    if constexpr (sizeof(E) == 4)
        return v;
    else if constexpr (kBf16)
        return bf2f(v);
    else
        return h2f(v);
}

constexpr int kPlainWarps = 4;
template <typename E, bool kBf16>
__global__ void __launch_bounds__(kPlainWarps * 32)
    matvec_plain(const E* __restrict__ w, int64_t rows, int64_t cols, const float* __restrict__ x,
                 float* __restrict__ y, bool vectorized) {
    const int lane = threadIdx.x % 32;
    const int64_t row = static_cast<int64_t>(blockIdx.x) * kPlainWarps + threadIdx.x / 32;
    if (row >= rows) return;
    const E* wr = w + row * cols;
    float acc = 0.0f;
    if (vectorized) {
        constexpr int kPer = 16 / sizeof(E);  // elements per 16-byte chunk
        constexpr int kUnroll = 4;
        const int64_t n_chunks = cols / kPer;
        const uint4* wv = reinterpret_cast<const uint4*>(wr);
        for (int64_t c0 = lane; c0 < n_chunks; c0 += 32 * kUnroll) {
            uint4 v[kUnroll];
#pragma unroll
            for (int u = 0; u < kUnroll; ++u) {
                if (c0 + 32 * u < n_chunks) v[u] = __ldg(wv + c0 + 32 * u);
            }
#pragma unroll
            for (int u = 0; u < kUnroll; ++u) {
                const int64_t c = c0 + 32 * u;
                if (c >= n_chunks) continue;
                const E* e = reinterpret_cast<const E*>(&v[u]);
                const float* xc = x + c * kPer;
#pragma unroll
                for (int k = 0; k < kPer; k += 4) {
                    const float4 xv = ld4(xc + k);
                    acc += elem<E, kBf16>(e[k]) * xv.x;
                    acc += elem<E, kBf16>(e[k + 1]) * xv.y;
                    acc += elem<E, kBf16>(e[k + 2]) * xv.z;
                    acc += elem<E, kBf16>(e[k + 3]) * xv.w;
                }
            }
        }
    } else {
        for (int64_t c = lane; c < cols; c += 32) acc += elem<E, kBf16>(wr[c]) * x[c];
    }
    acc = warp_sum(acc);
    if (lane == 0) y[row] = acc;
}

// Target tile size: kTileTarget, or ORCD_MATVEC_TILE_BYTES (1 KiB .. 22 KiB) for tuning runs of the bandwidth bench.
int64_t tile_target() { return tuning::matvec_tile_bytes(kTileTarget); }

// Resident blocks of matvec_tiled<T> per SM for a given dynamic shared-memory size (the persistent grid's size).
// Cached per size, so that after the first launch of a shape no runtime query happens (a decode step captured into
// a CUDA graph then makes only launches).
template <typename T>
int blocks_per_sm(size_t smem) {
    static std::mutex mu;
    static std::vector<std::pair<size_t, int>> cache;
    std::lock_guard lock(mu);
    for (const auto& [bytes, n] : cache) {
        if (bytes == smem) return n;
    }
    int n = 0;
    if (cudaOccupancyMaxActiveBlocksPerMultiprocessor(&n, matvec_tiled<T>, kThreads, smem) != cudaSuccess || n < 1) {
        n = 1;
    }
    cache.emplace_back(smem, n);
    return n;
}

template <typename T>
void launch_blocks(const void* w, int64_t rows, int64_t cols, const float* x, float* y, cudaStream_t s) {
    const auto* wb = static_cast<const uint8_t*>(w);
    const int64_t rb = cols / T::kBlockElems * static_cast<int64_t>(sizeof(typename T::Block));
    if (2 * (rb + 16) > kMaxTileBytes || reinterpret_cast<uintptr_t>(w) % 2 != 0) {
        matvec_direct<T>
            <<<static_cast<unsigned>((rows + kFallbackWarps - 1) / kFallbackWarps), kFallbackWarps * 32, 0, s>>>(
                wb, rows, cols, x, y);
        return;
    }
    // Rows per tile: about tile_target() bytes, a multiple of the warp count when above it (no round with idle
    // warps), and few enough that every SM gets tiles.
    int64_t r = std::max<int64_t>(1, tile_target() / rb);
    if (r > kWarps) r -= r % kWarps;
    r = std::min(r, std::max<int64_t>(1, rows / (2 * sm_count())));
    r = std::min(r, (kMaxTileBytes / 2 - 16) / rb);
    const int buf_chunks = static_cast<int>((r * rb + 15) / 16 + 1);  // +1: a tile may start mid-chunk
    const size_t smem = 2 * static_cast<size_t>(buf_chunks) * 16;
    const int64_t n_tiles = (rows + r - 1) / r;
    const int64_t grid = std::min<int64_t>(n_tiles, static_cast<int64_t>(sm_count()) * blocks_per_sm<T>(smem));
    matvec_tiled<T>
        <<<static_cast<unsigned>(grid), kThreads, smem, s>>>(wb, rows, cols, static_cast<int>(r), buf_chunks, x, y);
}

template <typename E, bool kBf16>
void launch_plain(const void* w, int64_t rows, int64_t cols, const float* x, float* y, cudaStream_t s) {
    const bool vectorized = reinterpret_cast<uintptr_t>(w) % 16 == 0 && (cols * sizeof(E)) % 16 == 0;
    matvec_plain<E, kBf16><<<static_cast<unsigned>((rows + kPlainWarps - 1) / kPlainWarps), kPlainWarps * 32, 0, s>>>(
        static_cast<const E*>(w), rows, cols, x, y, vectorized);
}

// Launches the kernel for `type`; false when there is none. Arguments are validated by the caller.
bool launch_matvec(TensorType type, const void* w, int64_t rows, int64_t cols, const float* x, float* y,
                   cudaStream_t s) {
    switch (type) {
        case TensorType::F32: launch_plain<float, false>(w, rows, cols, x, y, s); return true;
        case TensorType::F16: launch_plain<uint16_t, false>(w, rows, cols, x, y, s); return true;
        case TensorType::BF16: launch_plain<uint16_t, true>(w, rows, cols, x, y, s); return true;
        default: break;
    }
    bool launched = false;
    visit_format(type, [&](auto f) {
        if constexpr (HasMatvec<decltype(f)>) {
            launch_blocks<decltype(f)>(w, rows, cols, x, y, s);
            launched = true;
        }
    });
    return launched;
}

}  // namespace

bool matvec_supported(TensorType type) {
    return formats::visit_matvec_format(type, [](auto) {});
}

void matvec(TensorType type, const void* w, int64_t rows, int64_t cols, const float* x, float* y, cudaStream_t s) {
    const std::string name(gguf::type_name(type));
    if (!matvec_supported(type)) {
        throw Error(ErrorCode::UnsupportedTensorType, "no CUDA matrix-vector kernel for tensor type " + name);
    }
    const int64_t block = gguf::traits(type).block_elems;
    if (rows <= 0 || cols <= 0 || cols % block != 0) {
        throw Error(ErrorCode::InvalidArgument,
                    "matvec: " + std::to_string(rows) + " x " + std::to_string(cols) + " is not a valid " + name +
                        " matrix (row length must be a positive multiple of " + std::to_string(block) + ")");
    }
    // The kernels read x four floats at a time.
    if (reinterpret_cast<uintptr_t>(x) % 16 != 0) {
        throw Error(ErrorCode::InvalidArgument, "matvec: x must be 16-byte aligned");
    }
    launch_matvec(type, w, rows, cols, x, y, s);
    ORCD_CUDA_CHECK(cudaGetLastError());
}

}  // namespace orcd::cuda
