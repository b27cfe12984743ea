#pragma once
// The hyperparameters of a model, read from its GGUF metadata (`<arch>.*` keys) once and then passed around as a
// plain struct. Nothing here is specific to one model: every value comes from the file, with llama.cpp's defaults
// only where llama.cpp itself treats a key as optional.
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "model/rope_layout.h"

namespace orcd::gguf {
class File;
}

namespace orcd::model {

enum class Arch : uint8_t { Llama, Qwen2, Phi3, Qwen3 };

std::string_view rope_layout_name(RopeLayout layout);  // "interleaved" | "neox"

struct Config {
    Arch arch = Arch::Llama;
    std::string arch_name;   // the file's general.architecture, e.g. "qwen2"
    std::string model_name;  // general.name when present (for reports only)

    uint32_t n_layers = 0;        // <arch>.block_count
    uint32_t n_embd = 0;          // <arch>.embedding_length
    uint32_t n_ff = 0;            // <arch>.feed_forward_length
    uint32_t n_heads = 0;         // <arch>.attention.head_count
    uint32_t n_kv_heads = 0;      // <arch>.attention.head_count_kv (default: n_heads, i.e. multi-head attention)
    uint32_t head_dim = 0;        // <arch>.attention.key_length (default: n_embd / n_heads)
    uint32_t n_vocab = 0;         // rows of token_embd.weight (the tokenizer list may be shorter or longer)
    uint32_t context_length = 0;  // <arch>.context_length: the context the model was trained for
    float rms_eps = 0.0f;         // <arch>.attention.layer_norm_rms_epsilon
    float rope_theta = 10000.0f;  // <arch>.rope.freq_base (default 10000, as llama.cpp)
    uint32_t rope_dim = 0;        // <arch>.rope.dimension_count (default: head_dim); rotated dims per head
    RopeLayout rope_layout = RopeLayout::Interleaved;
    std::optional<uint32_t> sliding_window;  // <arch>.attention.sliding_window (phi3 files carry one)

    uint32_t q_dim() const { return n_heads * head_dim; }      // rows of attn_q
    uint32_t kv_dim() const { return n_kv_heads * head_dim; }  // rows of attn_k / attn_v
    uint32_t gqa_group() const { return n_heads / n_kv_heads; }
};

// Reads and validates the hyperparameters. `n_vocab` is taken from the embedding tensor's row count.
// Errors: UnsupportedArchitecture (names the architecture and the supported list), MetadataMissing, MetadataType,
// MissingTensor (token_embd.weight), CorruptFile (a value out of its valid range or inconsistent with another,
// naming the key, the value and the constraint).
Config load_config(const gguf::File& file);

}  // namespace orcd::model
