// Int8-activation decode matvec (matvec_q8.h): quantize_q8 and the dp4a kernels, with their checked entry points.
//
// Work split: a row's cols / 32 "units" of 32 weights are spread over tpr threads (8 .. 256; several rows per warp
// when rows are short, several warps per row when rows are few and long). For the 32-element block types a unit is
// one block; for the K-quants a unit is the 32 weights that one 16-byte (Q4_K/Q5_K) or 3 x 8-byte (Q6_K) slice of
// the packed bits encodes, so a thread's weight loads are wide and consecutive threads read consecutive bytes of a
// super-block. Each unit's integer dot products (__dp4a, exact) are scaled once by the weight's and the
// activation's block scales. Partial sums are combined in a fixed order (shuffle tree, then warps in order).
#include "backend/cuda/matvec_q8.h"

#include <algorithm>
#include <cstddef>
#include <cstdlib>
#include <string>

#include "device/device_query.h"
#include "backend/cuda/matvec_common.cuh"
#include "backend/cuda/matvec_q8_kernels.cuh"
#include "backend/cuda/matvec_q8_rows.cuh"
#include "common/error.h"
#include "device/cuda_check.h"
#include "backend/cuda/norm.cuh"
#include "backend/cuda/pdl.cuh"
#include "backend/cuda/reduce.cuh"
#include "backend/cuda/tuning.h"
#include "quant/formats.h"

namespace orcd::cuda {

namespace {

using gguf::TensorType;
using ::orcd::device::sm_count;

using q8rows::kThreads;
using q8rows::kWarps;

// ---- quantize ------------------------------------------------------------------------------------------------------

// Every block recomputes the norm's sum of squares (x is a few KB, read from L2) so that the quantization of the
// 32-blocks spreads over many blocks without a second launch. Warp w of block k quantizes 32-block 8k + w.
// grid.y = column: column c reads x + c * x_stride and writes q, d shifted by c * out_stride bytes.
__global__ void __launch_bounds__(kThreads)
    quantize_q8_kernel(const float* x, int64_t x_stride, const float* norm, float eps, int cols, int8_t* q, float* d,
                       int32_t* s, int64_t out_stride) {
    __shared__ double red[kThreads];
    pdl_wait();  // x is the previous kernel's output; q, d, s are read by the matvec before this one
    pdl_trigger();
    x += blockIdx.y * x_stride;
    q += blockIdx.y * out_stride;
    d = reinterpret_cast<float*>(reinterpret_cast<char*>(d) + blockIdx.y * out_stride);
    s = reinterpret_cast<int32_t*>(reinterpret_cast<char*>(s) + blockIdx.y * out_stride);
    float scale = 1.0f;
    if (norm) scale = block_rms_scale<kThreads>(x, cols, eps, red);  // bit-identical to rms_norm_kernel's
    const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
    const int b = blockIdx.x * kWarps + warp;
    if (b * 32 >= cols) return;
    q8rows::quantize_32block(q8rows::quantize_input(x, norm, scale, b, lane), b, lane, q, d, s);
}

// Each format's unit of 32 weights: q8_load (its header in quant/formats/) decodes one, Unit<T>::dp4a_value
// (matvec_q8_units.cuh, shared with the mma kernel) multiplies it with one column; kQ8Units units per block.

// ---- the matvec kernel ---------------------------------------------------------------------------------------------

// Columns a thread accumulates at once (NC, a template parameter: 1, 2, 4, 8 or 16, the host picks the smallest that
// holds the batch, up to kDefaultMaxNC or the ORCD_Q8_MAX_NC override); a batch of more columns walks the row again
// for each group of NC (the weights then come from L1/L2). A wider group decodes each weight unit once for more
// columns but gives the matrix fewer column groups to spread over grid.y. Every column runs the same operations in the same order whatever NC and the group (its units in order,
// each added with __fadd_rn so that no instantiation fuses the add differently, then the same reduction tree), so a
// column's result is bit-identical at every batch size, and the single column pays for no other.
constexpr int kMaxNC = 16;
constexpr int kDefaultMaxNC = 8;  // 2026-12-03 H200 figures (docs/PERF.md, issue 15)
// Batches of this many columns and more run the tensor-core kernel (matvec_q8_mma.cu), the same bits per column.
// 2026-12-04 H200, Q4_K_M synth files, decode tok/s dp4a -> mma (with its blocks of 4-16 warps and 8-32 columns), two
// calls: Qwen2.5-0.5B shape B = 8 3,214 -> 3,053 and 3,092 -> 2,966 (mma loses), B = 16 4,557 -> 5,236 and
// 4,553 -> 4,995, B = 32 6,383 -> 7,031 and 6,385 -> 6,907, B = 64 7,683 -> 8,695 and 7,679 -> 8,644; Phi-3-mini
// shape B = 8 913 -> 928, B = 16 1,066 -> 1,075, B = 64 1,201 -> 1,610. With the staged operands (matvec_q8_mma.cu),
// one call, 2026-12-04: Qwen B = 8 dp4a 3,160 -> mma 3,573, B = 16 4,476 -> 6,167, B = 64 7,562 -> 8,454 (mma wins
// from 8 on); Phi-3 B = 8 was measured only with a since-dropped fold (908 -> 857). The merged tree, one call,
// 2026-12-04, `orcd bench --batch 8 -p 100 -n 128 -r 2`, dp4a -> mma (ORCD_Q8_MMA_MIN_COLS=8): Qwen 3,200 -> 3,622,
// Phi-3 911 -> 906 (within noise): so 8.
constexpr int kDefaultMmaMinCols = 8;

using Params = Q8Params;

// Occupancy: up to 8 columns, 4 blocks of 256 threads per SM (<= 64 registers); the 16-column group
// (ORCD_Q8_MAX_NC=16) holds twice the accumulators and gets 2 (<= 128), not spills. The single column had 5 (<= 48)
// until its Q4_K/Q5_K units read whole 16-byte vectors (q8_load_aligned): with two such units in flight it spills at
// 48 registers, and at 4 blocks (64, no spill) Phi-3's decode reached the pre-refactor kernel's speed (0.990 of it
// against 0.963 before on the H100, Qwen 1.061; one unit in flight at 5 blocks: 0.991 and 1.029; docs/PERF.md).
template <int NC>
__global__ void __launch_bounds__(kThreads, NC <= 8 ? 4 : 2) q8_matvec_kernel(const Params p) {
    __shared__ q8rows::MatvecPartials<NC> part;
    // Before the predecessor (the quantization of x) has finished: pull this block's first rows into L2, so their
    // reads below hit L2 instead of starting then. The weights are never written by a kernel.
    const int per_iter = kThreads / p.tpr;
    prefetch_row_l2(p, static_cast<int64_t>(blockIdx.x) * per_iter + threadIdx.x / p.tpr, threadIdx.x % p.tpr, p.tpr);
    pdl_wait();
    pdl_trigger();
    q8rows::matvec_rows<NC>(p, blockIdx.x, gridDim.x, static_cast<int>(blockIdx.y), static_cast<int>(gridDim.y), part);
}

int64_t q8_block_bytes(TensorType t) {
    int64_t bytes = 0;
    quant::visit_format(t, [&](auto f) {
        if constexpr (quant::HasQ8Matvec<decltype(f)>) bytes = sizeof(typename decltype(f)::Block);
    });
    return bytes;
}

// Elements per block of a quantized type.
int64_t q8_block_elems(TensorType t) {
    int64_t elems = 0;
    quant::visit_format(t, [&](auto f) { elems = decltype(f)::kBlockElems; });
    return elems;
}

int64_t round256(int64_t n) { return (n + 255) / 256 * 256; }

}  // namespace

int q8_matvec_threads_per_row(int64_t n_out, int64_t cols) {
    if (const int forced = tuning::q8_threads_per_row()) return forced;
    const int64_t units = cols / 32;
    // Measured on the H100 (bench/cuda/NOTES.md, v6): the big matrices run fastest at 4-6 units per thread (Phi-3's
    // 96-unit rows: 16 threads, 1480 GB/s vs 1150 at 32; its 256-unit down rows: 64 threads, 1350 vs 970 at 16);
    // then more threads per row only while the rows are too few to give every SM ~16 warps (Qwen's 896-row down
    // matrices: 64 threads, 6.3 us vs 6.9 at 32), keeping >= 2 units per thread.
    int tpr = 16;
    while (tpr < kThreads && units > 6LL * tpr) tpr *= 2;
    while (tpr < kThreads && n_out * tpr < 16LL * 32 * sm_count() && units >= 2LL * 2 * tpr) tpr *= 2;
    return tpr;
}

int64_t q8_vector_bytes(int64_t cols) {
    return round256(cols) + round256(cols / kQ8Block * 4) + round256(cols / 16 * 4);
}

Q8Vector q8_vector_at(void* base, int64_t cols) {
    auto* b = static_cast<std::byte*>(base);
    const int64_t d_at = round256(cols), s_at = d_at + round256(cols / kQ8Block * 4);
    return {reinterpret_cast<int8_t*>(b), reinterpret_cast<float*>(b + d_at), reinterpret_cast<int32_t*>(b + s_at)};
}

void quantize_q8_columns(const float* x, int64_t x_stride, int n_cols, const float* norm, float eps, int64_t cols,
                         Q8Vector out, cudaStream_t s) {
    if (cols <= 0 || cols % kQ8Block != 0) {
        throw Error(ErrorCode::InvalidArgument, "quantize_q8: length " + std::to_string(cols) +
                                                    " is not a positive multiple of " + std::to_string(kQ8Block));
    }
    if (reinterpret_cast<uintptr_t>(out.q) % 16 != 0) {
        throw Error(ErrorCode::InvalidArgument, "quantize_q8: q must be 16-byte aligned");
    }
    if (n_cols < 1 || n_cols > 65535) {
        throw Error(ErrorCode::InvalidArgument, "quantize_q8: " + std::to_string(n_cols) + " columns (1 .. 65535)");
    }
    const int64_t blocks = (cols / 32 + kWarps - 1) / kWarps;
    launch_pdl(quantize_q8_kernel, dim3(static_cast<unsigned>(blocks), static_cast<unsigned>(n_cols)), dim3(kThreads),
               0, s, x, x_stride, norm, eps, static_cast<int>(cols), out.q, out.d, out.s, q8_vector_bytes(cols));
}

void quantize_q8(const float* x, const float* norm, float eps, int64_t cols, Q8Vector out, cudaStream_t s) {
    quantize_q8_columns(x, 0, 1, norm, eps, cols, out, s);
}

bool q8_matvec_type_supported(TensorType t) { return q8_block_bytes(t) > 0; }

bool q8_matvec_supported(const Q8Matvec& op) {
    if (op.n_src < 1 || op.n_src > 3 || op.cols <= 0) return false;
    for (int i = 0; i < op.n_src; ++i) {
        if (!q8_matvec_type_supported(op.src[i].type)) return false;
        if (op.cols % gguf::traits(op.src[i].type).block_elems != 0) return false;
    }
    return true;
}

Q8Params q8_matvec_params(const Q8Matvec& op) {
    auto bad = [](const std::string& what) { throw Error(ErrorCode::InvalidArgument, "q8_matvec: " + what); };
    if (op.n_src < 1 || op.n_src > 3) bad("needs 1 to 3 row sources, got " + std::to_string(op.n_src));
    if (op.cols <= 0 || op.cols % kQ8Block != 0) {
        bad("row length " + std::to_string(op.cols) + " is not a positive multiple of " + std::to_string(kQ8Block));
    }
    check_row_sources(op.src, op.n_src, op.cols, op.epilogue, q8_matvec_type_supported, "q8_matvec",
                      "int8-activation CUDA matvec");
    if (reinterpret_cast<uintptr_t>(op.x.q) % 16 != 0 || op.x.d == nullptr) bad("x.q must be 16-byte aligned, x.d set");
    for (int i = 0; i < op.n_src; ++i) {
        // The single column reads Q4_K/Q5_K blocks with 16-byte loads (Unit<>::q8_load_aligned).
        const gguf::TensorType t = op.src[i].type;
        if ((t == gguf::TensorType::Q4_K || t == gguf::TensorType::Q5_K) &&
            reinterpret_cast<uintptr_t>(op.src[i].w) % 16 != 0) {
            bad("row source " + std::to_string(i) + " (" + std::string(gguf::type_name(t)) +
                ") must be 16-byte aligned");
        }
    }

    Q8Params p{};
    p.xq = op.x.q;
    p.xd = op.x.d;
    p.xs = op.x.s;
    p.x_stride = q8_vector_bytes(op.cols);
    p.n_cols = op.n_cols;
    p.y_stride = op.y_stride;
    set_row_sources(p, op, q8_block_bytes, q8_block_elems);
    if (op.n_cols < 1 || (op.n_cols > 1 && op.y_stride < p.n_out)) {
        bad(std::to_string(op.n_cols) + " columns of " + std::to_string(p.n_out) +
            " outputs with an output stride of " + std::to_string(op.y_stride));
    }
    p.tpr = q8_matvec_threads_per_row(p.n_out, op.cols);
    return p;
}

namespace {

bool uses_mma(const Params& p, int op_min_cols) {
    const int tuned = tuning::q8_mma_min_columns();
    const int min_cols = op_min_cols > 0 ? op_min_cols : tuned > 0 ? tuned : kDefaultMmaMinCols;
    return p.n_cols >= min_cols && q8_mma_can_run(p);
}

}  // namespace

bool q8_matvec_uses_mma(const Q8Matvec& op) { return uses_mma(q8_matvec_params(op), op.mma_min_cols); }

void q8_matvec(const Q8Matvec& op, cudaStream_t s) {
    const Params p = q8_matvec_params(op);
    if (uses_mma(p, op.mma_min_cols)) {
        const int stage = op.mma_stage < 0 ? 0 : op.mma_stage > 0 ? op.mma_stage : -1;
        q8_mma_launch(p, q8_mma_shape(p, op.mma_block_cols, op.mma_warps, op.mma_cluster, stage, op.mma_max_blocks), s);
        return;
    }
    const int per_iter = kThreads / p.tpr;
    const int64_t iters = (p.n_out + per_iter - 1) / per_iter;
    // 8 blocks of 256 threads per SM fill it (2048 threads); beyond that blocks loop over rows.
    const int64_t grid = std::min<int64_t>(iters, 8LL * sm_count());
    const int max_nc = tuning::q8_max_columns() ? tuning::q8_max_columns() : kDefaultMaxNC;
    const int nc = p.n_cols == 1 ? 1 : p.n_cols == 2 ? 2 : p.n_cols <= 4 ? 4 : p.n_cols <= 8 || max_nc == 8 ? 8 : 16;
    const dim3 g(static_cast<unsigned>(grid), static_cast<unsigned>(std::min(65535, (p.n_cols + nc - 1) / nc)));
    auto* kernel = nc == 1   ? q8_matvec_kernel<1>
                   : nc == 2 ? q8_matvec_kernel<2>
                   : nc == 4 ? q8_matvec_kernel<4>
                   : nc == 8 ? q8_matvec_kernel<8>
                             : q8_matvec_kernel<kMaxNC>;
    launch_pdl(kernel, g, dim3(kThreads), 0, s, p);
}

}  // namespace orcd::cuda
