#pragma once
// The element-wise, normalization, rotary, attention, embedding and selection ops of the forward pass on the device,
// computing the same functions as the CPU reference ops (backend/cpu/ops.h) on f32 activations laid out token-major
// ([n_tokens][dim]). Every op launches on `stream` and does not synchronize.
//
// Decode positions are read from device memory (`pos`: the absolute position of the first token), so that one
// captured CUDA graph of the decode step replays correctly at every position: the host updates one int, not the
// graph. Reductions are fixed-order trees (no atomics): the same inputs give bit-identical outputs on every run.
//
// Defined beside their kernels: ops.cu, attention.cu (attention_decode, attention_decode_q8) and dequant.cu
// (embedding_row, the batched lookup's kernels with one token). Each op checks its arguments first (InvalidArgument
// naming the op).
#include <cstddef>
#include <cstdint>
#include <cuda_runtime_api.h>

#include "gguf/types.h"
#include "model/rope_layout.h"

namespace orcd::cuda {

struct Q8Vector;  // matvec_q8.h

// out[t] = x[t] / sqrt(mean(x[t]^2) + eps) * weight for each of n_tokens rows of n values; out may alias x.
void rms_norm(const float* x, const float* weight, int64_t n_tokens, int64_t n, float eps, float* out,
              cudaStream_t stream);

// out16[t] = f16(rms_norm(x[t]) * weight): the function of rms_norm, rounded to f16 (the prefill's GEMM input).
void rms_norm_to_f16(const float* x, const float* weight, int64_t n_tokens, int64_t n, float eps, uint16_t* out16,
                     cudaStream_t stream);

// Rotary embedding layouts as GGUF stores the q/k rows: the model layer's enum.
using model::RopeLayout;

// The q/k norm of the recipe (qwen3): in place, each of the n_heads heads (head_dim values, starting at
// x[t * row_stride]) of each of n_tokens rows becomes rms_norm(head) * weight ([head_dim], shared by the heads):
// the function of rms_norm with one head as a row, bit-identical to it. row_stride >= n_heads * head_dim.
void rms_norm_heads(float* x, int64_t n_tokens, int64_t row_stride, int n_heads, int head_dim, const float* weight,
                    float eps, cudaStream_t stream);

// Rotates, in place, the first n_rot values of each head of n_tokens tokens (x: [n_tokens][n_heads * head_dim]);
// token t is at position *pos + t. inv_freq: n_rot / 2 device doubles, theta^(-2i / n_rot), as the
// CPU reference's rope_inv_freq computes them (copied to the device once per model). Angles, sines and cosines are
// computed in double, as the CPU does.
void rope(float* x, int64_t n_tokens, int n_heads, int head_dim, int n_rot, const int32_t* pos, const double* inv_freq,
          RopeLayout layout, cudaStream_t stream);

// y[t][i] += bias[i] for each of n_tokens rows of n values (the qwen2 Q/K/V biases).
void add_bias(float* y, const float* bias, int64_t n_tokens, int64_t n, cudaStream_t stream);

// x[i] += y[i] (residual connections).
void add(float* x, const float* y, int64_t n, cudaStream_t stream);

// out[t][i] = silu(gate[t][i]) * up[t][i] where gate and up are rows of one [n_tokens][2 * n] buffer laid out as
// gate_up[t] = [gate (n) | up (n)]: the fused gate+up projection's output (phi3), or two adjacent projections'.
// out ([n_tokens][n]) may alias the gate half of token 0 only when n_tokens == 1.
void swiglu(const float* gate_up, int64_t n_tokens, int64_t n, float* out, cudaStream_t stream);

// One layer's KV cache on the device: K and V rows of n_kv_heads * head_dim f16 values, one row per position.
// Contiguous (pages == nullptr): row p at k + p * kv_dim, n_ctx rows. Paged (the KV pool, docs/BATCHING.md): position p
// lives in page pages[p / page_size], slot p % page_size, i.e. at k + pages[p / page_size] * page_stride +
// (p % page_size) * kv_dim; `k` and `v` point at this layer's K and V slots of page 0, n_ctx is the pool's positions.
// For a batch of decode columns (DecodeColumns), each column's page table starts at pages + table[c].
struct KvCacheView {
    uint16_t* k = nullptr;
    uint16_t* v = nullptr;
    int64_t n_ctx = 0;
    int n_kv_heads = 0;
    int head_dim = 0;
    const int32_t* pages = nullptr;  // device page table(s); null: contiguous
    int page_size = 0;
    int64_t page_stride = 0;  // halves from one page to the next
};

// The decode columns of one batched step, in device memory: column c is a token at position pos[c] whose sequence's
// page table starts at kv.pages + table[c] (table null: every column uses kv.pages itself). Columns of one sequence
// at consecutive positions (a replay) attend causally, each to the positions <= its own.
struct DecodeColumns {
    const int32_t* pos = nullptr;
    const int32_t* table = nullptr;
};

// Writes n_tokens tokens' K and V rows ([n_tokens][n_kv_heads * head_dim], f32, rounded to nearest f16) at
// positions *pos .. *pos + n_tokens - 1. The caller guarantees they fit n_ctx.
void kv_store(const KvCacheView& kv, int64_t n_tokens, const float* k, const float* v, const int32_t* pos,
              cudaStream_t stream);

// The attention inputs of one decode token, in one launch (instead of three bias adds, two ropes and a store):
// qkv = [q (n_heads * head_dim) | k (kv_dim) | v (kv_dim)] from the QKV matvec gets its biases (bq, bk, bv; any may
// be null), q and k are rotated at position *pos exactly as rope() does it, q is written back in place, and k and v
// are stored into the cache at *pos rounded to f16 as kv_store() does it (the rotated k is not written back).
// Batched: n_cols columns of qkv, `stride` floats apart, column c at cols.pos[c] through its page table.
void qkv_rope_store(float* qkv, int64_t stride, int n_cols, const float* bq, const float* bk, const float* bv,
                    int n_heads, const KvCacheView& kv, int n_rot, const DecodeColumns& cols, const double* inv_freq,
                    RopeLayout layout, cudaStream_t stream);
inline void qkv_rope_store(float* qkv, const float* bq, const float* bk, const float* bv, int n_heads,
                           const KvCacheView& kv, int n_rot, const int32_t* pos, const double* inv_freq,
                           RopeLayout layout, cudaStream_t stream) {
    qkv_rope_store(qkv, 0, 1, bq, bk, bv, n_heads, kv, n_rot, DecodeColumns{pos, nullptr}, inv_freq, layout, stream);
}

// Device scratch attention_decode needs for n_cols columns over caches of up to n_ctx positions and n_heads query
// heads, in bytes.
size_t attention_workspace_bytes(int64_t n_ctx, int n_heads, int head_dim, int n_cols = 1);

// Grouped-query attention of n_cols query tokens, column c at position cols.pos[c] over its sequence's cache positions
// 0 .. pos[c] (causal; the cache must already hold the token's own K/V), limited by a sliding window > 0 to the
// positions model::attends() allows. q, out: n_cols rows of [n_heads * head_dim], q_stride / out_stride floats apart;
// query head h reads KV head h / (n_heads / n_kv_heads); scores are scaled by 1/sqrt(head_dim). Flash-decoding: a
// column's keys are cut into chunks of a fixed number of positions (kAttnChunk), each chunk's partial softmax-weighted
// sum is computed independently, and the partials are combined in chunk order, so a column's result depends on its
// own position and cache only, never on the other columns or on scheduling. kv.n_ctx bounds every position.
void attention_decode(const float* q, int64_t q_stride, int n_cols, const KvCacheView& kv, int n_heads,
                      const DecodeColumns& cols, float* out, int64_t out_stride, void* workspace, cudaStream_t stream,
                      uint32_t window = 0);
// attention_decode whose output goes straight into the int8 input of the projection that reads it: column c's
// n_heads * head_dim values quantized as quantize_q8_columns lays them out (matvec_q8.h; out is column 0's, the
// next column's q8_vector_bytes further), bit for bit what attention_decode then quantize_q8_columns (no norm) give,
// one dependent launch fewer. n_heads * head_dim must be a multiple of 32.
void attention_decode_q8(const float* q, int64_t q_stride, int n_cols, const KvCacheView& kv, int n_heads,
                         const DecodeColumns& cols, const Q8Vector& out, void* workspace, cudaStream_t stream,
                         uint32_t window = 0);
// One column at *pos (contiguous q and out).
inline void attention_decode(const float* q, const KvCacheView& kv, int n_heads, const int32_t* pos, float* out,
                             void* workspace, cudaStream_t stream, uint32_t window = 0) {
    attention_decode(q, 0, 1, kv, n_heads, DecodeColumns{pos, nullptr}, out, 0, workspace, stream, window);
}

// Dequantizes row *token of a [rows][cols] table stored in `type` (the token embedding) into out[cols].
// The caller guarantees 0 <= *token < rows.
void embedding_row(gguf::TensorType type, const void* table, int64_t cols, const int32_t* token, float* out,
                   cudaStream_t stream);
bool embedding_supported(gguf::TensorType type);

// *out = the index of the largest of x[0..n) (ties: the lowest index; NaNs never win). Batched: out[c] for each of
// n_rows rows of x, `stride` floats apart (a cluster of 8 blocks per row, the same reduction tree for every row).
void argmax(const float* x, int64_t n, int32_t* out, cudaStream_t stream, int n_rows = 1, int64_t stride = 0);

}  // namespace orcd::cuda
