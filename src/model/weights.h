#pragma once
// Every tensor a model uses, resolved once from the file into typed per-layer structs. Downstream code (the plan, the
// CPU backend reading the mapping, the CUDA backend reading the device arena) addresses tensors by TensorId fields,
// never by name: a name lookup happens exactly once, here.
#include <cstddef>
#include <cstdint>
#include <limits>
#include <span>
#include <string>
#include <vector>

#include "gguf/types.h"
#include "model/config.h"

namespace orcd::gguf {
class File;
}

namespace orcd::model {

// Index into ModelWeights::tensors (and into the loader's Plan::tensors). Invalid means "this model has none".
struct TensorId {
    static constexpr uint32_t kInvalid = std::numeric_limits<uint32_t>::max();
    uint32_t value = kInvalid;

    bool valid() const { return value != kInvalid; }
    explicit operator bool() const { return valid(); }
    friend bool operator==(TensorId, TensorId) = default;
};

struct TensorRef {
    std::string name;
    gguf::TensorType type = gguf::TensorType::F32;
    std::vector<uint64_t> shape;  // GGUF order: ne0 (the contiguous row length) first
    uint64_t n_bytes = 0;
    uint64_t file_offset = 0;         // absolute offset of the data in the file
    int32_t layer = -1;               // block index, -1 for tensors outside the blocks
    std::span<const std::byte> data;  // the bytes inside the mapping: valid while the gguf::File lives

    uint64_t row_length() const { return shape.empty() ? 0 : shape[0]; }
    uint64_t rows() const;  // product of the dimensions after the first (1 for vectors)
};

struct LayerWeights {
    TensorId attn_norm;
    // Attention projections: either separate Q/K/V (llama, qwen2, some phi3 conversions) or phi3's fused QKV, whose
    // rows are Q (q_dim rows) then K (kv_dim) then V (kv_dim). Exactly one of the two forms is valid.
    TensorId attn_q, attn_k, attn_v;
    TensorId attn_qkv;
    TensorId attn_q_bias, attn_k_bias, attn_v_bias;  // qwen2 (required there), optional for llama
    TensorId attn_q_norm, attn_k_norm;  // qwen3: per-head RMSNorm weights ([head_dim]) applied to q and k before RoPE
    TensorId attn_output;
    TensorId ffn_norm;
    // Feed-forward: separate gate and up, or phi3's fused ffn_up whose first n_ff rows are the gate and the next n_ff
    // the up projection (ffn_gate is then invalid).
    TensorId ffn_gate, ffn_up, ffn_down;

    bool fused_qkv() const { return attn_qkv.valid(); }
    bool fused_gate_up() const { return !ffn_gate.valid(); }
};

struct ModelWeights {
    TensorId token_embd;
    TensorId output_norm;
    TensorId output;  // == token_embd when the file has no output.weight (tied embeddings)
    bool output_tied = false;
    TensorId rope_freqs;                             // llama 3.x frequency factors (optional)
    TensorId rope_factors_long, rope_factors_short;  // phi3 long-context variants (optional)
    std::vector<LayerWeights> layers;

    std::vector<TensorRef> tensors;    // each used tensor once, in file order (this is also the arena order)
    std::vector<std::string> ignored;  // tensors in the file that the architecture description does not use

    const TensorRef& operator[](TensorId id) const { return tensors.at(id.value); }
    uint64_t total_bytes() const;  // sum of the used tensors' bytes (no alignment padding)
};

// Resolves every tensor of the architecture's description against the file, checking presence, shape and type.
// Errors: MissingTensor (named; for alternatives, every accepted form is named), TensorShape (tensor, expected shape
// with its formula, found shape), UnsupportedTensorType (tensor, its type, the types accepted for it).
ModelWeights resolve_weights(const gguf::File& file, const Config& config);

}  // namespace orcd::model
