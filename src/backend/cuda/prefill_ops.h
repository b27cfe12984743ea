#pragma once
// Device ops of the batched (matrix-matrix) prefill path (with dequant.h's weight dequantization to f16 for the
// tensor-core GEMMs of gemm.h, its batched embedding lookup, and ops.h's rms_norm_to_f16): the f16-producing
// activation that feeds those GEMMs, a fused bias + RoPE + KV-store over the strided [q | k | v] rows a QKV GEMM
// writes, and causal grouped-query attention of a batch of queries over the f16 KV cache (flash-attention style,
// tensor cores). Activations are token-major; every op launches on `stream` and does not synchronize; no reduction
// uses atomics (results are bit-identical run to run).
#include <cstddef>
#include <cstdint>
#include <cuda_runtime_api.h>

#include "backend/cuda/dequant.h"
#include "backend/cuda/ops.h"
#include "gguf/types.h"

namespace orcd::cuda {

// out16[t][i] = f16(silu(gate) * up) over gate_up rows [gate (n) | up (n)], as swiglu.
void swiglu_to_f16(const float* gate_up, int64_t n_tokens, int64_t n, uint16_t* out16, cudaStream_t stream);

// For the n_tokens rows of qkv ([n_tokens][row_stride], each row [q (n_heads*hd) | k (n_kv*hd) | v (n_kv*hd)]) at
// positions pos0 .. pos0 + n_tokens - 1: adds the biases (null: none), rotates q and k (the rope op's arithmetic),
// writes q as f16 to q16 ([n_tokens][n_heads*hd]) and k, v as f16 into the cache at their positions.
struct QkvBias {
    const float* q = nullptr;
    const float* k = nullptr;
    const float* v = nullptr;
};
void qkv_rope_store(const float* qkv, int64_t row_stride, int64_t n_tokens, int n_heads, const QkvBias& bias, int n_rot,
                    int64_t pos0, const double* inv_freq, RopeLayout layout, const KvCacheView& kv, uint16_t* q16,
                    cudaStream_t stream);

// Whether attention_prefill has a kernel for this head dimension (instantiated for 64, 80, 96 and 128; the backend
// falls back to token-by-token decode otherwise).
bool attention_prefill_supported(int head_dim);

// Causal grouped-query attention of n_tokens queries at positions pos0 .. pos0 + n_tokens - 1 over cache positions
// 0 .. (own position) (the cache already holds the batch's K/V), limited by a sliding window > 0 to the positions
// model::attends() allows. q16: [n_tokens][n_heads * head_dim] f16; out16:
// same shape, f16. Scores are scaled by 1/sqrt(head_dim) and accumulated in f32 on tensor cores; each query row
// walks its keys in a fixed order (online softmax), so results do not depend on scheduling.
void attention_prefill(const uint16_t* q16, const KvCacheView& kv, int n_heads, int64_t pos0, int64_t n_tokens,
                       uint16_t* out16, cudaStream_t stream, uint32_t window = 0);

}  // namespace orcd::cuda
