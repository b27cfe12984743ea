#pragma once
// Kernel launches behind ops.h, kept apart from the checked entry points (ops.cpp) so that the .cu files need no
// formatting library (fmt's compile-time checks do not build under nvcc). Arguments are validated by the caller.
#include <cstddef>
#include <cstdint>
#include <cuda_runtime_api.h>

#include "backend/cuda/ops.h"

namespace orcd::cuda::detail {

void launch_rms_norm(const float* x, const float* weight, int64_t n_tokens, int64_t n, float eps, float* out,
                     cudaStream_t s);
void launch_rope(float* x, int64_t n_tokens, int n_heads, int head_dim, int n_rot, const int32_t* pos,
                 const double* inv_freq, RopeLayout layout, cudaStream_t s);
void launch_add_bias(float* y, const float* bias, int64_t n_tokens, int64_t n, cudaStream_t s);
void launch_add(float* x, const float* y, int64_t n, cudaStream_t s);
void launch_swiglu(const float* gate_up, int64_t n_tokens, int64_t n, float* out, cudaStream_t s);
void launch_kv_store(const KvCacheView& kv, int64_t n_tokens, const float* k, const float* v, const int32_t* pos,
                     cudaStream_t s);
void launch_qkv_rope_store(float* qkv, int64_t stride, int n_cols, const float* bq, const float* bk, const float* bv,
                           int n_heads, const KvCacheView& kv, int n_rot, const DecodeColumns& cols,
                           const double* inv_freq, RopeLayout layout, cudaStream_t s);
void launch_rms_norm_heads(float* x, int64_t n_tokens, int64_t row_stride, int n_heads, int head_dim,
                           const float* weight, float eps, cudaStream_t s);
void launch_argmax(const float* x, int64_t n, int32_t* out, int n_rows, int64_t stride, cudaStream_t s);

// attention.cu
inline constexpr int kAttnChunk = 64;  // cache positions per flash-decoding partial
inline int64_t attention_chunks(int64_t n_ctx) { return (n_ctx + kAttnChunk - 1) / kAttnChunk; }
void launch_attention_decode(const float* q, int64_t q_stride, int n_cols, const KvCacheView& kv, int n_heads,
                             const DecodeColumns& cols, float* out, int64_t out_stride, void* workspace,
                             uint32_t window, cudaStream_t s);

// embed.cu; returns false for a type without a kernel.
bool launch_embedding_row(gguf::TensorType type, const void* table, int64_t cols, const int32_t* token, float* out,
                          cudaStream_t s);

}  // namespace orcd::cuda::detail
