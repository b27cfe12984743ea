#pragma once
// The attention inputs of one decode token (ops.h's qkv_rope_store) as a function of one element: its kernel (ops.cu)
// maps a thread to it, the persistent decode step (decode_persistent.cu) its block's share of a phase. The same
// expressions either way, so the same bits. Device code only.
#include <cstdint>

#include "backend/cuda/half.cuh"
#include "backend/cuda/kv_paging.cuh"
#include "backend/cuda/ops.h"

namespace orcd::cuda {

__device__ __forceinline__ float biased(const float* x, const float* bias, int i) {
    return bias ? x[i] + bias[i] : x[i];
}

// Elements idx of one column (qkv: its [q | k | v] row, rotated in place for q; pos its position, table its page
// table), in order: q's rotated pairs, q's unrotated tail, k's pairs, k's tail, v's elements; an idx past them does
// nothing. qkv_rope_store_elements(n_heads, kv, n_rot) counts them.
__device__ __forceinline__ void qkv_rope_store_element(float* qkv, const float* __restrict__ bq,
                                                       const float* __restrict__ bk, const float* __restrict__ bv,
                                                       int n_heads, const KvCacheView& kv, int n_rot, int32_t pos,
                                                       const int32_t* table, const double* __restrict__ inv_freq,
                                                       bool neox, int idx) {
    const int n_kv_heads = kv.n_kv_heads, head_dim = kv.head_dim;
    const int half = n_rot / 2, tail = head_dim - n_rot;
    const int kv_dim = n_kv_heads * head_dim;
    const int n_qp = n_heads * half, n_qt = n_heads * tail, n_kp = n_kv_heads * half, n_kt = n_kv_heads * tail;
    float* q = qkv;
    const float* k = q + n_heads * head_dim;
    const float* v = k + kv_dim;
    const int64_t at = kv_row_offset(kv, table, pos);  // this position's row in the cache
    uint16_t* kc = kv.k;
    uint16_t* vc = kv.v;
    auto rotate = [&](int h, int i, const float* x, const float* bias, float& o0, float& o1, int& i0, int& i1) {
        double s, c;
        sincos(static_cast<double>(pos) * inv_freq[i], &s, &c);
        const float cf = static_cast<float>(c), sf = static_cast<float>(s);
        i0 = h * head_dim + (neox ? i : 2 * i);
        i1 = h * head_dim + (neox ? i + half : 2 * i + 1);
        const float a = biased(x, bias, i0), b = biased(x, bias, i1);
        o0 = __fsub_rn(__fmul_rn(a, cf), __fmul_rn(b, sf));
        o1 = __fadd_rn(__fmul_rn(a, sf), __fmul_rn(b, cf));
    };
    if (idx < n_qp) {
        float o0, o1;
        int i0, i1;
        rotate(idx / half, idx % half, q, bq, o0, o1, i0, i1);
        q[i0] = o0;
        q[i1] = o1;
        return;
    }
    idx -= n_qp;
    if (idx < n_qt) {
        const int i = idx / tail * head_dim + n_rot + idx % tail;
        if (bq) q[i] = q[i] + bq[i];
        return;
    }
    idx -= n_qt;
    if (idx < n_kp) {
        float o0, o1;
        int i0, i1;
        rotate(idx / half, idx % half, k, bk, o0, o1, i0, i1);
        kc[at + i0] = f2h(o0);
        kc[at + i1] = f2h(o1);
        return;
    }
    idx -= n_kp;
    if (idx < n_kt) {
        const int i = idx / tail * head_dim + n_rot + idx % tail;
        kc[at + i] = f2h(biased(k, bk, i));
        return;
    }
    idx -= n_kt;
    if (idx < kv_dim) vc[at + idx] = f2h(biased(v, bv, idx));
}

__host__ __device__ inline int qkv_rope_store_elements(int n_heads, const KvCacheView& kv, int n_rot) {
    return n_heads * kv.head_dim - n_heads * (n_rot / 2) + kv.n_kv_heads * (2 * kv.head_dim - n_rot / 2);
}

}  // namespace orcd::cuda
