#pragma once
// One 32-weight unit of the int8 matvec (matvec_q8.h) split into its exact integer part and its float part, so that
// the dp4a kernel and the tensor-core (mma) kernel compute the same bits for every (row, column, unit):
//   - the integer sums (int8 x int8 over 8, 16 or 32 products, in int32) are exact, so __dp4a and mma.sync give the
//     same integers whatever the order;
//   - the float part (`value`: the weight's and the activation's scales applied to those integers) is written here
//     once with explicit rounding intrinsics (__fmul_rn, __fmaf_rn: nothing left for the compiler to contract or
//     reorder), and both kernels call it.
// The formats (quant/formats/) only load and decode a unit (q8_load); the float part lives here alone, because a
// contraction the compiler chose differently in two kernels would break batch invariance.
//
// Per format, Unit<F> has:
//   kGroups         mma k16 steps per unit; kSumGroups: their results add into one integer (else one integer each)
//   Scales          the weight side of the float part (a row's unit)
//   ColScales       the activation side (a column's unit), col_scales() reads it; as kColWords 32-bit words,
//                   col_word() reads word k and col_from_words() rebuilds it (the mma kernel loads a column's words
//                   in one warp-wide load and hands them out by shuffles)
//   value()         the unit's float from its integers
//   dp4a_value()    the dp4a kernel's whole unit: integers from a decoded F::Q8Unit, then value()
//   dp4a_value_own_sums(), kOwnSums (K4 only): the same for the single column, the activations' 16-sums counted
//                   instead of read
//   mma_load()      this thread's A-fragment word of each group (m16n8k16: bytes 4t .. 4t + 3 of the group's 16
//                   k-values, t = lane % 4) and the row's Scales
//   x_offset()      byte offset, from the block's first activation value, of the B-fragment word of group gr for
//                   thread t (-1: the group's k-values of that thread are zero padding)
#include <cstdint>

#include "gguf/types.h"
#include "quant/cuda_bits.cuh"
#include "quant/formats.h"

namespace orcd::cuda::q8units {

// v as a float, exactly, for |v| < 2^22: v added to the mantissa of 1.5 * 2^23, then 1.5 * 2^23 subtracted (both steps
// exact). The same bits as static_cast<float>(v), in two full-rate instructions instead of one conversion (a quarter
// of the FP32 rate on sm_90): value() converts four integers per (row, column, unit), the batched kernels' floor.
// Every integer value() converts is below 2^22: at most 63 x 16 x 31 x 127 (Q5_K), 128 x 8 x 32 x 127 (Q6_K).
__device__ __forceinline__ float exact_float(int v) { return __fsub_rn(__int_as_float(0x4B400000 + v), 12582912.0f); }

template <typename F>
struct Unit;

// Q4_K, Q5_K: unit (j, h) = 16 values of sub-block 2j (group 0) and 16 of sub-block 2j + 1 (group 1); see k4.h.
template <typename B, gguf::TensorType kT, bool kFive>
struct Unit<quant::K4<B, kT, kFive>> {
    using F = quant::K4<B, kT, kFive>;
    static constexpr int kGroups = 2;
    static constexpr bool kSumGroups = false;
    struct Scales {
        int sc0, mn0, sc1, mn1;
        float d, dmin;
    };
    struct ColScales {
        float d0, d1;
        int x0, x1;
    };
    // xd, xs: the column's scales and 16-sums from the block's first element; u: the unit within the block.
    // (Vector loads: xd, xs are 16-byte aligned at a block's first unit, so xd + 2j is 8-byte and xs + 4j 16-byte
    // aligned.)
    __device__ static ColScales col_scales(const float* xd, const int32_t* xs, int u) {
        const int j = u >> 1, h = u & 1;
        const float2 d = *reinterpret_cast<const float2*>(xd + 2 * j);
        const int4 s = *reinterpret_cast<const int4*>(xs + 4 * j);
        return {d.x, d.y, h ? s.y : s.x, h ? s.w : s.z};
    }
    static constexpr int kColWords = 4;
    __device__ static uint32_t col_word(const float* xd, const int32_t* xs, int u, int k) {
        const int j = u >> 1, h = u & 1;
        return k < 2 ? __float_as_uint(xd[2 * j + k]) : static_cast<uint32_t>(xs[4 * j + 2 * (k - 2) + h]);
    }
    __device__ static ColScales col_from_words(const uint32_t (&w)[kColWords]) {
        return {__uint_as_float(w[0]), __uint_as_float(w[1]), static_cast<int>(w[2]), static_cast<int>(w[3])};
    }
    // d * (d0 sc0 s0 + d1 sc1 s1) - dmin * (d0 mn0 x0 + d1 mn1 x1), for k4.h's units.
    __device__ static float value(const Scales& q, const int (&s)[2], const ColScales& c) {
        const float sc = __fmaf_rn(c.d0, exact_float(q.sc0 * s[0]), __fmul_rn(c.d1, exact_float(q.sc1 * s[1])));
        const float mn = __fmaf_rn(c.d0, exact_float(q.mn0 * c.x0), __fmul_rn(c.d1, exact_float(q.mn1 * c.x1)));
        return __fmaf_rn(q.d, sc, -__fmul_rn(q.dmin, mn));
    }
    // The unit's two dp4a sums against the activations at xq into s, and with kCount the activations' own two 16-sums
    // (dp4a against ones) into x.
    template <bool kCount>
    __device__ static void dp4a_sums(const typename F::Q8Unit& q, const int8_t* xq, int (&s)[2], int (&x)[2]) {
        using quant::cuda_bits::int8x4_words;
        const int8_t* xa = xq + 64 * q.j + 16 * q.h;
        int a[4], b[4];
        int8x4_words(xa, a);
        int8x4_words(xa + 32, b);
        constexpr int kOnes = 0x01010101;
#pragma unroll
        for (int k = 0; k < 4; ++k) {
            s[0] = __dp4a(static_cast<int>(q.lo[k]), a[k], s[0]);
            s[1] = __dp4a(static_cast<int>(q.hi[k]), b[k], s[1]);
            if constexpr (kCount) {
                x[0] = __dp4a(kOnes, a[k], x[0]);
                x[1] = __dp4a(kOnes, b[k], x[1]);
            }
        }
    }
    __device__ static float dp4a_value(const typename F::Q8Unit& q, const int8_t* xq, const float* xd,
                                       const int32_t* xs, int u) {
        int s[2] = {0, 0}, x[2] = {0, 0};
        dp4a_sums<false>(q, xq, s, x);
        return value({q.sc0, q.mn0, q.sc1, q.mn1, q.d, q.dmin}, s, col_scales(xd, xs, u));
    }
    // q8_load for the single column: the block's first 16 bytes (d, dmin and the 12 scale bytes) in one 16-byte load,
    // the unit's 16 quant bytes (and Q5_K's 16 fifth-bit bytes) in one each, where q8_load reads the scale bytes and
    // d, dmin one at a time and the quants a word at a time. K4 blocks are 16-byte aligned (144 and 176 bytes, whole
    // blocks a row, tensors at 256-byte offsets; launch_q8_matvec refuses other addresses). The same integers and
    // scales as q8_load: k4_scale_min_pair is the mma kernel's word form of k4_scale_min.
    __device__ static typename F::Q8Unit q8_load_aligned(const typename F::Block& b, int u) {
        typename F::Q8Unit q;
        q.j = u >> 1;
        q.h = u & 1;
        const uint4 head = *reinterpret_cast<const uint4*>(&b);
        const uint4 qs = *reinterpret_cast<const uint4*>(b.qs + 32 * q.j + 16 * q.h);
        const uint32_t w[4] = {qs.x, qs.y, qs.z, qs.w};
        uint32_t qh[4] = {0, 0, 0, 0};
        if constexpr (kFive) {
            const uint4 v = *reinterpret_cast<const uint4*>(b.qh + 16 * q.h);
            qh[0] = v.x;
            qh[1] = v.y;
            qh[2] = v.z;
            qh[3] = v.w;
        }
        F::q8_split(w, qh, q);
        int sc[2], mn[2];
        k4_scale_min_pair(head.y, head.z, head.w, q.j, sc, mn);
        q.sc0 = sc[0];
        q.mn0 = mn[0];
        q.sc1 = sc[1];
        q.mn1 = mn[1];
        q.d = quant::half_to_float(static_cast<uint16_t>(head.x & 0xffffu));
        q.dmin = quant::half_to_float(static_cast<uint16_t>(head.x >> 16));
        return q;
    }
    // dp4a_value for the single column (the decode of one sequence): the two 16-sums of the activations counted here
    // with dp4a against ones, as the kernel before the shared units did, instead of read from the quantization's
    // sums. The same integers, so the same bits, without the sums' 16-byte load in the unit's chain of loads, whose
    // latency bounds this kernel: Phi-3-mini's single-stream decode (its matrices Q4_K and Q5_K) 2 % faster on the
    // H100 (docs/PERF.md, fourteenth session). The batched columns keep the loaded sums (a load a column, not 8 dp4a).
    static constexpr bool kOwnSums = true;
    __device__ static float dp4a_value_own_sums(const typename F::Q8Unit& q, const int8_t* xq, const float* xd) {
        int s[2] = {0, 0}, x[2] = {0, 0};
        dp4a_sums<true>(q, xq, s, x);
        const float2 d = *reinterpret_cast<const float2*>(xd + 2 * q.j);
        return value({q.sc0, q.mn0, q.sc1, q.mn1, q.d, q.dmin}, s, ColScales{d.x, d.y, x[0], x[1]});
    }
    __device__ static void mma_load(const typename F::Block& b, int u, int t, uint32_t (&a)[kGroups], Scales& q) {
        using namespace quant::cuda_bits;
        const int j = u >> 1, h = u & 1;
        uint32_t w[1];
        load_words(b.qs + 32 * j + 16 * h + 4 * t, w);
        a[0] = w[0] & 0x0F0F0F0Fu;
        a[1] = (w[0] >> 4) & 0x0F0F0F0Fu;
        if constexpr (kFive) {
            uint32_t qh[1];
            load_words(b.qh + 16 * h + 4 * t, qh);
            a[0] |= ((qh[0] >> (2 * j)) & 0x01010101u) << 4;
            a[1] |= ((qh[0] >> (2 * j + 1)) & 0x01010101u) << 4;
        }
        // The 12 scale bytes and d, dmin as whole words (one load each where the block is 4-byte aligned).
        uint32_t sw[3], dd[1];
        load_words(b.scales, sw);
        load_words(reinterpret_cast<const uint8_t*>(&b.d), dd);
        int sc[2], mn[2];
        k4_scale_min_pair(sw[0], sw[1], sw[2], j, sc, mn);
        q = {sc[0],
             mn[0],
             sc[1],
             mn[1],
             quant::half_to_float(static_cast<uint16_t>(dd[0] & 0xffffu)),
             quant::half_to_float(static_cast<uint16_t>(dd[0] >> 16))};
    }
    // quant::k4_scale_min of sub-blocks 2j and 2j + 1 from the scale bytes as words w0 (bytes 0..3), w1 (4..7),
    // w2 (8..11): sub-blocks 0..3 take 6 bits of bytes s (scale) and s + 4 (min); 4..7 the nibbles of byte s + 4
    // with the top 2 bits of bytes s - 4 (scale) and s (min).
    __device__ static void k4_scale_min_pair(uint32_t w0, uint32_t w1, uint32_t w2, int j, int (&sc)[2], int (&mn)[2]) {
#pragma unroll
        for (int e = 0; e < 2; ++e) {
            const int sub = 2 * j + e;
            const int sh = 8 * (sub & 3);
            if (sub < 4) {
                sc[e] = static_cast<int>((w0 >> sh) & 63u);
                mn[e] = static_cast<int>((w1 >> sh) & 63u);
            } else {
                const uint32_t lo = (w2 >> sh) & 0xffu, top_s = (w0 >> sh) & 0xffu, top_m = (w1 >> sh) & 0xffu;
                sc[e] = static_cast<int>((lo & 0x0fu) | (top_s >> 6) << 4);
                mn[e] = static_cast<int>((lo >> 4) | (top_m >> 6) << 4);
            }
        }
    }
    __device__ static int x_offset(int u, int gr, int t) { return 64 * (u >> 1) + 16 * (u & 1) + 32 * gr + 4 * t; }
};

// Q6_K: unit (half, k) = quarters r = 0..3, 8 values each (l = 8k .. 8k + 7), one integer per quarter; see q6_k.h.
// A quarter is one k16 group with only threads 0 and 1 carrying values (the other half is zero padding): the float
// part needs each 8-value sum on its own.
template <>
struct Unit<quant::Q6_K> {
    using F = quant::Q6_K;
    static constexpr int kGroups = 4;
    static constexpr bool kSumGroups = false;
    struct Scales {
        int sc[4];
        float d;
    };
    struct ColScales {
        float d[4];
    };
    __device__ static ColScales col_scales(const float* xd, const int32_t*, int u) {
        const float4 d = *reinterpret_cast<const float4*>(xd + 4 * (u >> 2));  // 16-byte aligned
        return {{d.x, d.y, d.z, d.w}};
    }
    static constexpr int kColWords = 4;
    __device__ static uint32_t col_word(const float* xd, const int32_t*, int u, int k) {
        return __float_as_uint(xd[4 * (u >> 2) + k]);
    }
    __device__ static ColScales col_from_words(const uint32_t (&w)[kColWords]) {
        return {{__uint_as_float(w[0]), __uint_as_float(w[1]), __uint_as_float(w[2]), __uint_as_float(w[3])}};
    }
    // d * sum_r xd_r * (sc_r * s_r), r in order, for q6_k.h's units.
    __device__ static float value(const Scales& q, const int (&s)[4], const ColScales& c) {
        float acc = 0.f;
#pragma unroll
        for (int r = 0; r < 4; ++r) acc = __fmaf_rn(c.d[r], exact_float(q.sc[r] * s[r]), acc);
        return __fmul_rn(q.d, acc);
    }
    __device__ static float dp4a_value(const F::Q8Unit& q, const int8_t* xq, const float* xd, const int32_t* xs,
                                       int u) {
        using quant::cuda_bits::int8x4_words;
        int s[4];
#pragma unroll
        for (int r = 0; r < 4; ++r) {
            int x[2];
            int8x4_words(xq + 128 * q.half + 32 * r + 8 * q.k, x);
            s[r] = __dp4a(q.v[r][1], x[1], __dp4a(q.v[r][0], x[0], 0));
        }
        return value({{q.sc[0], q.sc[1], q.sc[2], q.sc[3]}, q.d}, s, col_scales(xd, xs, u));
    }
    __device__ static void mma_load(const F::Block& b, int u, int t, uint32_t (&a)[kGroups], Scales& q) {
        using namespace quant::cuda_bits;
        const int half = u >> 2, k = u & 3;
        if (t < 2) {
            uint32_t l0[1], l1[1], qh[1];
            load_words(b.ql + 64 * half + 8 * k + 4 * t, l0);
            load_words(b.ql + 64 * half + 32 + 8 * k + 4 * t, l1);
            load_words(b.qh + 32 * half + 8 * k + 4 * t, qh);
#pragma unroll
            for (int r = 0; r < 4; ++r) {
                const uint32_t l = (r & 1) ? l1[0] : l0[0];
                const uint32_t v = ((l >> (r < 2 ? 0 : 4)) & 0x0F0F0F0Fu) | (((qh[0] >> (2 * r)) & 0x03030303u) << 4);
                a[r] = __vsubss4(v, 0x20202020u);
            }
        } else {
#pragma unroll
            for (int r = 0; r < 4; ++r) a[r] = 0;
        }
#pragma unroll
        for (int r = 0; r < 4; ++r) q.sc[r] = b.scales[8 * half + 2 * r + (k >> 1)];
        q.d = quant::half_to_float(b.d);
    }
    __device__ static int x_offset(int u, int gr, int t) {
        return t < 2 ? 128 * (u >> 2) + 32 * gr + 8 * (u & 3) + 4 * t : -1;
    }
};

// Q8_0: the block is the unit, 32 signed values, one integer (groups: values 0..15, 16..31).
template <>
struct Unit<quant::Q8_0> {
    using F = quant::Q8_0;
    static constexpr int kGroups = 2;
    static constexpr bool kSumGroups = true;
    struct Scales {
        float d;
    };
    struct ColScales {
        float d;
    };
    __device__ static ColScales col_scales(const float* xd, const int32_t*, int) { return {xd[0]}; }
    static constexpr int kColWords = 1;
    __device__ static uint32_t col_word(const float* xd, const int32_t*, int, int) { return __float_as_uint(xd[0]); }
    __device__ static ColScales col_from_words(const uint32_t (&w)[kColWords]) { return {__uint_as_float(w[0])}; }
    __device__ static float value(const Scales& q, const int (&s)[1], const ColScales& c) {
        return __fmul_rn(__fmul_rn(q.d, c.d), exact_float(s[0]));
    }
    __device__ static float dp4a_value(const F::Q8Unit& q, const int8_t* xq, const float* xd, const int32_t* xs,
                                       int u) {
        using quant::cuda_bits::int8x4_words;
        int x[2][4];
        int8x4_words(xq, x[0]);
        int8x4_words(xq + 16, x[1]);
        int s[1] = {0};
#pragma unroll
        for (int k = 0; k < 8; ++k) s[0] = __dp4a(static_cast<int>(q.w[k]), x[k / 4][k % 4], s[0]);
        return value({q.d}, s, col_scales(xd, xs, u));
    }
    __device__ static void mma_load(const F::Block& b, int, int t, uint32_t (&a)[kGroups], Scales& q) {
        using namespace quant::cuda_bits;
        const auto* qs = reinterpret_cast<const uint8_t*>(b.qs);
        uint32_t w0[1], w1[1];
        load_words(qs + 4 * t, w0);
        load_words(qs + 16 + 4 * t, w1);
        a[0] = w0[0];
        a[1] = w1[0];
        q.d = quant::half_to_float(b.d);
    }
    __device__ static int x_offset(int, int gr, int t) { return 16 * gr + 4 * t; }
};

// Q4_0, Q4_1, Q5_0, Q5_1: the block is the unit, values 0..15 (low nibbles) and 16..31 (high nibbles), one integer;
// see nibble32.h.
template <typename B, gguf::TensorType kT, int kOffset, bool kFive, bool kMin>
struct Unit<quant::Nibble32<B, kT, kOffset, kFive, kMin>> {
    using F = quant::Nibble32<B, kT, kOffset, kFive, kMin>;
    static constexpr int kGroups = 2;
    static constexpr bool kSumGroups = true;
    struct Scales {
        float d, m;
    };
    struct ColScales {
        float d;
        int sx;
    };
    __device__ static ColScales col_scales(const float* xd, const int32_t* xs, int) {
        const int2 s = *reinterpret_cast<const int2*>(xs);  // 8-byte aligned
        return {xd[0], s.x + s.y};
    }
    static constexpr int kColWords = 2;
    __device__ static uint32_t col_word(const float* xd, const int32_t* xs, int, int k) {
        return k == 0 ? __float_as_uint(xd[0]) : static_cast<uint32_t>(xs[0] + xs[1]);
    }
    __device__ static ColScales col_from_words(const uint32_t (&w)[kColWords]) {
        return {__uint_as_float(w[0]), static_cast<int>(w[1])};
    }
    // xd * (d s + m sx) with a minimum, else d * xd * (s - offset * sx), for nibble32.h's units.
    __device__ static float value(const Scales& q, const int (&s)[1], const ColScales& c) {
        if constexpr (kMin) {
            return __fmul_rn(c.d, __fmaf_rn(q.d, exact_float(s[0]), __fmul_rn(q.m, exact_float(c.sx))));
        } else {
            return __fmul_rn(__fmul_rn(q.d, c.d), exact_float(s[0] - kOffset * c.sx));
        }
    }
    __device__ static float dp4a_value(const typename F::Q8Unit& q, const int8_t* xq, const float* xd,
                                       const int32_t* xs, int u) {
        using quant::cuda_bits::int8x4_words;
        int a[4], b[4];
        int8x4_words(xq, a);
        int8x4_words(xq + 16, b);
        int s[1] = {0};
#pragma unroll
        for (int k = 0; k < 4; ++k) {
            s[0] = __dp4a(static_cast<int>(q.lo[k]), a[k], s[0]);
            s[0] = __dp4a(static_cast<int>(q.hi[k]), b[k], s[0]);
        }
        Scales sc{q.d, 0.f};
        if constexpr (kMin) sc.m = q.m;
        return value(sc, s, col_scales(xd, xs, u));
    }
    __device__ static void mma_load(const typename F::Block& b, int, int t, uint32_t (&a)[kGroups], Scales& q) {
        using namespace quant::cuda_bits;
        uint32_t w[1];
        load_words(b.qs + 4 * t, w);
        a[0] = w[0] & 0x0F0F0F0Fu;
        a[1] = (w[0] >> 4) & 0x0F0F0F0Fu;
        if constexpr (kFive) {
            uint32_t h[1];
            load_words(b.qh, h);
            a[0] |= spread4(h[0] >> (4 * t)) << 4;
            a[1] |= spread4(h[0] >> (16 + 4 * t)) << 4;
        }
        q.d = quant::half_to_float(b.d);
        q.m = 0.f;
        if constexpr (kMin) q.m = quant::half_to_float(b.m);
    }
    __device__ static int x_offset(int, int gr, int t) { return 16 * gr + 4 * t; }
};

// Integers value() takes: one per group, or one for all groups.
template <typename F>
inline constexpr int kInts = Unit<F>::kSumGroups ? 1 : Unit<F>::kGroups;

}  // namespace orcd::cuda::q8units
