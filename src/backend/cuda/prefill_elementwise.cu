// Element-wise kernels of the batched prefill that produce the f16 GEMM operands (the norm's is ops.cu's rms_norm),
// and the fused bias + RoPE + KV store over the strided rows of a QKV GEMM. The arithmetic mirrors ops.cu (itself the
// CPU reference's, with products pinned by __fmul_rn); only the final rounding to f16 is new. The launchers in detail
// take their arguments as given; the entry points of prefill_ops.h at the end of the file check them first.
#include <cuda_fp16.h>

#include <cmath>

#include "backend/cuda/half.cuh"
#include "backend/cuda/kv_paging.cuh"
#include "backend/cuda/launch_check.h"
#include "backend/cuda/prefill_ops.h"

namespace orcd::cuda::detail {

namespace {

constexpr int kThreads = 256;

unsigned blocks_for(int64_t n) { return static_cast<unsigned>((n + kThreads - 1) / kThreads); }

__global__ void swiglu_f16_kernel(const float* __restrict__ gate_up, int64_t n_tokens, int64_t n,
                                  uint16_t* __restrict__ out) {
    const int64_t idx = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
    if (idx >= n_tokens * n) return;
    const int64_t t = idx / n, i = idx % n;
    const float g = gate_up[t * 2 * n + i], u = gate_up[t * 2 * n + n + i];
    out[idx] = f2h(__fmul_rn(g / (1.f + expf(-g)), u));
}

// One thread per (token, head, pair of dimensions) over the n_heads + 2 * n_kv heads of a row. Pair i < n_rot / 2 of
// a q or k head is rotated (NeoX: dims i, i + n_rot/2; interleaved: 2i, 2i + 1); the remaining pairs (dims n_rot ..)
// and every pair of a v head pass through. Bias first, as the unfused ops run.
__global__ void qkv_rope_store_kernel(const float* __restrict__ qkv, int64_t row_stride, int64_t n_tokens, int n_heads,
                                      int n_kv, int hd, QkvBias bias, int n_rot, int64_t pos0,
                                      const double* __restrict__ inv_freq, bool neox, KvCacheView kv,
                                      uint16_t* __restrict__ q16) {
    const int half_hd = hd / 2;
    const int heads = n_heads + 2 * n_kv;
    const int64_t idx = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
    if (idx >= n_tokens * heads * half_hd) return;
    const int i = static_cast<int>(idx % half_hd);
    const int head = static_cast<int>((idx / half_hd) % heads);
    const int64_t t = idx / (static_cast<int64_t>(half_hd) * heads);
    const int kind = head < n_heads ? 0 : head < n_heads + n_kv ? 1 : 2;  // q, k, v
    const int hk = kind == 0 ? head : kind == 1 ? head - n_heads : head - n_heads - n_kv;
    const int rot_half = n_rot / 2;
    int i0, i1;
    const bool rotate = kind != 2 && i < rot_half;
    if (kind == 2) {
        i0 = 2 * i;
        i1 = 2 * i + 1;
    } else if (rotate) {
        i0 = neox ? i : 2 * i;
        i1 = neox ? i + rot_half : 2 * i + 1;
    } else {
        i0 = n_rot + 2 * (i - rot_half);
        i1 = i0 + 1;
    }
    const float* row = qkv + t * row_stride + static_cast<int64_t>(head) * hd;  // heads are contiguous: q, k, v
    float a = row[i0], b = row[i1];
    const float* bv = kind == 0 ? bias.q : kind == 1 ? bias.k : bias.v;
    if (bv) {
        a += bv[hk * hd + i0];
        b += bv[hk * hd + i1];
    }
    if (rotate) {
        double s, c;
        sincos(static_cast<double>(pos0 + t) * inv_freq[i], &s, &c);
        const float cf = static_cast<float>(c), sf = static_cast<float>(s);
        const float ra = __fsub_rn(__fmul_rn(a, cf), __fmul_rn(b, sf));
        const float rb = __fadd_rn(__fmul_rn(a, sf), __fmul_rn(b, cf));
        a = ra;
        b = rb;
    }
    if (kind == 0) {
        uint16_t* o = q16 + t * static_cast<int64_t>(n_heads) * hd + static_cast<int64_t>(hk) * hd;
        o[i0] = f2h(a);
        o[i1] = f2h(b);
    } else {
        uint16_t* o = (kind == 1 ? kv.k : kv.v) + kv_row_offset(kv, kv.pages, pos0 + t) + static_cast<int64_t>(hk) * hd;
        o[i0] = f2h(a);
        o[i1] = f2h(b);
    }
}

}  // namespace

void launch_swiglu_f16(const float* gate_up, int64_t n_tokens, int64_t n, uint16_t* out, cudaStream_t s) {
    swiglu_f16_kernel<<<blocks_for(n_tokens * n), kThreads, 0, s>>>(gate_up, n_tokens, n, out);
}

void launch_qkv_rope_store(const float* qkv, int64_t row_stride, int64_t n_tokens, int n_heads, const QkvBias& bias,
                           int n_rot, int64_t pos0, const double* inv_freq, RopeLayout layout, const KvCacheView& kv,
                           uint16_t* q16, cudaStream_t s) {
    const int64_t n = n_tokens * (n_heads + 2 * kv.n_kv_heads) * (kv.head_dim / 2);
    qkv_rope_store_kernel<<<blocks_for(n), kThreads, 0, s>>>(qkv, row_stride, n_tokens, n_heads, kv.n_kv_heads,
                                                             kv.head_dim, bias, n_rot, pos0, inv_freq,
                                                             layout == RopeLayout::NeoX, kv, q16);
}

}  // namespace orcd::cuda::detail

namespace orcd::cuda {

using detail::check_launch;
using detail::require;

void swiglu_to_f16(const float* gate_up, int64_t n_tokens, int64_t n, uint16_t* out16, cudaStream_t stream) {
    require(n_tokens > 0 && n > 0, "swiglu_to_f16", "needs n_tokens > 0 and n > 0");
    detail::launch_swiglu_f16(gate_up, n_tokens, n, out16, stream);
    check_launch();
}

void qkv_rope_store(const float* qkv, int64_t row_stride, int64_t n_tokens, int n_heads, const QkvBias& bias, int n_rot,
                    int64_t pos0, const double* inv_freq, RopeLayout layout, const KvCacheView& kv, uint16_t* q16,
                    cudaStream_t stream) {
    require(kv.k && kv.v && kv.n_kv_heads > 0 && kv.head_dim > 0 && kv.head_dim % 2 == 0, "qkv_rope_store",
            "the KV cache view needs K and V buffers, n_kv_heads > 0 and an even head_dim");
    require(n_tokens > 0 && pos0 >= 0 && pos0 + n_tokens <= kv.n_ctx, "qkv_rope_store",
            "positions {} .. {} do not fit a cache of {}", pos0, pos0 + n_tokens - 1, kv.n_ctx);
    require(n_heads > 0 && row_stride >= static_cast<int64_t>(n_heads + 2 * kv.n_kv_heads) * kv.head_dim,
            "qkv_rope_store", "row stride shorter than q + k + v");
    detail::require_rotary(n_rot, kv.head_dim, "qkv_rope_store");
    detail::launch_qkv_rope_store(qkv, row_stride, n_tokens, n_heads, bias, n_rot, pos0, inv_freq, layout, kv, q16,
                                  stream);
    check_launch();
}

}  // namespace orcd::cuda
