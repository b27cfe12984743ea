// Element-wise, normalization, rotary and selection kernels (ops.h). Each mirrors the CPU reference expression by
// expression; where nvcc would contract a*b - c*d into an fma (changing the rounding), the products are written with
// __fmul_rn so the GPU rounds as the CPU does. Block reductions are fixed trees: no atomics. The launchers in detail
// take their arguments as given; the entry points of ops.h at the end of the file check them first.
#include "backend/cuda/ops.h"

#include <cooperative_groups.h>
#include <cuda_fp16.h>

#include <cmath>

#include "backend/cuda/half.cuh"
#include "backend/cuda/kv_paging.cuh"
#include "backend/cuda/launch_check.h"
#include "backend/cuda/norm.cuh"
#include "backend/cuda/pdl.cuh"
#include "backend/cuda/rope_store.cuh"

namespace orcd::cuda::detail {

namespace {

constexpr int kThreads = 256;

unsigned blocks_for(int64_t n, int threads = kThreads) { return static_cast<unsigned>((n + threads - 1) / threads); }

__device__ __forceinline__ void store(float* at, float v) { *at = v; }
__device__ __forceinline__ void store(uint16_t* at, float v) { *at = f2h(v); }

// One block per token. Sum of squares in double, as the CPU reference, then a fixed tree over the block. Out is float
// (the decode) or f16 bits (the prefill's GEMM operand: the same value, rounded once more).
template <typename Out>
__global__ void __launch_bounds__(kThreads)
    rms_norm_kernel(const float* __restrict__ x, const float* __restrict__ w, int64_t n, float eps, Out* out) {
    __shared__ double partial[kThreads];
    const float* xt = x + blockIdx.x * n;
    Out* ot = out + blockIdx.x * n;
    const float scale = block_rms_scale<kThreads>(xt, n, eps, partial);
    // All reads of x happen before the barrier above, so a float out may alias x.
    for (int64_t i = threadIdx.x; i < n; i += kThreads) store(&ot[i], __fmul_rn(__fmul_rn(xt[i], scale), w[i]));
}

// One block per (token, head): rms_norm_kernel's arithmetic on one head of a strided row, in place.
__global__ void __launch_bounds__(kThreads)
    rms_norm_heads_kernel(float* x, int n_heads, int64_t row_stride, int head_dim, const float* __restrict__ w,
                          float eps) {
    __shared__ double partial[kThreads];
    const int64_t t = blockIdx.x / n_heads;
    const int h = static_cast<int>(blockIdx.x % n_heads);
    float* xh = x + t * row_stride + static_cast<int64_t>(h) * head_dim;
    const float scale = block_rms_scale<kThreads>(xh, head_dim, eps, partial);
    // All reads of x happen before the scale is returned, so writing in place is safe.
    for (int i = threadIdx.x; i < head_dim; i += kThreads) xh[i] = __fmul_rn(__fmul_rn(xh[i], scale), w[i]);
}

// One thread per (token, head, rotated pair).
__global__ void rope_kernel(float* x, int64_t n_tokens, int n_heads, int head_dim, int n_rot, const int32_t* pos,
                            const double* __restrict__ inv_freq, bool neox) {
    const int half = n_rot / 2;
    const int64_t idx = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
    if (idx >= n_tokens * n_heads * half) return;
    const int i = static_cast<int>(idx % half);
    const int64_t th = idx / half;  // token * n_heads + head
    const int64_t t = th / n_heads;
    double s, c;
    sincos(static_cast<double>(*pos + t) * inv_freq[i], &s, &c);
    const float cf = static_cast<float>(c), sf = static_cast<float>(s);
    float* xh = x + th * head_dim;
    const int i0 = neox ? i : 2 * i;
    const int i1 = neox ? i + half : 2 * i + 1;
    const float a = xh[i0], b = xh[i1];
    xh[i0] = __fsub_rn(__fmul_rn(a, cf), __fmul_rn(b, sf));
    xh[i1] = __fadd_rn(__fmul_rn(a, sf), __fmul_rn(b, cf));
}

__global__ void add_bias_kernel(float* y, const float* __restrict__ bias, int64_t n_tokens, int64_t n) {
    const int64_t idx = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
    if (idx < n_tokens * n) y[idx] += bias[idx % n];
}

__global__ void add_kernel(float* x, const float* __restrict__ y, int64_t n) {
    const int64_t idx = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
    if (idx < n) x[idx] += y[idx];
}

__global__ void swiglu_kernel(const float* gate_up, int64_t n_tokens, int64_t n, float* out) {
    const int64_t idx = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
    if (idx >= n_tokens * n) return;
    const int64_t t = idx / n, i = idx % n;
    const float g = gate_up[t * 2 * n + i], u = gate_up[t * 2 * n + n + i];
    out[idx] = __fmul_rn(g / (1.f + expf(-g)), u);
}

__global__ void kv_store_kernel(KvCacheView kv, int64_t row, int64_t n_tokens, const float* k, const float* v,
                                const int32_t* pos) {
    const int64_t idx = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
    if (idx >= n_tokens * row) return;
    const int64_t dst = kv_row_offset(kv, kv.pages, *pos + idx / row) + idx % row;
    kv.k[dst] = f2h(k[idx]);
    kv.v[dst] = f2h(v[idx]);
}

// Thread index space, in order: q rotated pairs, q's unrotated tail, k pairs, k tail, v elements; grid.y = column.
__global__ void qkv_rope_store_kernel(float* qkv, int64_t stride, const float* __restrict__ bq,
                                      const float* __restrict__ bk, const float* __restrict__ bv, int n_heads,
                                      KvCacheView kv, int n_rot, DecodeColumns cols,
                                      const double* __restrict__ inv_freq, bool neox) {
    pdl_wait();
    pdl_trigger();
    const int col = static_cast<int>(blockIdx.y);
    qkv_rope_store_element(qkv + col * stride, bq, bk, bv, n_heads, kv, n_rot, cols.pos[col],
                           kv_table(kv, cols.table, col), inv_freq, neox,
                           static_cast<int>(blockIdx.x * blockDim.x + threadIdx.x));
}

struct Best {
    float v;
    int32_t i;  // -1: nothing seen yet (or only NaNs)
};

// The larger value wins; equal values go to the lower index, so the result does not depend on the reduction tree.
__device__ __forceinline__ Best better(Best a, Best b) {
    if (b.i < 0) return a;
    if (a.i < 0) return b;
    return (b.v > a.v || (b.v == a.v && b.i < a.i)) ? b : a;
}

constexpr int kArgmaxThreads = 1024;
// Blocks per row, one thread-block cluster (8: the portable cluster size of sm_90). One block alone read a warm 152k
// vocabulary (600 KB) in ~23 us, 2 % of a single-stream decode step; eight share it and meet in distributed shared
// memory, with no second launch and no global scratch.
constexpr int kArgmaxBlocks = 8;

// A cluster per row: block r of the cluster scans elements [r, r + 8, ...) x kArgmaxThreads of the row, reduces them
// with a fixed tree, and block 0 takes the best of the eight in rank order. better() is a total order on (value,
// index), so neither the split nor the visiting order changes the result.
__global__ void __cluster_dims__(kArgmaxBlocks, 1, 1) __launch_bounds__(kArgmaxThreads)
    argmax_kernel(const float* __restrict__ x, int64_t n, int32_t* out, int64_t stride) {
    namespace cg = cooperative_groups;
    cg::cluster_group cluster = cg::this_cluster();
    pdl_wait();
    pdl_trigger();
    const int rank = static_cast<int>(cluster.block_rank());
    x += blockIdx.y * stride;  // one cluster per row
    out += blockIdx.y;
    __shared__ float sv[kArgmaxThreads];
    __shared__ int32_t si[kArgmaxThreads];
    // kArgmaxUnroll independent loads in flight per thread before any is used: the first version loaded one value
    // per iteration and spent ~100 us on a 151936-entry vocabulary (measured: decode_greedy slower than copying the
    // logits).
    constexpr int kArgmaxUnroll = 16;
    constexpr int64_t kStep = static_cast<int64_t>(kArgmaxThreads) * kArgmaxBlocks;
    Best best{0.f, -1};
    for (int64_t base = static_cast<int64_t>(rank) * kArgmaxThreads + threadIdx.x; base < n;
         base += kStep * kArgmaxUnroll) {
        float v[kArgmaxUnroll];
#pragma unroll
        for (int u = 0; u < kArgmaxUnroll; ++u) {
            const int64_t i = base + static_cast<int64_t>(u) * kStep;
            v[u] = i < n ? x[i] : __int_as_float(0x7fc00000);  // past the end: NaN, which never wins
        }
#pragma unroll
        for (int u = 0; u < kArgmaxUnroll; ++u) {
            const int64_t i = base + static_cast<int64_t>(u) * kStep;
            if (!isnan(v[u])) best = better(best, Best{v[u], static_cast<int32_t>(i)});
        }
    }
    sv[threadIdx.x] = best.v;
    si[threadIdx.x] = best.i;
    __syncthreads();
    for (int half = kArgmaxThreads / 2; half > 0; half >>= 1) {
        if (threadIdx.x < half) {
            const Best r =
                better(Best{sv[threadIdx.x], si[threadIdx.x]}, Best{sv[threadIdx.x + half], si[threadIdx.x + half]});
            sv[threadIdx.x] = r.v;
            si[threadIdx.x] = r.i;
        }
        __syncthreads();
    }
    cluster.sync();  // every block's best is in its sv[0] / si[0]
    if (rank == 0 && threadIdx.x == 0) {
        Best r{sv[0], si[0]};
        for (int b = 1; b < kArgmaxBlocks; ++b) {
            r = better(r, Best{*cluster.map_shared_rank(&sv[0], b), *cluster.map_shared_rank(&si[0], b)});
        }
        *out = r.i;
    }
    cluster.sync();  // no block leaves while block 0 may still read its shared memory
}

}  // namespace

template <typename Out>
void launch_rms_norm(const float* x, const float* weight, int64_t n_tokens, int64_t n, float eps, Out* out,
                     cudaStream_t s) {
    rms_norm_kernel<Out><<<static_cast<unsigned>(n_tokens), kThreads, 0, s>>>(x, weight, n, eps, out);
}

void launch_rms_norm_heads(float* x, int64_t n_tokens, int64_t row_stride, int n_heads, int head_dim,
                           const float* weight, float eps, cudaStream_t s) {
    rms_norm_heads_kernel<<<static_cast<unsigned>(n_tokens * n_heads), kThreads, 0, s>>>(x, n_heads, row_stride,
                                                                                         head_dim, weight, eps);
}

void launch_rope(float* x, int64_t n_tokens, int n_heads, int head_dim, int n_rot, const int32_t* pos,
                 const double* inv_freq, RopeLayout layout, cudaStream_t s) {
    const int64_t n = n_tokens * n_heads * (n_rot / 2);
    rope_kernel<<<blocks_for(n), kThreads, 0, s>>>(x, n_tokens, n_heads, head_dim, n_rot, pos, inv_freq,
                                                   layout == RopeLayout::NeoX);
}

void launch_add_bias(float* y, const float* bias, int64_t n_tokens, int64_t n, cudaStream_t s) {
    add_bias_kernel<<<blocks_for(n_tokens * n), kThreads, 0, s>>>(y, bias, n_tokens, n);
}

void launch_add(float* x, const float* y, int64_t n, cudaStream_t s) {
    add_kernel<<<blocks_for(n), kThreads, 0, s>>>(x, y, n);
}

void launch_swiglu(const float* gate_up, int64_t n_tokens, int64_t n, float* out, cudaStream_t s) {
    swiglu_kernel<<<blocks_for(n_tokens * n), kThreads, 0, s>>>(gate_up, n_tokens, n, out);
}

void launch_kv_store(const KvCacheView& kv, int64_t n_tokens, const float* k, const float* v, const int32_t* pos,
                     cudaStream_t s) {
    const int64_t row = static_cast<int64_t>(kv.n_kv_heads) * kv.head_dim;
    kv_store_kernel<<<blocks_for(n_tokens * row), kThreads, 0, s>>>(kv, row, n_tokens, k, v, pos);
}

void launch_qkv_rope_store(float* qkv, int64_t stride, int n_cols, const float* bq, const float* bk, const float* bv,
                           int n_heads, const KvCacheView& kv, int n_rot, const DecodeColumns& cols,
                           const double* inv_freq, RopeLayout layout, cudaStream_t s) {
    const int n = qkv_rope_store_elements(n_heads, kv, n_rot);
    launch_pdl(qkv_rope_store_kernel, dim3(blocks_for(n), static_cast<unsigned>(n_cols)), dim3(kThreads), 0, s, qkv,
               stride, bq, bk, bv, n_heads, kv, n_rot, cols, inv_freq, layout == RopeLayout::NeoX);
}

void launch_argmax(const float* x, int64_t n, int32_t* out, int n_rows, int64_t stride, cudaStream_t s) {
    launch_pdl(argmax_kernel, dim3(kArgmaxBlocks, static_cast<unsigned>(n_rows)), dim3(kArgmaxThreads), 0, s, x, n, out,
               stride);
}

}  // namespace orcd::cuda::detail

namespace orcd::cuda {

using detail::check_launch;
using detail::require;

void rms_norm(const float* x, const float* weight, int64_t n_tokens, int64_t n, float eps, float* out,
              cudaStream_t stream) {
    detail::require_norm_rows(n_tokens, n, eps, "rms_norm");
    detail::launch_rms_norm(x, weight, n_tokens, n, eps, out, stream);
    check_launch();
}

void rms_norm_to_f16(const float* x, const float* weight, int64_t n_tokens, int64_t n, float eps, uint16_t* out16,
                     cudaStream_t stream) {
    detail::require_norm_rows(n_tokens, n, eps, "rms_norm_to_f16");
    detail::launch_rms_norm(x, weight, n_tokens, n, eps, out16, stream);
    check_launch();
}

void rms_norm_heads(float* x, int64_t n_tokens, int64_t row_stride, int n_heads, int head_dim, const float* weight,
                    float eps, cudaStream_t stream) {
    require(n_tokens > 0 && n_heads > 0 && head_dim > 0 && n_tokens * n_heads <= INT32_MAX, "rms_norm_heads",
            "needs n_tokens, n_heads and head_dim > 0");
    require(row_stride >= static_cast<int64_t>(n_heads) * head_dim, "rms_norm_heads",
            "row stride {} is shorter than {} heads of {}", row_stride, n_heads, head_dim);
    detail::require_epsilon(eps, "rms_norm_heads");
    detail::launch_rms_norm_heads(x, n_tokens, row_stride, n_heads, head_dim, weight, eps, stream);
    check_launch();
}

void rope(float* x, int64_t n_tokens, int n_heads, int head_dim, int n_rot, const int32_t* pos, const double* inv_freq,
          RopeLayout layout, cudaStream_t stream) {
    require(n_tokens > 0 && n_heads > 0 && head_dim > 0, "rope", "needs n_tokens, n_heads, head_dim > 0");
    detail::require_rotary(n_rot, head_dim, "rope");
    detail::launch_rope(x, n_tokens, n_heads, head_dim, n_rot, pos, inv_freq, layout, stream);
    check_launch();
}

void add_bias(float* y, const float* bias, int64_t n_tokens, int64_t n, cudaStream_t stream) {
    require(n_tokens > 0 && n > 0, "add_bias", "needs n_tokens > 0 and n > 0");
    detail::launch_add_bias(y, bias, n_tokens, n, stream);
    check_launch();
}

void add(float* x, const float* y, int64_t n, cudaStream_t stream) {
    require(n > 0, "add", "needs n > 0");
    detail::launch_add(x, y, n, stream);
    check_launch();
}

void swiglu(const float* gate_up, int64_t n_tokens, int64_t n, float* out, cudaStream_t stream) {
    require(n_tokens > 0 && n > 0, "swiglu", "needs n_tokens > 0 and n > 0");
    detail::launch_swiglu(gate_up, n_tokens, n, out, stream);
    check_launch();
}

void kv_store(const KvCacheView& kv, int64_t n_tokens, const float* k, const float* v, const int32_t* pos,
              cudaStream_t stream) {
    detail::require_kv(kv, "kv_store");
    require(n_tokens > 0 && n_tokens <= kv.n_ctx, "kv_store", "{} tokens do not fit a cache of {}", n_tokens, kv.n_ctx);
    detail::launch_kv_store(kv, n_tokens, k, v, pos, stream);
    check_launch();
}

void qkv_rope_store(float* qkv, int64_t stride, int n_cols, const float* bq, const float* bk, const float* bv,
                    int n_heads, const KvCacheView& kv, int n_rot, const DecodeColumns& cols, const double* inv_freq,
                    RopeLayout layout, cudaStream_t stream) {
    detail::require_decode_columns(kv, n_cols, cols, n_heads, "qkv_rope_store");
    detail::require_rotary(n_rot, kv.head_dim, "qkv_rope_store");
    detail::launch_qkv_rope_store(qkv, stride, n_cols, bq, bk, bv, n_heads, kv, n_rot, cols, inv_freq, layout, stream);
    check_launch();
}

void argmax(const float* x, int64_t n, int32_t* out, cudaStream_t stream, int n_rows, int64_t stride) {
    require(n > 0 && n <= INT32_MAX, "argmax", "needs 0 < n <= INT32_MAX");
    require(n_rows >= 1 && n_rows <= 65535, "argmax", "{} rows (1 .. 65535)", n_rows);
    detail::launch_argmax(x, n, out, n_rows, stride, stream);
    check_launch();
}

}  // namespace orcd::cuda
