// The int8 matvec for batches (matvec_q8.h) on tensor cores: a block decodes a 16-row tile of weight units once per
// unit and multiplies it into up to 32 columns with mma.sync m16n8k16 (s8 x s8 -> s32), instead of one __dp4a chain
// per (row, column) that re-reads the column's activation for every row (the dp4a kernel's cost at 16 and more
// columns: L1 wavefronts for the activation loads, docs/PERF.md "The profile that explains the gap").
//
// Batch invariance. A column's output must not depend on which kernel ran it (a batch below the threshold runs the
// dp4a kernel), so this kernel reproduces the dp4a kernel's floats exactly:
//   - per (row, column, unit) the integer sums are exact in both, and the float part is the one function both call
//     (matvec_q8_units.cuh);
//   - the dp4a kernel splits a row over tpr threads: thread s (a "leaf") adds units s, s + tpr, s + 2 tpr, ... in
//     that order to 0.f; the tpr leaves are then folded by lane_group_sum (width = min(tpr, 32): level o = width / 2
//     .. 1 adds leaf s + o into leaf s) and, when tpr > 32, the folded groups of 32 are added in order to 0.f. Here
//     warp w computes leaves w, w + 4, ... for the whole tile in mma fragments (the same per-leaf order), writes them
//     to shared memory, and one thread per (row, column) folds them in that same tree.
// tpr is the dp4a kernel's (q8_matvec_threads_per_row), so the leaves are the same whatever the batch.
//
// Work split (what fills the SMs at small batches): a tile of 16 rows x 8, 16 or 32 columns is computed by a cluster
// of 1, 2, 4 or 8 blocks of 4 to 16 warps; the cluster's warps share the tile's leaves (global warp w: leaves w,
// w + all warps, ...) and write them, through distributed shared memory, to the block that folds them (each block
// folds a contiguous chunk of the tile's elements). Which warp computes a leaf, which block folds it, and which block
// its columns, changes no bit: each leaf is still one warp's units in the dp4a order, and the fold is the same tree.
// Narrow matrices (Qwen's 896-row q, o and down: 56 tiles) get 8-column blocks of 16 warps (one leaf a warp at tpr
// 16) instead of one 4-warp block per tile walking its 16-64 leaves in turn; clusters are a tuning option, one block
// a tile by default (q8_mma_shape).
//
// Operands (what made the kernel latency-bound: 6-37x its weight-read time at 16 columns, ncu on the H200). Each
// unit's weight, activation and scale loads were issued when its leaf reached it, so a warp waited one memory latency
// per unit. Now a block copies its tile's weight rows and its columns' activations, scales and sums into shared
// memory with cp.async (every copy in flight at once, one wait), and blocks stay resident and loop over tiles, loading
// the next tile's rows into a second buffer while computing this one; the leaves then read the same bytes from shared
// memory. What a launch stages is chosen by the blocks an SM it leaves (q8_mma_shape): the rows and the columns, the
// rows alone, or nothing; a launch that stages nothing runs an instance of the kernel without the staging code, one
// block a tile (and column group), as before staging. With clusters nothing is staged.
#include "backend/cuda/matvec_q8_kernels.cuh"

#include <algorithm>
#include <cooperative_groups.h>
#include <map>
#include <mutex>
#include <tuple>

#include "backend/cuda/matvec_q8_units.cuh"
#include "backend/cuda/pdl.cuh"
#include "backend/cuda/tuning.h"
#include "device/cuda_check.h"
#include "device/device_query.h"
#include "quant/formats.h"

namespace orcd::cuda {

namespace {

constexpr int kMinThreads = 128, kMaxThreads = 512;  // 4 .. 16 warps a block (blockDim.x, chosen at launch)
constexpr int kRows = 16;                            // rows per tile: the mma's m

// c += a * b for one m16n8k16 tile: a0 / a1 = bytes 4t .. 4t + 3 (k) of rows g / g + 8, b = k 4t .. 4t + 3 of
// column g, c = (g, 2t), (g, 2t + 1), (g + 8, 2t), (g + 8, 2t + 1); g = lane / 4, t = lane % 4.
__device__ __forceinline__ void mma_s8(int (&c)[4], uint32_t a0, uint32_t a1, uint32_t b) {
    asm volatile("mma.sync.aligned.m16n8k16.row.col.s32.s8.s8.s32 {%0, %1, %2, %3}, {%4, %5}, {%6}, {%0, %1, %2, %3};\n"
                 : "+r"(c[0]), "+r"(c[1]), "+r"(c[2]), "+r"(c[3])
                 : "r"(a0), "r"(a1), "r"(b));
}

// A cluster's blocks may write to each other's shared memory only once all of them run (CUDA guide, distributed
// shared memory): each thread arrives at the cluster barrier when it starts and waits on it before its first remote
// write, so the wait overlaps the first leaf's loads and arithmetic.
__device__ __forceinline__ void cluster_arrive() {
    asm volatile("barrier.cluster.arrive.relaxed.aligned;\n" ::: "memory");
}
__device__ __forceinline__ void cluster_wait() { asm volatile("barrier.cluster.wait.aligned;\n" ::: "memory"); }

// Where element e of a leaf goes: this block's shared memory, or in a cluster the block that folds e (block
// e / chunk: elements are folded in contiguous chunks, one a block), through distributed shared memory.
__device__ __forceinline__ float* leaf_slot(float* part, int chunk, int e) {
    if (chunk == 0) return part + e;  // no cluster: this block folds every element
    return cooperative_groups::this_cluster().map_shared_rank(part, static_cast<unsigned>(e / chunk)) + e;
}

// Where a tile's operands are read: the weight rows (global memory, or the tile staged in shared memory) and the
// activation columns (global, or the block's columns staged): column c's int8 values at q + (c - c_first) * stride,
// its scales and 16-sums at d and s with the same offset.
struct Operands {
    const uint8_t* w;  // staged rows (16 a pass, w_stride bytes apart), or nullptr: the rows in global memory
    int64_t w_stride;
    const char *q, *d, *s;
    int64_t stride;
    int c_first;
};

// The leaves of one tile for format F: warp w computes leaves w, w + warps, ... (each as the dp4a kernel's thread
// `leaf` would, for every row and column of the tile) into part[leaf][row][column]. o0: the tile's first output row;
// row0: its first logical matrix row (o0, or o0 + n_out for SwiGLU's up half); pass: 0, or 1 for the up half; c0:
// its first column. S (compile time): bit 1 the rows are staged (op.w), bit 2 the columns (op.q, d, s); else
// they are read from global memory through p. Known at compile time, the staged operands are known to lie in shared
// memory (32-bit addresses, shared loads) and an unstaged instance carries no staging code.
template <typename F, int NT, int S>
__device__ void tile_leaves(const Q8Params& p, const Operands& op, int64_t o0, int64_t row0, int pass, int c0,
                            float* part, int first, int step, int chunk, bool& pending) {
    using U = q8units::Unit<F>;
    using Block = typename F::Block;
    constexpr int kG = U::kGroups, kI = q8units::kInts<F>, kCols = 8 * NT, kElems = kRows * kCols;
    constexpr int kUnits = F::kQ8Units, kBlockX = kUnits * 32;  // units and activation values per weight block
    const int lane = threadIdx.x % 32, g = lane / 4, t = lane % 4;
    const Block* rows[2];
    bool row_ok[2];
#pragma unroll
    for (int i = 0; i < 2; ++i) {
        row_ok[i] = o0 + g + 8 * i < p.n_out;
        if (S & kQ8MmaStageWeights) {
            rows[i] = reinterpret_cast<const Block*>(op.w + (pass * kRows + g + 8 * i) * op.w_stride);
        } else {
            int64_t r = row_ok[i] ? row0 + g + 8 * i : row0;
            const MatvecSource s = locate_source(p, r);
            rows[i] = reinterpret_cast<const Block*>(s.w + r * s.row_bytes);
        }
    }
    // Columns of this thread: B fragments for column c0 + 8 nt + g, outputs for c0 + 8 nt + 2t + j. Unstaged, the
    // columns are read through p's fields (kernel parameters, no registers: sharing op's, the 32-column block spilled).
    constexpr bool kX = S & kQ8MmaStageColumns;
    const char* xq = kX ? op.q : reinterpret_cast<const char*>(p.xq);
    const char* xd0 = kX ? op.d : reinterpret_cast<const char*>(p.xd);
    const char* xs0 = kX ? op.s : reinterpret_cast<const char*>(p.xs);
    const int64_t x_stride = kX ? op.stride : p.x_stride;
    const int c_first = kX ? op.c_first : 0;
    const int n_units = p.cols / 32;
    for (int leaf = first; leaf < p.tpr; leaf += step) {
        float acc[NT][4];
#pragma unroll
        for (int nt = 0; nt < NT; ++nt) {
#pragma unroll
            for (int e = 0; e < 4; ++e) acc[nt][e] = 0.f;
        }
        for (int u = leaf; u < n_units; u += p.tpr) {
            const int blk = u / kUnits, uu = u % kUnits;
            uint32_t a[2][kG];
            typename U::Scales sc[2] = {};
#pragma unroll
            for (int i = 0; i < 2; ++i) {
                if (row_ok[i]) {
                    U::mma_load(rows[i][blk], uu, t, a[i], sc[i]);
                } else {
#pragma unroll
                    for (int gr = 0; gr < kG; ++gr) a[i][gr] = 0;
                }
            }
#pragma unroll
            for (int nt = 0; nt < NT; ++nt) {
                if (c0 + 8 * nt >= p.n_cols) break;  // n-tiles past the batch (uniform over the block)
                const int nb = c0 + 8 * nt + g;
                int c[kI][4];
#pragma unroll
                for (int q = 0; q < kI; ++q) c[q][0] = c[q][1] = c[q][2] = c[q][3] = 0;
#pragma unroll
                for (int gr = 0; gr < kG; ++gr) {
                    const int off = U::x_offset(uu, gr, t);
                    uint32_t b = 0;
                    if (nb < p.n_cols && off >= 0) {
                        b = *reinterpret_cast<const uint32_t*>(xq + (nb - c_first) * x_stride + blk * kBlockX + off);
                    }
                    mma_s8(c[U::kSumGroups ? 0 : gr], a[0][gr], a[1][gr], b);
                }
                // The n-tile's 8 columns' scale words in one load (lane 4c + k: word k of column c), then each
                // thread takes those of its columns 2t and 2t + 1 by shuffles.
                uint32_t word = 0;
                {
                    const int col = c0 + 8 * nt + lane / 4, k = lane % 4;
                    if (col < p.n_cols && k < U::kColWords) {
                        const int64_t off = (col - c_first) * x_stride;
                        const auto* xd = reinterpret_cast<const float*>(xd0 + off);
                        const auto* xs = reinterpret_cast<const int32_t*>(xs0 + off);
                        word = U::col_word(xd + kUnits * blk, xs + 2 * kUnits * blk, uu, k);
                    }
                }
                typename U::ColScales cs[2];
#pragma unroll
                for (int j = 0; j < 2; ++j) {
                    uint32_t w[U::kColWords];
#pragma unroll
                    for (int k = 0; k < U::kColWords; ++k) w[k] = __shfl_sync(0xffffffffu, word, 4 * (2 * t + j) + k);
                    cs[j] = U::col_from_words(w);
                }
#pragma unroll
                for (int i = 0; i < 2; ++i) {
#pragma unroll
                    for (int j = 0; j < 2; ++j) {
                        int s[kI];
#pragma unroll
                        for (int q = 0; q < kI; ++q) s[q] = c[q][2 * i + j];
                        acc[nt][2 * i + j] = __fadd_rn(acc[nt][2 * i + j], U::value(sc[i], s, cs[j]));
                    }
                }
            }
        }
        if (pending) {  // warp-uniform
            cluster_wait();
            pending = false;
        }
#pragma unroll
        for (int nt = 0; nt < NT; ++nt) {
#pragma unroll
            for (int i = 0; i < 2; ++i) {
#pragma unroll
                for (int j = 0; j < 2; ++j) {
                    const int e = (g + 8 * i) * kCols + 8 * nt + 2 * t + j;
                    leaf_slot(part, chunk, e)[leaf * kElems] = acc[nt][2 * i + j];
                }
            }
        }
    }
}

// The dp4a kernel's reduction of one (row, column)'s tpr leaves, leaf s at P[s * stride] (overwritten).
__device__ float fold_leaves(float* P, int tpr, int stride) {
    const int width = min(tpr, 32);
    float total = 0.f;
    for (int g0 = 0; g0 < tpr; g0 += width) {
        float* q = P + g0 * stride;
        for (int o = width / 2; o > 0; o >>= 1) {
            for (int s = 0; s < o; ++s) q[s * stride] = __fadd_rn(q[s * stride], q[(s + o) * stride]);
        }
        if (tpr <= 32) return q[0];
        total = __fadd_rn(total, q[0]);
    }
    return total;
}

// ---- staging -------------------------------------------------------------------------------------------------------
// The tile's operands are copied to shared memory with cp.async (no registers, every copy of the block in flight at
// once) before its leaves are computed: a block waits one memory latency for its tile instead of one per weight unit
// and activation load (the unit loop's loads depend on nothing but the unit, yet each leaf walked them in turn).
// The copies move bytes only; the arithmetic reads the same bytes from shared memory.

// bytes from src (global) to dst (shared) by one warp: 16-, 8- or 4-byte cp.async as both addresses' alignment and
// the length allow, else 2-byte loads and stores (rows of an odd count of 18- or 22-byte blocks).
__device__ void copy_to_shared(uint8_t* dst, const uint8_t* src, int64_t bytes, int lane) {
    const auto d = static_cast<unsigned>(__cvta_generic_to_shared(dst));
    const uintptr_t a = reinterpret_cast<uintptr_t>(src) | static_cast<uintptr_t>(bytes) | d;
    if ((a & 15) == 0) {
        for (int64_t o = 16 * lane; o < bytes; o += 16 * 32) {
            asm volatile("cp.async.cg.shared.global [%0], [%1], 16;\n" ::"r"(d + static_cast<unsigned>(o)), "l"(src + o)
                         : "memory");
        }
    } else if ((a & 7) == 0) {
        for (int64_t o = 8 * lane; o < bytes; o += 8 * 32) {
            asm volatile("cp.async.ca.shared.global [%0], [%1], 8;\n" ::"r"(d + static_cast<unsigned>(o)), "l"(src + o)
                         : "memory");
        }
    } else if ((a & 3) == 0) {
        for (int64_t o = 4 * lane; o < bytes; o += 4 * 32) {
            asm volatile("cp.async.ca.shared.global [%0], [%1], 4;\n" ::"r"(d + static_cast<unsigned>(o)), "l"(src + o)
                         : "memory");
        }
    } else {
#pragma unroll 4
        for (int64_t o = 2 * lane; o < bytes; o += 2 * 32) {
            *reinterpret_cast<uint16_t*>(dst + o) = *reinterpret_cast<const uint16_t*>(src + o);
        }
    }
}
__device__ __forceinline__ void copy_commit() { asm volatile("cp.async.commit_group;\n" ::: "memory"); }
template <int N>
__device__ __forceinline__ void copy_wait() {
    asm volatile("cp.async.wait_group %0;\n" ::"n"(N) : "memory");
}

// The block's shared memory: the leaves (part, at offset 0 in every block: a cluster's blocks address each other's),
// then the staged columns, then 0 to 2 weight buffers of (1 or 2 passes) x 16 rows.
struct Stage {
    int64_t x_at = 0, x_stride = 0;  // staged columns (x_stride 0: none): q, then d at + cols, s at + cols + cols / 8
    int64_t w_at = 0, w_stride = 0;  // weight buffers (w_stride: bytes a staged row, 0: none)
    int64_t w_buf = 0;               // bytes a weight buffer
    int bufs = 0;                    // 0, 1 or 2 weight buffers
    int64_t bytes = 0;               // all of it
};

// Warp `warp` of `warps` issues its share of the copies of tile o0's rows (both halves for SwiGLU) into buf.
__device__ void stage_rows(const Q8Params& p, int64_t o0, uint8_t* buf, int64_t w_stride, int warp, int warps,
                           int lane) {
    const int n = p.epilogue == 2 ? 2 * kRows : kRows;
    for (int ri = warp; ri < n; ri += warps) {
        const int i = ri % kRows;
        if (o0 + i >= p.n_out) continue;
        int64_t r = o0 + i + (ri >= kRows ? p.n_out : 0);
        const MatvecSource s = locate_source(p, r);
        copy_to_shared(buf + ri * w_stride, s.w + r * s.row_bytes, s.row_bytes, lane);
    }
}

// Warp `warp` issues its share of the copies of columns c0 .. c0 + cols_n - 1 (q, d, s of each) into x.
__device__ void stage_columns(const Q8Params& p, int c0, int cols_n, uint8_t* x, int64_t x_stride, int warp, int warps,
                              int lane) {
    const int64_t q = p.cols, d = p.cols / 8, sb = p.cols / 4;  // bytes of q, d (cols / 32 floats), s (cols / 16)
    for (int ri = warp; ri < 3 * cols_n; ri += warps) {
        const int c = ri / 3, part = ri % 3;
        const int64_t off = (c0 + c) * p.x_stride;
        uint8_t* dst = x + c * x_stride;
        if (part == 0) {
            copy_to_shared(dst, reinterpret_cast<const uint8_t*>(p.xq) + off, q, lane);
        } else if (part == 1) {
            copy_to_shared(dst + q, reinterpret_cast<const uint8_t*>(p.xd) + off, d, lane);
        } else {
            copy_to_shared(dst + q + d, reinterpret_cast<const uint8_t*>(p.xs) + off, sb, lane);
        }
    }
}

// Block = 16-row tiles x 8 NT columns, blockDim.x / 32 warps. Without clusters (k = 1), block b computes the groups
// (tile, column group) b, b + gridDim.x, ... (gridDim.x a multiple of n_cg: a block's column group is fixed, its
// staged columns serve all its tiles), staging each tile's rows before its leaves (with two buffers, the next tile's
// while this one computes). With clusters of k blocks (k > 1, nothing staged), the k blocks of a cluster share one
// group: block r's warps compute leaves r W + w, r W + w + k W, ... (W warps a block) and write each element's
// leaves to the block that folds it (elements in k contiguous chunks); blockIdx.x = group * k + r. Groups are
// numbered tile * n_cg + column group, so the column groups of a tile run together and read its weights from L2.
// Registers: up to 128 (one block of 16 warps per SM); the fold's res[] is sized for the fewest threads (4 warps).
// S: what is staged (st's bits 1 and 2; the second buffer, bit 4, is read from st), one instance each. The launches
// that stage nothing run an instance without the staging code: sharing one instance, the 32-column blocks spilled
// (ptxas: 208 bytes stored, 756 loaded a thread, where main 41aa16d's kernel used 128 registers and none) and the
// 8-column ones took 116 registers against 88.
template <int NT, int S>
__global__ void __launch_bounds__(kMaxThreads, 1) q8_mma_kernel(const Q8Params p, const Stage st, int n_cg, int k) {
    extern __shared__ __align__(16) uint8_t smem[];
    float* part = reinterpret_cast<float*>(smem);
    constexpr int kCols = 8 * NT, kElems = kRows * kCols, kPer = kElems / kMinThreads;
    const int threads = static_cast<int>(blockDim.x), warps = threads / 32;
    const int warp = static_cast<int>(threadIdx.x) / 32, lane = static_cast<int>(threadIdx.x) % 32;
    const int rank = static_cast<int>(blockIdx.x) % k;
    const int64_t n_groups = (p.n_out + kRows - 1) / kRows * n_cg, step = gridDim.x / k;
    int64_t group = blockIdx.x / k;
    const int chunk = k > 1 ? kElems / k : 0, e0 = rank * (kElems / k), e1 = e0 + kElems / k;
    const bool swiglu = p.epilogue == 2;
    // Every leaf written (to this block or, in a cluster, to the others too) before it is folded, and every fold
    // done before the next pass overwrites the leaves.
    auto sync = [k] {
        if (k > 1) {
            cooperative_groups::this_cluster().sync();
        } else {
            __syncthreads();
        }
    };
    // The first tile's weight rows into L2 while the previous kernel (the columns' quantization) finishes: each
    // row's 128-byte lines taken by threads/16 threads in turn.
    prefetch_row_l2(p, group / n_cg * kRows + static_cast<int>(threadIdx.x) % kRows,
                    rank * (threads / kRows) + static_cast<int>(threadIdx.x) / kRows, k * (threads / kRows));
    pdl_wait();
    pdl_trigger();
    bool pending = k > 1;  // the start-up barrier still to wait on (cluster_arrive)
    if (pending) cluster_arrive();
    const int c0 = static_cast<int>(group % n_cg) * kCols;  // the same for all of this block's groups
    constexpr bool kStaged = S != 0;
    uint8_t* wbuf = smem + st.w_at;
    const char* x = reinterpret_cast<const char*>(smem + st.x_at);
    // Only shared-memory addresses (or none) in op: the compiler then knows every staged read is a shared load.
    Operands op{wbuf, st.w_stride, x, x + p.cols, x + p.cols + p.cols / 8, st.x_stride, c0};
    if (S & kQ8MmaStageColumns) {
        stage_columns(p, c0, min(kCols, p.n_cols - c0), smem + st.x_at, st.x_stride, warp, warps, lane);
    }
    if (kStaged) {
        if ((S & kQ8MmaStageWeights) && group < n_groups) {
            stage_rows(p, group / n_cg * kRows, wbuf, st.w_stride, warp, warps, lane);
        }
        copy_commit();
    }
    for (int it = 0; group < n_groups; group += step, ++it) {
        const int64_t o0 = group / n_cg * kRows;
        const int64_t next = group + step;
        if (kStaged) {
            if (st.bufs == 2) {  // the next tile into the other buffer (its last reader, tile it - 1, is done: synced)
                if (next < n_groups)
                    stage_rows(p, next / n_cg * kRows, wbuf + ((it + 1) & 1) * st.w_buf, st.w_stride, warp, warps,
                               lane);
                copy_commit();
                copy_wait<1>();
            } else {
                copy_wait<0>();
            }
        }
        // The staged operands visible to every warp; the last tile's fold done before new leaves (a block that
        // stages nothing computes one group).
        if (kStaged) __syncthreads();
        if (S & kQ8MmaStageWeights) op.w = wbuf + (st.bufs == 2 ? (it & 1) * st.w_buf : 0);
        float res[2][kPer];
#pragma unroll
        for (int pass = 0; pass < 2; ++pass) {  // unrolled: res stays in registers
            if (pass == 1 && !swiglu) break;
            const int64_t row0 = o0 + (pass ? p.n_out : 0);
            int64_t r = row0;
            const MatvecSource s = locate_source(p, r);  // the tile's type (the host checked that its rows share it)
            quant::visit_format(s.type, [&](auto f) {
                if constexpr (quant::HasQ8Matvec<decltype(f)>) {
                    tile_leaves<decltype(f), NT, S>(p, op, o0, row0, pass, c0, part, rank * warps + warp, k * warps,
                                                    chunk, pending);
                }
            });
            if (pending) {  // a warp without a leaf
                cluster_wait();
                pending = false;
            }
            sync();
            // One weight buffer: every leaf of this tile is computed, so the next tile's rows may load during the
            // fold.
            if ((S & kQ8MmaStageWeights) && st.bufs == 1 && (pass == 1 || !swiglu) && next < n_groups) {
                stage_rows(p, next / n_cg * kRows, wbuf, st.w_stride, warp, warps, lane);
                copy_commit();
            }
#pragma unroll
            for (int j = 0; j < kPer; ++j) {
                const int e = e0 + static_cast<int>(threadIdx.x) + j * threads;
                res[pass][j] = e < e1 && c0 + e % kCols < p.n_cols ? fold_leaves(part + e, p.tpr, kElems) : 0.f;
            }
            if (pass == 0 && swiglu) sync();
        }
#pragma unroll
        for (int j = 0; j < kPer; ++j) {
            const int e = e0 + static_cast<int>(threadIdx.x) + j * threads;
            const int64_t out = o0 + e / kCols;
            const int col = c0 + e % kCols;
            if (e < e1 && out < p.n_out && col < p.n_cols) {
                matvec_epilogue_store(p.y + col * p.y_stride, out, res[0][j], swiglu ? res[1][j] : 0.f, p.epilogue);
            }
        }
        if (!kStaged) break;  // one group a block (launch): no loop state kept live across the leaves
    }
}

int64_t round16(int64_t n) { return (n + 15) / 16 * 16; }

// The shared memory of a block of NT n-tiles with the given stage bits.
Stage stage_layout(const Q8Params& p, int NT, int bits) {
    Stage st;
    st.x_at = static_cast<int64_t>(p.tpr) * kRows * 8 * NT * static_cast<int64_t>(sizeof(float));
    if (bits & kQ8MmaStageColumns) st.x_stride = round16(p.cols + p.cols / 8 + p.cols / 4);
    st.w_at = st.x_at + 8 * NT * st.x_stride;
    if (bits & kQ8MmaStageWeights) {
        int64_t row = 0;
        for (int i = 0; i < p.n_src; ++i) row = std::max(row, p.src[i].row_bytes);
        st.w_stride = round16(row);
        st.w_buf = (p.epilogue == 2 ? 2 : 1) * kRows * st.w_stride;
        st.bufs = bits & kQ8MmaStageDouble ? 2 : 1;
    }
    st.bytes = st.w_at + st.bufs * st.w_buf;
    return st;
}

int stage_bits(const Stage& st) {
    return (st.bufs > 0 ? kQ8MmaStageWeights : 0) | (st.x_stride > 0 ? kQ8MmaStageColumns : 0) |
           (st.bufs == 2 ? kQ8MmaStageDouble : 0);
}

// Blocks of `threads` threads and `bytes` of shared memory that one SM holds at once for kernel, asked of the runtime
// once per (kernel, threads, bytes) in the process: eager launches (prefill, tests) call this for every matvec, and
// the answer depends on nothing else (the kernels' registers are fixed; sm_count and the shared-memory limits are
// cached per process alike, device_query.h).
template <typename Kernel>
int blocks_per_sm(Kernel kernel, int threads, int64_t bytes) {
    struct Key {
        const void* kernel;
        int threads;
        int64_t bytes;
        bool operator<(const Key& o) const {
            return std::tie(kernel, threads, bytes) < std::tie(o.kernel, o.threads, o.bytes);
        }
    };
    static std::mutex mutex;
    static std::map<Key, int> cache;
    const Key key{reinterpret_cast<const void*>(kernel), threads, bytes};
    std::lock_guard<std::mutex> lock(mutex);
    if (const auto it = cache.find(key); it != cache.end()) return it->second;
    int per_sm = 0;
    ORCD_CUDA_CHECK(
        cudaOccupancyMaxActiveBlocksPerMultiprocessor(&per_sm, kernel, threads, static_cast<size_t>(bytes)));
    cache.emplace(key, per_sm);
    return per_sm;
}

// The kernel instance for NT and staged operands S, opted in once for the most dynamic shared memory a
// block may have (the leaves alone take 64 or 128 KiB at tpr 128 or 256).
template <int NT, int S>
auto kernel_for() {
    static const cudaError_t opted =
        cudaFuncSetAttribute(q8_mma_kernel<NT, S>, cudaFuncAttributeMaxDynamicSharedMemorySize,
                             ::orcd::device::shared_bytes_per_block_optin());
    ORCD_CUDA_CHECK(opted);
    return q8_mma_kernel<NT, S>;
}

// The instance for NT and what shape_bits stages.
template <int NT>
auto kernel_for(int shape_bits) {
    switch (shape_bits & (kQ8MmaStageWeights | kQ8MmaStageColumns)) {
        case kQ8MmaStageWeights: return kernel_for<NT, kQ8MmaStageWeights>();
        case kQ8MmaStageColumns: return kernel_for<NT, kQ8MmaStageColumns>();
        case kQ8MmaStageWeights | kQ8MmaStageColumns: return kernel_for<NT, kQ8MmaStageWeights | kQ8MmaStageColumns>();
        default: return kernel_for<NT, 0>();
    }
}

// Blocks an SM of the instance for nt n-tiles (1, 2, 4) that stages `bits`, with `bytes` of shared memory.
int staged_blocks_per_sm(int nt, int bits, int threads, int64_t bytes) {
    if (nt == 4) return blocks_per_sm(kernel_for<4>(bits), threads, bytes);
    if (nt == 2) return blocks_per_sm(kernel_for<2>(bits), threads, bytes);
    return blocks_per_sm(kernel_for<1>(bits), threads, bytes);
}

template <int NT>
void launch(const Q8Params& p, Q8MmaShape shape, cudaStream_t stream) {
    constexpr int kCols = 8 * NT;
    const Stage st = stage_layout(p, NT, shape.stage);
    const auto kernel = kernel_for<NT>(shape.stage);
    const int n_cg = (p.n_cols + kCols - 1) / kCols;
    const int64_t tiles = (p.n_out + kRows - 1) / kRows;
    const int threads = 32 * shape.warps;
    int64_t grid = tiles * n_cg * shape.cluster;
    if (shape.cluster == 1 && shape.stage != 0) {
        // As many blocks as run at once (a multiple of n_cg: each block keeps one column group), at least one a
        // column group; blocks loop over their tiles.
        const int per_sm = blocks_per_sm(kernel, threads, st.bytes);
        int64_t cap = static_cast<int64_t>(std::max(per_sm, 1)) * ::orcd::device::sm_count();
        if (shape.max_blocks > 0) cap = std::min<int64_t>(cap, shape.max_blocks);
        grid = n_cg * std::clamp<int64_t>(cap / n_cg, 1, tiles);
    }
    cudaLaunchConfig_t config{};
    config.gridDim = dim3(static_cast<unsigned>(grid));
    config.blockDim = dim3(static_cast<unsigned>(threads));
    config.dynamicSmemBytes = static_cast<size_t>(st.bytes);
    config.stream = stream;
    cudaLaunchAttribute attrs[2];
    config.attrs = attrs;
    config.numAttrs = pdl_attribute(&attrs[0]);
    if (shape.cluster > 1) {
        cudaLaunchAttribute& cluster = attrs[config.numAttrs++];
        cluster.id = cudaLaunchAttributeClusterDimension;
        cluster.val.clusterDim.x = static_cast<unsigned>(shape.cluster);
        cluster.val.clusterDim.y = cluster.val.clusterDim.z = 1;
    }
    ORCD_CUDA_CHECK(cudaLaunchKernelEx(&config, kernel, p, st, n_cg, shape.cluster));
}

// The most columns a block may take: its leaves' shared memory within 32 KiB (tpr x 16 rows x columns floats), so
// tpr 16: 32 columns, 32: 16, 64 and more: 8 (128 and 256 take 64 / 128 KiB at 8).
int max_block_cols(int tpr) { return std::clamp(512 / tpr, 8, 32); }

}  // namespace

bool q8_mma_can_run(const Q8Params& p) {
    const int64_t n_cg = (p.n_cols + 7) / 8, tiles = (p.n_out + kRows - 1) / kRows;
    if (tiles * n_cg * 8 > 0x7fffffff || p.tpr < 1 || p.tpr > 256) return false;
    int64_t b = 0;
    for (int i = 0; i + 1 < p.n_src; ++i) {
        b += p.src[i].rows;
        if (p.src[i].type == p.src[i + 1].type) continue;
        const int64_t local = p.epilogue == 2 && b >= p.n_out ? b - p.n_out : b;
        if (local % kRows != 0) return false;
    }
    return true;
}

Q8MmaShape q8_mma_shape(const Q8Params& p, int block_cols, int warps, int cluster, int stage, int max_blocks) {
    const int cap = max_block_cols(p.tpr);
    const int64_t tiles = (p.n_out + kRows - 1) / kRows, sms = ::orcd::device::sm_count();
    Q8MmaShape shape;
    if (block_cols == 8 || block_cols == 16 || block_cols == 32) {
        shape.block_cols = std::min(block_cols, cap);
    } else if (const int tuned = tuning::q8_mma_block_columns()) {
        shape.block_cols = std::min(tuned, cap);
    } else {
        // The widest block (each weight unit decoded once for more columns) that still leaves two blocks per SM, and
        // no wider than the batch (no n-tiles of padding only); 8 columns when even those are too few blocks.
        shape.block_cols = 8;
        for (int c = 16; c <= cap; c *= 2) {
            if (c / 2 >= p.n_cols || tiles * ((p.n_cols + c - 1) / c) < 2 * sms) break;
            shape.block_cols = c;
        }
    }
    const int64_t col_blocks = tiles * ((p.n_cols + shape.block_cols - 1) / shape.block_cols);
    if (cluster == 1 || cluster == 2 || cluster == 4 || cluster == 8) {
        shape.cluster = cluster;
    } else if (const int tuned = tuning::q8_mma_cluster()) {
        shape.cluster = tuned;
    } else {
        // One block a tile. Clusters measured no better as a rule (2026-12-04 H200, Qwen2.5-0.5B-shaped Q4_K_M synth,
        // decode tok/s, one call, rule "2-8 blocks while a matrix has fewer than two blocks an SM" vs none): B = 8
        // 3,035 vs 2,966, B = 16 4,746 vs 4,995, B = 32 6,822 vs 6,907, B = 64 8,651 vs 8,644; clusters of 2 on every
        // matrix: 3,389 at B = 8 but 4,117 at B = 16 (docs/PERF.md). They stay behind ORCD_Q8_MMA_CLUSTER.
        shape.cluster = 1;
    }
    if (warps == 4 || warps == 8 || warps == 16) {
        shape.warps = warps;
    } else if (const int tuned = tuning::q8_mma_warps()) {
        shape.warps = tuned;
    } else {
        // Few blocks: 16 warps each (one leaf a warp at tpr 16). Many: 4 warps, several blocks an SM (one folds
        // while another computes). With the block columns above, against 4 warps and the widest block (the kernel
        // before, 2026-12-04 H200, same call, Qwen-shaped decode tok/s): B = 8 3,053 vs 1,784, B = 16 5,236 vs 3,283,
        // B = 32 7,031 vs 5,520, B = 64 8,695 vs 8,261.
        const int64_t blocks = col_blocks * shape.cluster;
        shape.warps = blocks >= 4 * sms ? 4 : blocks >= 2 * sms ? 8 : 16;
    }
    shape.warps = std::min(shape.warps, std::max(4, p.tpr / shape.cluster));  // no warp without a leaf
    // Staging. What a block stages costs resident blocks (shared memory); what it saves is a memory latency per unit.
    // Per matrix (bench/cuda/q8_mma_shapes, 2026-12-04 H200, docs/PERF.md "Staging by occupancy") neither "stage
    // everything that fits" nor "nothing" wins: staging the columns pays where they are short (Qwen's 896 values:
    // its SwiGLU at B = 64 84.5 us staged, 117.8 weights only, 121.0 nothing) and costs where they are long (Phi-3's
    // 3,072: its SwiGLU at B = 16 106.2 / 83.2 / 123.2; at B = 64 the 32-column block cannot hold them, and weights
    // only, two blocks an SM instead of four, took 559.3 us against 379.1 for nothing). The default rule, by the
    // blocks an SM the staged kernel holds (its registers and leaves alone: `full`):
    //   - the weight rows and the columns (bits 3) where that keeps at least half of `full`;
    //   - else the weight rows (bit 1) where that keeps at least three quarters;
    //   - else nothing (the instance without the staging code, one block a group).
    // Chosen from the first call's per-matrix times (rules compared on them, summed per decode step, B = 8 / 16 / 32 /
    // 64, ms): this one Qwen 1.24 / 1.44 / 2.63 / 5.18, Phi-3 6.09 / 10.62 / 19.60 / 33.55; staging everything with
    // the 8-warp guard before 1.22 / 1.45 / 2.73 / 5.37 and 7.36 / 10.64 / 19.52 / 41.00; nothing staged 1.83 / 2.14 /
    // 3.65 / 6.42 and 7.62 / 13.75 / 22.67 / 36.07. Decode tok/s, second call, against main 41aa16d's kernel: Phi-3
    // 1,181 / 1,407 / 1,527 / 1,766 (main 936 / 1,067 / 1,324 / 1,675), Qwen 3,900 / 6,999 / 9,233 / 10,103 (main
    // 3,355 / 5,433 / 7,170 / 8,862). The second weight buffer (bit 4) is not staged by default: it lost as often as
    // it won (Phi-3's qkv at B = 8: 62.2 us with it, 48.8 without). An override (stage >= 0, ORCD_Q8_MMA_STAGE)
    // takes its bits as given, dropped (the second buffer, the columns, the rows) until the block fits. Clusters read
    // from global memory (their blocks share one tile's leaves, not its operands).
    const bool automatic = stage < 0 && tuning::q8_mma_stage() < 0;
    const int nt = shape.block_cols / 8;
    int bits = 0;
    if (shape.cluster > 1) {
        bits = 0;
    } else if (automatic) {
        const int threads = 32 * shape.warps;
        // Blocks an SM of the instance staging b: with its staged bytes, and with the leaves alone (`full`).
        auto blocks = [&](int b, int layout) {
            return staged_blocks_per_sm(nt, b, threads, stage_layout(p, nt, layout).bytes);
        };
        constexpr int kBoth = kQ8MmaStageWeights | kQ8MmaStageColumns;
        const int both = blocks(kBoth, kBoth), rows = blocks(kQ8MmaStageWeights, kQ8MmaStageWeights);
        bits = both > 0 && 2 * both >= blocks(kBoth, 0)                    ? kBoth
               : rows > 0 && 4 * rows >= 3 * blocks(kQ8MmaStageWeights, 0) ? kQ8MmaStageWeights
                                                                           : 0;
    } else {
        bits = stage >= 0 ? stage : tuning::q8_mma_stage();
        for (const int drop : {kQ8MmaStageDouble, kQ8MmaStageColumns, kQ8MmaStageWeights}) {
            if (stage_layout(p, nt, bits).bytes <= ::orcd::device::shared_bytes_per_block_optin()) break;
            bits &= ~drop;
        }
        if (!(bits & kQ8MmaStageWeights)) bits &= ~kQ8MmaStageDouble;
    }
    shape.stage = stage_bits(stage_layout(p, nt, bits));
    shape.max_blocks = std::max(0, max_blocks);
    return shape;
}

void q8_mma_launch(const Q8Params& p, Q8MmaShape shape, cudaStream_t stream) {
    if (shape.block_cols == 32) {
        launch<4>(p, shape, stream);
    } else if (shape.block_cols == 16) {
        launch<2>(p, shape, stream);
    } else {
        launch<1>(p, shape, stream);
    }
}

}  // namespace orcd::cuda
