#pragma once
// Declarative architecture descriptions. Each supported `general.architecture` is one table: its RoPE layout and the
// list of tensors it uses, each with its name pattern, expected shape as a function of the hyperparameters, the types
// accepted for it, whether it is optional, and which alternative form it belongs to (phi3's fused QKV vs separate
// Q/K/V). Adding an architecture means adding a table in arch.cpp; resolve_weights() and the loader stay unchanged.
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "model/config.h"
#include "model/weights.h"

namespace orcd::model {

using ShapeFn = std::vector<uint64_t> (*)(const Config&);

// Which tensor types a tensor may have. Matrices may be any type both backends implement; vectors (norms, biases,
// RoPE factors) are read as plain floats.
enum class TypeClass : uint8_t { Matrix, Vector };
std::span<const gguf::TensorType> accepted_types(TypeClass c);
bool type_accepted(TypeClass c, gguf::TensorType t);
std::string accepted_types_list(TypeClass c);  // "F32, F16, ..." for messages

enum class Need : uint8_t { Required, Optional };

struct TensorSpec {
    // Tensor name; per-layer tensors carry "{}" where the block index goes ("blk.{}.attn_q.weight").
    std::string_view name;
    // Where the resolved id is stored: exactly one of the two is set (per-layer vs model-wide).
    TensorId LayerWeights::*layer_slot = nullptr;
    TensorId ModelWeights::*model_slot = nullptr;
    ShapeFn shape = nullptr;
    std::string_view shape_expr;  // the formula behind `shape`, for messages: "[n_embd, q_dim + 2*kv_dim]"
    TypeClass types = TypeClass::Matrix;
    Need need = Need::Required;
    // Alternatives: specs with the same group > 0 form one choice per layer; the variant whose first spec (in table
    // order) is present in the file is used and all its specs become required. Group 0 = no alternative.
    uint8_t group = 0;
    uint8_t variant = 0;
    // For an optional model-wide tensor that stands in for another when absent (output.weight -> token_embd).
    TensorId ModelWeights::*tie_to = nullptr;

    bool per_layer() const { return layer_slot != nullptr; }
};

struct ArchDescription {
    Arch arch;
    std::string_view name;  // general.architecture value
    RopeLayout rope_layout;
    std::span<const TensorSpec> tensors;
};

std::span<const ArchDescription> architectures();
const ArchDescription* find_arch(std::string_view name);
const ArchDescription& arch_description(Arch arch);
std::string supported_architectures();  // "llama, qwen2, phi3, qwen3"

// Name of a spec for block `layer` ("blk.3.attn_q.weight"); `layer` is ignored for model-wide specs.
std::string tensor_name(const TensorSpec& spec, uint32_t layer);

}  // namespace orcd::model
