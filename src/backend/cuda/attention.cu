// Decode attention (one query token per column, a batch of columns) with grouped-query heads over an f16 KV cache,
// contiguous or paged (kv_paging.cuh), as flash-decoding:
//  1. partial kernel, grid (chunk slot, kv head, column): for the kAttnChunk cache positions of a chunk, the scores of
//     all query heads of the group (K rows read with 16-byte loads, shared by the group), the chunk's max m, its sum
//     of exp(s - m) l, and o = sum exp(s - m) * V. A block takes chunks blockIdx.x, + gridDim.x, ... of its column up
//     to the column's position (the grid is sized by the cache and the column count, not the positions, so a captured
//     graph stays valid as positions move; each chunk's arithmetic is the same whichever block computes it), skipping
//     chunks wholly before a sliding window's first key (model::first_attended); keys before it inside a chunk are
//     masked.
//  2. combine kernel, one block per (query head, column): rescales the partials of the attended chunks to their max
//     and sums them in chunk order. Every sum has a fixed order, and a column's chunks are a function of its own
//     position only, so results are bit-identical from run to run and whatever else shares the batch.
//  The kernels' work is in attention_decode.cuh, which the persistent decode step shares.
// attention_decode_q8 replaces the combine kernel by one that quantizes as it combines (matvec_q8.h's layout): the
// combined values are the same floats, quantized by quantize_q8's own code, so the int8 input of the O projection
// has the bits quantize_q8 gives on attention_decode's output, one dependent launch sooner.
#include "backend/cuda/attention_decode.cuh"
#include "backend/cuda/launch_check.h"
#include "backend/cuda/matvec_q8.h"
#include "backend/cuda/matvec_q8_rows.cuh"
#include "backend/cuda/ops.h"
#include "backend/cuda/pdl.cuh"
#include "device/device_query.h"

namespace orcd::cuda::detail {

namespace {

__global__ void __launch_bounds__(kAttnThreads)
    attention_partial(const float* __restrict__ q_all, int64_t q_stride, KvCacheView kv, DecodeColumns cols,
                      int n_heads, int64_t n_chunks, uint32_t window, void* ws_all) {
    pdl_wait();
    pdl_trigger();
    extern __shared__ float smem[];
    __shared__ int64_t rows[kAttnChunk];
    attention_partial_chunks(q_all, q_stride, kv, cols, n_heads, n_chunks, window, ws_all, blockIdx.x, gridDim.x,
                             static_cast<int>(blockIdx.y), static_cast<int>(blockIdx.z), smem, rows);
}

// One block per (query head, column), one thread per output element.
__global__ void attention_combine(int n_heads, int head_dim, int64_t n_chunks, DecodeColumns cols, uint32_t window,
                                  const void* ws_all, float* out_all, int64_t out_stride) {
    pdl_wait();
    pdl_trigger();
    attention_combine_head(n_heads, head_dim, n_chunks, cols, window, ws_all, out_all, out_stride,
                           static_cast<int>(blockIdx.x), static_cast<int>(blockIdx.y), static_cast<int>(threadIdx.x),
                           static_cast<int>(blockDim.x));
}

// Warp w of block k takes 32-block 8k + w of column blockIdx.y's n_heads x head_dim outputs: each lane combines its
// element (combined_element; a 32-block may span two heads) and the warp quantizes the 32 (quantize_32block).
__global__ void __launch_bounds__(q8rows::kThreads)
    attention_combine_q8(int n_heads, int head_dim, int64_t n_chunks, DecodeColumns cols, uint32_t window,
                         const void* ws_all, Q8Vector out, int64_t out_stride) {
    pdl_wait();
    pdl_trigger();
    const int col = static_cast<int>(blockIdx.y);
    const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
    const int b = static_cast<int>(blockIdx.x) * q8rows::kWarps + warp;
    if (b * 32 >= n_heads * head_dim) return;  // a whole warp leaves: quantize_32block's shuffles need all 32 lanes
    const int i = b * 32 + lane;
    const float v = combined_element(column_partials(ws_all, n_heads, n_chunks, head_dim, col), n_chunks, head_dim,
                                     combined_chunks(cols, window, col), i / head_dim, i % head_dim);
    const int64_t at = col * out_stride;  // bytes: quantize_q8_columns' column layout
    q8rows::quantize_32block(v, b, lane, out.q + at, reinterpret_cast<float*>(reinterpret_cast<char*>(out.d) + at),
                             reinterpret_cast<int32_t*>(reinterpret_cast<char*>(out.s) + at));
}

void launch_attention_partials(const float* q, int64_t q_stride, int n_cols, const KvCacheView& kv, int n_heads,
                               const DecodeColumns& cols, void* workspace, uint32_t window, cudaStream_t s) {
    const int64_t n_chunks = attention_chunks(kv.n_ctx);
    const int group = n_heads / kv.n_kv_heads;
    const size_t smem = static_cast<size_t>(attention_partial_smem_floats(group, kv.head_dim)) * sizeof(float);
    // Chunk slots per (KV head, column): enough blocks for ~4 waves of the GPU, never more than the cache has chunks.
    // A function of the cache size and the column count only (fixed for a captured graph); which slot computes a
    // chunk does not change its arithmetic.
    const int64_t want = (4LL * ::orcd::device::sm_count() + kv.n_kv_heads * n_cols - 1) / (kv.n_kv_heads * n_cols);
    const int64_t slots = want < 1 ? 1 : (want > n_chunks ? n_chunks : want);
    launch_pdl(attention_partial,
               dim3(static_cast<unsigned>(slots), static_cast<unsigned>(kv.n_kv_heads), static_cast<unsigned>(n_cols)),
               dim3(kAttnThreads), smem, s, q, q_stride, kv, cols, n_heads, n_chunks, window, workspace);
}

}  // namespace

void launch_attention_decode(const float* q, int64_t q_stride, int n_cols, const KvCacheView& kv, int n_heads,
                             const DecodeColumns& cols, float* out, int64_t out_stride, void* workspace,
                             uint32_t window, cudaStream_t s) {
    const int64_t n_chunks = attention_chunks(kv.n_ctx);
    launch_attention_partials(q, q_stride, n_cols, kv, n_heads, cols, workspace, window, s);
    launch_pdl(attention_combine, dim3(static_cast<unsigned>(n_heads), static_cast<unsigned>(n_cols)), dim3(128), 0, s,
               n_heads, kv.head_dim, n_chunks, cols, window, workspace, out, out_stride);
}

}  // namespace orcd::cuda::detail

namespace orcd::cuda {

size_t attention_workspace_bytes(int64_t n_ctx, int n_heads, int head_dim, int n_cols) {
    return static_cast<size_t>(n_cols) *
           static_cast<size_t>(detail::partial_floats(n_heads, detail::attention_chunks(n_ctx), head_dim)) *
           sizeof(float);
}

namespace {

// The arguments both entry points take, checked for `op`.
void check_attention(const char* op, const KvCacheView& kv, int n_cols, const DecodeColumns& cols, int n_heads,
                     const void* workspace) {
    using detail::require;
    detail::require_decode_columns(kv, n_cols, cols, n_heads, op);
    // K rows are read 8 halves (16 bytes) at a time.
    require(kv.head_dim % 8 == 0, op, "head dimension {} is not a multiple of 8", kv.head_dim);
    const size_t smem =
        static_cast<size_t>(detail::attention_partial_smem_floats(n_heads / kv.n_kv_heads, kv.head_dim)) *
        sizeof(float);
    require(smem <= 48 * 1024, op, "a group of {} heads of dimension {} needs {} B of shared memory (limit 48 KiB)",
            n_heads / kv.n_kv_heads, kv.head_dim, smem);
    require(workspace != nullptr, op, "no workspace (see attention_workspace_bytes)");
}

}  // namespace

void attention_decode(const float* q, int64_t q_stride, int n_cols, const KvCacheView& kv, int n_heads,
                      const DecodeColumns& cols, float* out, int64_t out_stride, void* workspace, cudaStream_t stream,
                      uint32_t window) {
    check_attention("attention_decode", kv, n_cols, cols, n_heads, workspace);
    detail::launch_attention_decode(q, q_stride, n_cols, kv, n_heads, cols, out, out_stride, workspace, window, stream);
    detail::check_launch();
}

void attention_decode_q8(const float* q, int64_t q_stride, int n_cols, const KvCacheView& kv, int n_heads,
                         const DecodeColumns& cols, const Q8Vector& out, void* workspace, cudaStream_t stream,
                         uint32_t window) {
    using detail::require;
    check_attention("attention_decode_q8", kv, n_cols, cols, n_heads, workspace);
    const int64_t width = static_cast<int64_t>(n_heads) * kv.head_dim;
    require(width % kQ8Block == 0, "attention_decode_q8", "{} heads of dimension {} ({} values) are not 32-blocks",
            n_heads, kv.head_dim, width);
    require(reinterpret_cast<uintptr_t>(out.q) % 16 == 0, "attention_decode_q8", "q must be 16-byte aligned");
    detail::launch_attention_partials(q, q_stride, n_cols, kv, n_heads, cols, workspace, window, stream);
    const int64_t blocks = (width / 32 + q8rows::kWarps - 1) / q8rows::kWarps;
    launch_pdl(detail::attention_combine_q8, dim3(static_cast<unsigned>(blocks), static_cast<unsigned>(n_cols)),
               dim3(q8rows::kThreads), 0, stream, n_heads, static_cast<int>(kv.head_dim),
               detail::attention_chunks(kv.n_ctx), cols, window, workspace, out, q8_vector_bytes(width));
    detail::check_launch();
}

}  // namespace orcd::cuda
