// Decode attention (one query token) with grouped-query heads over an f16 KV cache, as flash-decoding:
//  1. partial kernel, grid (chunk, kv head): for the kAttnChunk cache positions of its chunk, the scores of all
//     query heads of the group (K rows read with 16-byte loads, shared by the group), the chunk's max m, its sum of
//     exp(s - m) l, and o = sum exp(s - m) * V. Chunks past the current position exit at once (the grid is sized by
//     the cache, not the position, so a captured graph stays valid as the position moves), and so do chunks wholly
//     before a sliding window's first key (model::first_attended); keys before it inside a chunk are masked.
//  2. combine kernel, one block per query head: rescales the partials of the attended chunks to their max and sums
//     them in chunk order. Every sum has a fixed order, so results are bit-identical from run to run.
#include <cuda_fp16.h>

#include <cmath>

#include "backend/cuda/ops_kernels.h"
#include "model/attention_window.h"

namespace orcd::cuda::detail {

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

__global__ void __launch_bounds__(kThreads)
    attention_partial(const float* __restrict__ q, const uint16_t* __restrict__ kc, const uint16_t* __restrict__ vc,
                      int n_heads, int n_kv_heads, int head_dim, int64_t n_chunks, const int32_t* pos, uint32_t window,
                      void* ws) {
    const int64_t chunk = blockIdx.x;
    const int kvh = static_cast<int>(blockIdx.y);
    const int64_t n_keys = static_cast<int64_t>(*pos) + 1;
    const int64_t first = model::first_attended(*pos, window);
    const int64_t p0 = chunk * kAttnChunk;
    // The combine reads only the chunks from first's to n_keys's.
    if (p0 >= n_keys || p0 + kAttnChunk <= first) return;
    const int n_skip = static_cast<int>(first > p0 ? first - p0 : 0);  // masked keys at the chunk's start
    const int n_valid = static_cast<int>(n_keys - p0 < kAttnChunk ? n_keys - p0 : kAttnChunk);
    const int group = n_heads / n_kv_heads;
    const int64_t kv_row = static_cast<int64_t>(n_kv_heads) * head_dim;
    const float scale = 1.f / sqrtf(static_cast<float>(head_dim));

    extern __shared__ float smem[];
    float* qs = smem;                       // [group][head_dim]
    float* ps = smem + group * head_dim;    // [group][kAttnChunk]
    for (int i = threadIdx.x; i < group * head_dim; i += kThreads) {
        qs[i] = q[static_cast<int64_t>(kvh) * group * head_dim + i];  // query heads kvh*group .. +group-1
    }
    __syncthreads();

    // Scores: thread per (head of the group, position); a K row is head_dim halves, read 8 at a time.
    for (int i = threadIdx.x; i < group * kAttnChunk; i += kThreads) {
        const int g = i / kAttnChunk, j = i % kAttnChunk;
        float s = -INFINITY;
        if (j < n_valid && j >= n_skip) {
            const uint4* kr =
                reinterpret_cast<const uint4*>(kc + (p0 + j) * kv_row + static_cast<int64_t>(kvh) * head_dim);
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

    // Per head of the group (one warp each, in turn): chunk max, exp, chunk sum — butterfly shuffles, fixed order.
    const Partials part = partials(ws, n_heads, n_chunks, head_dim);
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
        const uint16_t* vcol = vc + p0 * kv_row + static_cast<int64_t>(kvh) * head_dim + d;
        const float* pg = ps + g * kAttnChunk;
        float acc = 0.f;
        for (int j = 0; j < n_valid; ++j) acc += pg[j] * __half2float(__ushort_as_half(vcol[j * kv_row]));
        const int64_t h = static_cast<int64_t>(kvh) * group + g;
        part.o[(h * n_chunks + chunk) * head_dim + d] = acc;
    }
}

// One block per query head, one thread per output element.
__global__ void attention_combine(int n_heads, int head_dim, int64_t n_chunks, const int32_t* pos, uint32_t window,
                                  const void* ws, float* out) {
    const int h = blockIdx.x;
    const int64_t used = (static_cast<int64_t>(*pos) + 1 + kAttnChunk - 1) / kAttnChunk;
    const int64_t c0 = model::first_attended(*pos, window) / kAttnChunk;  // 0 without a window
    const Partials part = partials(const_cast<void*>(ws), n_heads, n_chunks, head_dim);
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

void launch_attention_decode(const float* q, const KvCacheView& kv, int n_heads, const int32_t* pos, float* out,
                             void* workspace, uint32_t window, cudaStream_t s) {
    const int64_t n_chunks = attention_chunks(kv.n_ctx);
    const int group = n_heads / kv.n_kv_heads;
    const size_t smem = static_cast<size_t>(group) * (kv.head_dim + kAttnChunk) * sizeof(float);
    attention_partial<<<dim3(static_cast<unsigned>(n_chunks), static_cast<unsigned>(kv.n_kv_heads)), kThreads, smem,
                        s>>>(q, kv.k, kv.v, n_heads, kv.n_kv_heads, kv.head_dim, n_chunks, pos, window,
                                                                     workspace);
    attention_combine<<<static_cast<unsigned>(n_heads), 128, 0, s>>>(n_heads, kv.head_dim, n_chunks, pos, window,
                                                                     workspace, out);
}

}  // namespace orcd::cuda::detail
