#pragma once
// The output step the fused matvec kernels share (matvec_fused.cu on f32 activations, matvec_q8.cu on int8 ones):
// store, accumulate into the residual stream, or SwiGLU of the gate (a) and up (b) dot products. Device code only.
#include <cstdint>

namespace orcd::cuda {

// Epilogue codes: the MatvecEpilogue values of matvec_fused.h.
__device__ __forceinline__ void matvec_epilogue_store(float* y, int64_t out, float a, float b, int epilogue) {
    if (epilogue == 0) {
        y[out] = a;
    } else if (epilogue == 1) {
        y[out] = y[out] + a;
    } else {
        y[out] = __fmul_rn(a / (1.f + expf(-a)), b);  // as swiglu_kernel
    }
}

}  // namespace orcd::cuda
