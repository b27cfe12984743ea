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
#include <cuda_fp16.h>

#include <cmath>

#include "backend/cuda/kv_paging.cuh"
#include "backend/cuda/launch_check.h"
#include "backend/cuda/ops.h"
#include "backend/cuda/pdl.cuh"
#include "device/device_query.h"
#include "model/attention_window.h"

namespace orcd::cuda::detail {

constexpr int kAttnChunk = 64;  // cache positions per flash-decoding partial
constexpr int64_t attention_chunks(int64_t n_ctx) { return (n_ctx + kAttnChunk - 1) / kAttnChunk; }

namespace {

// 256 threads (was 128): a Qwen2.5-0.5B group of 7 query heads x 64 positions is 448 scores and 448 outputs, done
// in 2 rounds instead of 4 (only n_chunks x n_kv_heads blocks run: 6 at position ~100). Each score and output is
// still one thread's fixed-order sum, so the results do not change.
constexpr int kThreads = 256;

// Workspace layout for n_heads heads and n_chunks chunks: o [n_heads][n_chunks][head_dim], then m and l
// [n_heads][n_chunks] each.
struct Partials {
    float* o;
    float* m;
    float* l;
};

__host__ __device__ inline Partials partials(void* ws, int n_heads, int64_t n_chunks, int head_dim) {
    float* base = static_cast<float*>(ws);
    const int64_t n = static_cast<int64_t>(n_heads) * n_chunks;
    return {base, base + n * head_dim, base + n * head_dim + n};
}

__host__ __device__ inline int64_t partial_floats(int n_heads, int64_t n_chunks, int head_dim) {
    return static_cast<int64_t>(n_heads) * n_chunks * (head_dim + 2);
}

__global__ void __launch_bounds__(kThreads)
    attention_partial(const float* __restrict__ q_all, int64_t q_stride, KvCacheView kv, DecodeColumns cols,
                      int n_heads, int64_t n_chunks, uint32_t window, void* ws_all) {
    pdl_wait();
    pdl_trigger();
    const int kvh = static_cast<int>(blockIdx.y);
    const int col = static_cast<int>(blockIdx.z);
    const int n_kv_heads = kv.n_kv_heads, head_dim = kv.head_dim;
    const int32_t pos = cols.pos[col];
    const int32_t* table = kv_table(kv, cols.table, col);
    const float* q = q_all + col * q_stride;
    const int64_t n_keys = static_cast<int64_t>(pos) + 1;
    const int64_t first = model::first_attended(pos, window);
    const int group = n_heads / n_kv_heads;
    const float scale = 1.f / sqrtf(static_cast<float>(head_dim));
    const Partials part = partials(static_cast<float*>(ws_all) + col * partial_floats(n_heads, n_chunks, head_dim),
                                   n_heads, n_chunks, head_dim);

    extern __shared__ float smem[];
    float* qs = smem;                     // [group][head_dim]
    float* ps = smem + group * head_dim;  // [group][kAttnChunk]
    __shared__ int64_t rows[kAttnChunk];  // the chunk's cache rows (offsets in halves, this KV head's slice)
    for (int i = threadIdx.x; i < group * head_dim; i += kThreads) {
        qs[i] = q[static_cast<int64_t>(kvh) * group * head_dim + i];  // query heads kvh*group .. +group-1
    }
    const int64_t c_first = first / kAttnChunk;
    for (int64_t chunk = c_first + blockIdx.x; chunk * kAttnChunk < n_keys; chunk += gridDim.x) {
        const int64_t p0 = chunk * kAttnChunk;
        const int n_skip = static_cast<int>(first > p0 ? first - p0 : 0);  // masked keys at the chunk's start
        const int n_valid = static_cast<int>(n_keys - p0 < kAttnChunk ? n_keys - p0 : kAttnChunk);
        for (int j = threadIdx.x; j < n_valid; j += kThreads) {
            rows[j] = kv_row_offset(kv, table, p0 + j) + static_cast<int64_t>(kvh) * head_dim;
        }
        __syncthreads();

        // Scores: thread per (head of the group, position); a K row is head_dim halves, read 8 at a time.
        for (int i = threadIdx.x; i < group * kAttnChunk; i += kThreads) {
            const int g = i / kAttnChunk, j = i % kAttnChunk;
            float s = -INFINITY;
            if (j < n_valid && j >= n_skip) {
                const uint4* kr = reinterpret_cast<const uint4*>(kv.k + rows[j]);
                const float* qg = qs + g * head_dim;
                float acc = 0.f;
                for (int d8 = 0; d8 < head_dim / 8; ++d8) {
                    const uint4 raw = kr[d8];
                    const __half2* h = reinterpret_cast<const __half2*>(&raw);
#pragma unroll
                    for (int e = 0; e < 4; ++e) {
                        const float2 f = __half22float2(h[e]);
                        acc += qg[8 * d8 + 2 * e] * f.x;
                        acc += qg[8 * d8 + 2 * e + 1] * f.y;
                    }
                }
                s = acc * scale;
            }
            ps[i] = s;
        }
        __syncthreads();

        // Per head of the group (one warp each, in turn): chunk max, exp, chunk sum; butterflies, fixed order.
        const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
        for (int g = warp; g < group; g += kThreads / 32) {
            float* pg = ps + g * kAttnChunk;
            float m = -INFINITY;
            for (int j = lane; j < kAttnChunk; j += 32) m = fmaxf(m, pg[j]);
#pragma unroll
            for (int off = 16; off > 0; off >>= 1) m = fmaxf(m, __shfl_xor_sync(0xffffffffu, m, off));
            float l = 0.f;
            for (int j = lane; j < kAttnChunk; j += 32) {
                const float e = j < n_valid && j >= n_skip ? expf(pg[j] - m) : 0.f;
                pg[j] = e;
                l += e;
            }
#pragma unroll
            for (int off = 16; off > 0; off >>= 1) l += __shfl_xor_sync(0xffffffffu, l, off);
            if (lane == 0) {
                const int64_t h = static_cast<int64_t>(kvh) * group + g;
                part.m[h * n_chunks + chunk] = m;
                part.l[h * n_chunks + chunk] = l;
            }
        }
        __syncthreads();

        // o[g][d] = sum_j p[g][j] * V[p0 + j][d]: consecutive threads read consecutive halves of a V row.
        for (int i = threadIdx.x; i < group * head_dim; i += kThreads) {
            const int g = i / head_dim, d = i % head_dim;
            const float* pg = ps + g * kAttnChunk;
            float acc = 0.f;
            for (int j = 0; j < n_valid; ++j) acc += pg[j] * __half2float(__ushort_as_half(kv.v[rows[j] + d]));
            const int64_t h = static_cast<int64_t>(kvh) * group + g;
            part.o[(h * n_chunks + chunk) * head_dim + d] = acc;
        }
        __syncthreads();  // rows and ps are refilled by the next chunk
    }
}

// One block per (query head, column), one thread per output element.
__global__ void attention_combine(int n_heads, int head_dim, int64_t n_chunks, DecodeColumns cols, uint32_t window,
                                  const void* ws_all, float* out_all, int64_t out_stride) {
    pdl_wait();
    pdl_trigger();
    const int h = blockIdx.x;
    const int col = static_cast<int>(blockIdx.y);
    const int32_t pos = cols.pos[col];
    const int64_t used = (static_cast<int64_t>(pos) + 1 + kAttnChunk - 1) / kAttnChunk;
    const int64_t c0 = model::first_attended(pos, window) / kAttnChunk;  // 0 without a window
    const Partials part = partials(
        const_cast<float*>(static_cast<const float*>(ws_all)) + col * partial_floats(n_heads, n_chunks, head_dim),
        n_heads, n_chunks, head_dim);
    float* out = out_all + col * out_stride;
    const float* m = part.m + static_cast<int64_t>(h) * n_chunks;
    const float* l = part.l + static_cast<int64_t>(h) * n_chunks;
    float mx = -INFINITY;
    for (int64_t c = c0; c < used; ++c) mx = fmaxf(mx, m[c]);
    for (int d = threadIdx.x; d < head_dim; d += blockDim.x) {
        float num = 0.f, den = 0.f;
        for (int64_t c = c0; c < used; ++c) {
            const float w = expf(m[c] - mx);
            den += l[c] * w;
            num += part.o[(static_cast<int64_t>(h) * n_chunks + c) * head_dim + d] * w;
        }
        out[static_cast<int64_t>(h) * head_dim + d] = num / den;
    }
}

}  // namespace

void launch_attention_decode(const float* q, int64_t q_stride, int n_cols, const KvCacheView& kv, int n_heads,
                             const DecodeColumns& cols, float* out, int64_t out_stride, void* workspace,
                             uint32_t window, cudaStream_t s) {
    const int64_t n_chunks = attention_chunks(kv.n_ctx);
    const int group = n_heads / kv.n_kv_heads;
    const size_t smem = static_cast<size_t>(group) * (kv.head_dim + kAttnChunk) * sizeof(float);
    // Chunk slots per (KV head, column): enough blocks for ~4 waves of the GPU, never more than the cache has chunks.
    // A function of the cache size and the column count only (fixed for a captured graph); which slot computes a
    // chunk does not change its arithmetic.
    const int64_t want = (4LL * ::orcd::device::sm_count() + kv.n_kv_heads * n_cols - 1) / (kv.n_kv_heads * n_cols);
    const int64_t slots = want < 1 ? 1 : (want > n_chunks ? n_chunks : want);
    launch_pdl(attention_partial,
               dim3(static_cast<unsigned>(slots), static_cast<unsigned>(kv.n_kv_heads), static_cast<unsigned>(n_cols)),
               dim3(kThreads), smem, s, q, q_stride, kv, cols, n_heads, n_chunks, window, workspace);
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

void attention_decode(const float* q, int64_t q_stride, int n_cols, const KvCacheView& kv, int n_heads,
                      const DecodeColumns& cols, float* out, int64_t out_stride, void* workspace, cudaStream_t stream,
                      uint32_t window) {
    using detail::require;
    detail::require_decode_columns(kv, n_cols, cols, n_heads, "attention_decode");
    // K rows are read 8 halves (16 bytes) at a time.
    require(kv.head_dim % 8 == 0, "attention_decode", "head dimension {} is not a multiple of 8", kv.head_dim);
    const size_t smem =
        static_cast<size_t>(n_heads / kv.n_kv_heads) * (kv.head_dim + detail::kAttnChunk) * sizeof(float);
    require(smem <= 48 * 1024, "attention_decode",
            "a group of {} heads of dimension {} needs {} B of shared memory (limit 48 KiB)", n_heads / kv.n_kv_heads,
            kv.head_dim, smem);
    require(workspace != nullptr, "attention_decode", "no workspace (see attention_workspace_bytes)");
    detail::launch_attention_decode(q, q_stride, n_cols, kv, n_heads, cols, out, out_stride, workspace, window, stream);
    detail::check_launch();
}

}  // namespace orcd::cuda
