#pragma once
// Bit tricks the CUDA sides of the format headers (formats/*.h) share: wide loads of 2-byte aligned block fields,
// placing bytes in a float mantissa instead of converting ints, and spreading bits into bytes. Device code only.
#include <cuda_fp16.h>

#include <cstdint>

namespace orcd::quant::cuda_bits {

// 2^23 + v as a float (v a byte placed in the mantissa), exact; subtract kMagic (+ offset) to get v (- offset).
constexpr float kMagic = 8388608.0f;

// Reads N little-endian 32-bit words starting at a 2-byte aligned address (block fields are only 2-byte aligned):
// aligned word loads joined by funnel shifts, instead of 4N byte loads. Reads no byte past p + 4N.
template <int N>
__device__ __forceinline__ void load_words(const uint8_t* p, uint32_t (&w)[N]) {
    const uintptr_t a = reinterpret_cast<uintptr_t>(p);
    const uint32_t* base = reinterpret_cast<const uint32_t*>(a & ~uintptr_t{3});
    if ((a & 3) == 0) {
#pragma unroll
        for (int k = 0; k < N; ++k) w[k] = base[k];
    } else {
        uint32_t prev = base[0];
#pragma unroll
        for (int k = 0; k < N; ++k) {
            const uint32_t next = base[k + 1];
            w[k] = __funnelshift_r(prev, next, 16);
            prev = next;
        }
    }
}

// Byte e of w as the float 2^23 + byte, in one byte permute: bytes (w[e], 0, 0, 0x4B).
template <int e>
__device__ __forceinline__ float byte_magic(uint32_t w) {
    return __uint_as_float(__byte_perm(w, 0x4Bu, 0x4550u | e));
}

// sum_e (byte e of v - offset) * x[e] for the 4 bytes of v.
template <int kOffset>
__device__ __forceinline__ float bytes_dot(uint32_t v, float4 xv) {
    constexpr float c = kMagic + kOffset;
    float s = (byte_magic<0>(v) - c) * xv.x;
    s += (byte_magic<1>(v) - c) * xv.y;
    s += (byte_magic<2>(v) - c) * xv.z;
    s += (byte_magic<3>(v) - c) * xv.w;
    return s;
}

__device__ __forceinline__ float sum4(float4 v) { return (v.x + v.y) + (v.z + v.w); }

// Bits 0..3 of `bits` moved to bit 0 of bytes 0..3 (the four terms of the product land on distinct bit positions,
// so there are no carries).
__device__ __forceinline__ uint32_t spread4(uint32_t bits) { return ((bits & 15u) * 0x00204081u) & 0x01010101u; }

// N x 4 int8 activation values starting at p (4N-byte aligned: N = 2 or 4) as N words for __dp4a, in one vector load:
// the single-column dp4a matvec is latency-bound, and one 128-bit load issues where four 32-bit ones did.
template <int N>
__device__ __forceinline__ void int8x4_words(const int8_t* p, int (&w)[N]) {
    static_assert(N == 2 || N == 4);
    if constexpr (N == 4) {
        const int4 v = *reinterpret_cast<const int4*>(p);
        w[0] = v.x, w[1] = v.y, w[2] = v.z, w[3] = v.w;
    } else {
        const int2 v = *reinterpret_cast<const int2*>(p);
        w[0] = v.x, w[1] = v.y;
    }
}

}  // namespace orcd::quant::cuda_bits
