#pragma once
// The element-wise and attention ops of the forward pass, on f32 activations laid out token-major ([n_tokens][dim]).
// The CUDA backend implements the same ops under the same names and is tested against these.
#include <cstdint>
#include <span>
#include <vector>

#include "backend/cpu/thread_pool.h"
#include "model/rope_layout.h"

namespace orcd::backend::cpu {

// out[t] = x[t] / sqrt(mean(x[t]^2) + eps) * weight, for each of n_tokens rows of n values. out may alias x.
void rms_norm(const float* x, const float* weight, int64_t n_tokens, int64_t n, float eps, float* out);

// Rotary embedding layouts as GGUF files store the q/k rows: Interleaved rotates pairs (x[2i], x[2i+1]), NeoX pairs
// (x[i], x[i + n_rot / 2]).
using model::RopeLayout;

// Per-pair inverse frequencies theta^(-2i / n_rot), i < n_rot / 2, computed in double (the CPU backend is the
// reference; HF computes them in f32, which differs by far less than the fixtures' tolerance).
std::vector<double> rope_inv_freq(int n_rot, double theta);

// Rotates the first n_rot values of each of n_heads heads (head_dim values each) of one token at position pos.
void rope(float* x, int n_heads, int head_dim, int n_rot, int64_t pos, const std::vector<double>& inv_freq,
          RopeLayout layout);

// In place, numerically stable (max subtracted).
void softmax(float* x, int64_t n);

// out[i] = silu(gate[i]) * up[i]; out may alias gate or up.
void swiglu(const float* gate, const float* up, int64_t n, float* out);

// x[i] += y[i]
void add(float* x, const float* y, int64_t n);

// KV element types the attention reads.
enum class KvType { F32, F16 };

// One layer's cache: K and V rows of [n_kv_heads][head_dim] values in the given element type. Contiguous (position p
// at row p) when `pages` is null; paged otherwise: position p at row p % page_size of page pages[p / page_size], and
// page q's rows start page_stride elements after page 0's (the KV pool's layout: cpu_backend.cpp).
struct KvLayerView {
    KvType type = KvType::F32;
    void* k = nullptr;
    void* v = nullptr;
    int64_t n_ctx = 0;
    int n_kv_heads = 0;
    int head_dim = 0;
    const uint32_t* pages = nullptr;
    int64_t page_size = 0;
    int64_t page_stride = 0;

    int64_t row_len() const { return static_cast<int64_t>(n_kv_heads) * head_dim; }
    // Elements from k (or v) to position p's row.
    int64_t row_offset(int64_t p) const {
        return pages ? static_cast<int64_t>(pages[p / page_size]) * page_stride + (p % page_size) * row_len()
                     : p * row_len();
    }
};

// Writes n_tokens tokens' K and V rows ([n_tokens][n_kv_heads * head_dim], f32) at positions pos0.. of the cache.
void kv_store(const KvLayerView& kv, int64_t pos0, int64_t n_tokens, const float* k, const float* v);

// Causal grouped-query attention for n_tokens queries at positions pos0 .. pos0 + n_tokens - 1 over the cache, which
// must already hold positions 0 .. pos0 + n_tokens - 1. q: [n_tokens][n_heads * head_dim]; out: same shape.
// Query head h reads KV head h / (n_heads / n_kv_heads); scores are scaled by 1/sqrt(head_dim).
// window > 0 limits each query to the keys model::attends() allows (model/attention_window.h states it, once);
// 0 = the whole causal prefix.
void attention(const float* q, const KvLayerView& kv, int64_t pos0, int64_t n_tokens, int n_heads, float* out,
               ThreadPool& pool, int64_t window = 0);

// Several sequences' attention in one parallel pass (the batched step): each segment is one call of attention()
// above, computed exactly as that call would, with the work of all segments shared by the pool's threads.
struct AttentionSegment {
    const float* q = nullptr;
    KvLayerView kv;
    int64_t pos0 = 0;
    int64_t n_tokens = 0;
    float* out = nullptr;
};
void attention(std::span<const AttentionSegment> segments, int n_heads, ThreadPool& pool, int64_t window = 0);

}  // namespace orcd::backend::cpu
