#pragma once
// The CUDA backend's view of one resident model: its recipe (model/recipe.h: which ops each layer runs) and, for each
// layer, where its weights are in the device arena and in which GGUF type, resolved once at construction so the
// forward passes (decode_step.cpp, prefill_step.cpp) never look a tensor up by name. Internal to the CUDA backend.
#include <cstdint>
#include <vector>

#include "backend/cuda/ops.h"
#include "gguf/types.h"
#include "model/config.h"
#include "model/recipe.h"

namespace orcd::backend::cuda {

// A weight matrix in the arena, and where its output goes inside the step's output buffer (fused and separate
// projections write the same [q | k | v] and [gate | up] layouts, so the ops after them do not care which it was).
struct Matmul {
    gguf::TensorType type = gguf::TensorType::F32;
    const void* w = nullptr;
    int64_t rows = 0, cols = 0;
    int64_t out_offset = 0;  // floats into the output row
};

struct Layer {
    const float* attn_norm = nullptr;
    const float* ffn_norm = nullptr;
    std::vector<Matmul> qkv;        // writes [q (q_dim) | k (kv_dim) | v (kv_dim)]
    const float* bias[3] = {};      // q, k, v biases (qwen2), or null
    const float* q_norm = nullptr;  // [head_dim] q/k norm weights with Recipe::qk_norm (qwen3), else null
    const float* k_norm = nullptr;
    Matmul o;
    std::vector<Matmul> gate_up;  // writes [gate (n_ff) | up (n_ff)]
    Matmul down;
};

struct CudaModel {
    const model::Config* config = nullptr;
    const model::Recipe* recipe = nullptr;
    gguf::TensorType embd_type{};
    const void* token_embd = nullptr;
    Matmul output;
    const float* output_norm = nullptr;
    std::vector<Layer> layers;
    const double* inv_freq = nullptr;  // rope_dim / 2 rotary inverse frequencies, on the device
};

// A view of the f16 KV pool (CudaKvPool, kv_pool.h) for the forward passes. Page layout: a page holds page_size
// consecutive positions of one sequence for every layer, as [n_layers][K, V][page_size][kv_dim] halves, so position p
// of a sequence is row p % page_size of its page table's page p / page_size, and one layer's K (or V) rows of a page
// are contiguous. `pages` is a page table in device memory (one sequence's for a prefill; the step's concatenated
// tables for the decode columns, each column locating its own through DecodeColumns::table); n_ctx bounds the
// positions (the attention workspace is sized by it).
struct KvCache {
    uint16_t* base = nullptr;
    uint32_t page_size = 0;
    int64_t n_ctx = 0;
    const int32_t* pages = nullptr;

    static uint64_t page_bytes(const model::Config& c, uint32_t page_size) {
        return 2ull * c.n_layers * page_size * c.kv_dim() * sizeof(uint16_t);
    }
    ::orcd::cuda::KvCacheView layer(const model::Config& c, size_t li) const {
        const int64_t slab = static_cast<int64_t>(page_size) * c.kv_dim();  // halves of one layer's K (or V) per page
        uint16_t* k = base + 2 * static_cast<int64_t>(li) * slab;
        return {k,
                k + slab,
                n_ctx,
                static_cast<int>(c.n_kv_heads),
                static_cast<int>(c.head_dim),
                pages,
                static_cast<int>(page_size),
                2 * static_cast<int64_t>(c.n_layers) * slab};
    }
};

// Bump allocator over one device allocation: every buffer 256-byte aligned (the matvec reads x 16 bytes at a time).
struct Carver {
    uint64_t size = 0;
    uint64_t take(uint64_t bytes) {
        const uint64_t at = size;
        size += (bytes + 255) / 256 * 256;
        return at;
    }
};

}  // namespace orcd::backend::cuda
