#pragma once
// What the format headers (formats/*.h) need to be compiled both by the host compiler and by nvcc: the
// __host__ __device__ marker, half -> float, and float products and sums that nvcc may not contract into an FMA.
//
// The reference dequantization (dequantize_row) and the CUDA decoders evaluate the same expressions through these
// helpers; pinning every product and sum to its own rounding (__fmul_rn / __fadd_rn on the device; on the host the
// build uses ISO C++, where GCC does not contract) makes the device's values bit-identical to the host's.
#include <cstdint>

#ifdef __CUDACC__
#include <cuda_fp16.h>
#define ORCD_HD __host__ __device__
#else
#define ORCD_HD
#endif

// Unrolls a short loop of an ORCD_HD function in the device pass (the host compiler does not know the pragma).
#ifdef __CUDA_ARCH__
#define ORCD_UNROLL _Pragma("unroll")
#else
#define ORCD_UNROLL
#endif

#include "common/half.h"

namespace orcd::quant {

ORCD_HD inline float half_to_float(uint16_t bits) {
#ifdef __CUDA_ARCH__
    return __half2float(__ushort_as_half(bits));
#else
    return fp16_to_fp32(bits);
#endif
}

ORCD_HD inline float mul_rn(float a, float b) {
#ifdef __CUDA_ARCH__
    return __fmul_rn(a, b);
#else
    return a * b;
#endif
}

ORCD_HD inline float add_rn(float a, float b) {
#ifdef __CUDA_ARCH__
    return __fadd_rn(a, b);
#else
    return a + b;
#endif
}

ORCD_HD inline float sub_rn(float a, float b) {
#ifdef __CUDA_ARCH__
    return __fsub_rn(a, b);
#else
    return a - b;
#endif
}

// out[i] = d * q[i] for 8 signed 8-bit quants (Q8_0, Q8_1, Q8_K).
ORCD_HD inline void scale_int8x8(float d, const int8_t* q, float* out) {
    ORCD_UNROLL
    for (int i = 0; i < 8; ++i) out[i] = mul_rn(d, static_cast<float>(q[i]));
}

// The integer form of 32 consecutive weights that the CPU dot products multiply against an int8 activation: within
// the chunk, w_j = sc[h] * u_j - mn[h] with h = j / 16 (the K-quants with 16-wide sub-blocks have two scales per
// chunk) and u_j a small non-negative integer (0..63; Q8_0's signed int8 is the one exception). Offsets such as
// Q4_0's "- 8" become a minimum mn = 8 * d, so the integer products are unsigned-by-signed (AVX2's maddubs) and an
// offset costs one multiply by the activation's block sum.
struct Chunk32 {
    int u[32];
    float sc[2];
    float mn[2];
};

ORCD_HD inline void set_chunk_scales(Chunk32& k, float sc0, float sc1, float mn0, float mn1) {
    k.sc[0] = sc0, k.sc[1] = sc1, k.mn[0] = mn0, k.mn[1] = mn1;
}

// Low nibble of qs[k] for k < 16, high nibble of qs[k - 16] otherwise: the element order of the 32-element formats.
ORCD_HD inline int nibble32(const uint8_t* qs, int k) { return k < 16 ? (qs[k] & 15) : (qs[k - 16] >> 4); }

}  // namespace orcd::quant
