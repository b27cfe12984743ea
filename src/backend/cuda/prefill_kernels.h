#pragma once
// Kernel launches behind prefill_ops.h, kept apart from the checked entry points (prefill_ops.cpp) so the .cu files
// need no formatting library. Arguments are validated by the caller.
#include <cstdint>
#include <cuda_runtime_api.h>

#include "backend/cuda/prefill_ops.h"

namespace orcd::cuda::detail {

// prefill_elementwise.cu
void launch_rms_norm_f16(const float* x, const float* weight, int64_t n_tokens, int64_t n, float eps, uint16_t* out,
                         cudaStream_t s);
void launch_swiglu_f16(const float* gate_up, int64_t n_tokens, int64_t n, uint16_t* out, cudaStream_t s);
void launch_qkv_rope_store(const float* qkv, int64_t row_stride, int64_t n_tokens, int n_heads, const QkvBias& bias,
                           int n_rot, int64_t pos0, const double* inv_freq, RopeLayout layout, const KvCacheView& kv,
                           uint16_t* q16, cudaStream_t s);

// attention_prefill.cu; false for a head dimension without an instantiation.
bool launch_attention_prefill(const uint16_t* q16, const KvCacheView& kv, int n_heads, int64_t pos0, int64_t n_tokens,
                              uint32_t window, uint16_t* out16, cudaStream_t s);

}  // namespace orcd::cuda::detail
