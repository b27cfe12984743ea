#pragma once
// The work of the decode attention's two kernels (attention.cu) as functions of a block's share of it: the kernels hand
// them blockIdx and gridDim, the persistent decode step (decode_persistent.cu) its block's share of one phase of the
// token. A chunk's partial and a head's combination are each computed by one block in a fixed order, whichever block
// it is, so both callers produce the same bits. Device code only.
#include <cuda_fp16.h>

#include <cmath>
#include <cstdint>

#include "backend/cuda/kv_paging.cuh"
#include "backend/cuda/ops.h"
#include "model/attention_window.h"

namespace orcd::cuda::detail {

constexpr int kAttnChunk = 64;  // cache positions per flash-decoding partial
constexpr int64_t attention_chunks(int64_t n_ctx) { return (n_ctx + kAttnChunk - 1) / kAttnChunk; }

// 256 threads (was 128): a Qwen2.5-0.5B group of 7 query heads x 64 positions is 448 scores and 448 outputs, done
// in 2 rounds instead of 4 (only n_chunks x n_kv_heads blocks run: 6 at position ~100). Each score and output is
// still one thread's fixed-order sum, so the results do not change.
constexpr int kAttnThreads = 256;

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

// Shared memory attention_partial_chunks needs beyond its rows: the group's queries and the chunk's scores.
__host__ __device__ inline int64_t attention_partial_smem_floats(int group, int head_dim) {
    return static_cast<int64_t>(group) * (head_dim + kAttnChunk);
}

// The partials of KV head kvh of column col (attention.cu's header): the block takes the chunks slot, slot + n_slots,
// ... of the column's attended ones. smem: attention_partial_smem_floats floats; rows: kAttnChunk entries. Every
// thread of the block (kAttnThreads) calls it; smem and rows are free again when it returns.
__device__ __forceinline__ void attention_partial_chunks(const float* q_all, int64_t q_stride, const KvCacheView& kv,
                                                         const DecodeColumns& cols, int n_heads, int64_t n_chunks,
                                                         uint32_t window, void* ws_all, int64_t slot, int64_t n_slots,
                                                         int kvh, int col, float* smem, int64_t* rows) {
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

    float* qs = smem;                     // [group][head_dim]
    float* ps = smem + group * head_dim;  // [group][kAttnChunk]
    // rows: the chunk's cache rows (offsets in halves, this KV head's slice)
    for (int i = threadIdx.x; i < group * head_dim; i += kAttnThreads) {
        qs[i] = q[static_cast<int64_t>(kvh) * group * head_dim + i];  // query heads kvh*group .. +group-1
    }
    const int64_t c_first = first / kAttnChunk;
    for (int64_t chunk = c_first + slot; chunk * kAttnChunk < n_keys; chunk += n_slots) {
        const int64_t p0 = chunk * kAttnChunk;
        const int n_skip = static_cast<int>(first > p0 ? first - p0 : 0);  // masked keys at the chunk's start
        const int n_valid = static_cast<int>(n_keys - p0 < kAttnChunk ? n_keys - p0 : kAttnChunk);
        for (int j = threadIdx.x; j < n_valid; j += kAttnThreads) {
            rows[j] = kv_row_offset(kv, table, p0 + j) + static_cast<int64_t>(kvh) * head_dim;
        }
        __syncthreads();

        // Scores: thread per (head of the group, position); a K row is head_dim halves, read 8 at a time.
        for (int i = threadIdx.x; i < group * kAttnChunk; i += kAttnThreads) {
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
        for (int g = warp; g < group; g += kAttnThreads / 32) {
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
        for (int i = threadIdx.x; i < group * head_dim; i += kAttnThreads) {
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

// The chunks of column col's partials that a combination sums: c0 .. used - 1 (c0 > 0 only under a sliding window).
struct CombinedChunks {
    int64_t c0, used;
};

__device__ __forceinline__ CombinedChunks combined_chunks(const DecodeColumns& cols, uint32_t window, int col) {
    const int32_t pos = cols.pos[col];
    return {model::first_attended(pos, window) / kAttnChunk,
            (static_cast<int64_t>(pos) + 1 + kAttnChunk - 1) / kAttnChunk};
}

// Column col's partials in a workspace of columns laid out back to back.
__device__ __forceinline__ Partials column_partials(const void* ws_all, int n_heads, int64_t n_chunks, int head_dim,
                                                    int col) {
    return partials(
        const_cast<float*>(static_cast<const float*>(ws_all)) + col * partial_floats(n_heads, n_chunks, head_dim),
        n_heads, n_chunks, head_dim);
}

// Element d of query head h combined: the largest chunk max, then one sum over the chunks in chunk order. Every
// caller (attention_combine_head, and attention.cu's kernel that quantizes as it combines) computes an element so,
// whatever thread it falls to, which is what makes their outputs the same bits.
__device__ __forceinline__ float combined_element(const Partials& part, int64_t n_chunks, int head_dim,
                                                  CombinedChunks k, int h, int d) {
    const float* m = part.m + static_cast<int64_t>(h) * n_chunks;
    const float* l = part.l + static_cast<int64_t>(h) * n_chunks;
    float mx = -INFINITY;
    for (int64_t c = k.c0; c < k.used; ++c) mx = fmaxf(mx, m[c]);
    float num = 0.f, den = 0.f;
    for (int64_t c = k.c0; c < k.used; ++c) {
        const float w = expf(m[c] - mx);
        den += l[c] * w;
        num += part.o[(static_cast<int64_t>(h) * n_chunks + c) * head_dim + d] * w;
    }
    return num / den;
}

// Query head h of column col combined into out_all + col * out_stride: threads tid, tid + n_threads, ... of the block
// each compute output elements d = tid, tid + n_threads, ... (combined_element).
__device__ __forceinline__ void attention_combine_head(int n_heads, int head_dim, int64_t n_chunks,
                                                       const DecodeColumns& cols, uint32_t window, const void* ws_all,
                                                       float* out_all, int64_t out_stride, int h, int col, int tid,
                                                       int n_threads) {
    const CombinedChunks k = combined_chunks(cols, window, col);
    const Partials part = column_partials(ws_all, n_heads, n_chunks, head_dim, col);
    float* out = out_all + col * out_stride;
    for (int d = tid; d < head_dim; d += n_threads) {
        out[static_cast<int64_t>(h) * head_dim + d] = combined_element(part, n_chunks, head_dim, k, h, d);
    }
}

}  // namespace orcd::cuda::detail
