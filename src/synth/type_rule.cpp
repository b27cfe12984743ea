#include "synth/type_rule.h"

#include <fmt/format.h>

#include "common/error.h"

namespace orcd::synth {

using gguf::TensorType;

FileType parse_file_type(std::string_view name) {
    if (name == "F32" || name == "f32") return FileType::F32;
    if (name == "F16" || name == "f16") return FileType::F16;
    if (name == "BF16" || name == "bf16") return FileType::BF16;
    if (name == "Q8_0" || name == "q8_0") return FileType::Q8_0;
    if (name == "Q4_K_M" || name == "q4_k_m") return FileType::Q4_K_M;
    throw Error(ErrorCode::InvalidArgument,
                fmt::format("unknown --type '{}' (available: F32, F16, BF16, Q8_0, Q4_K_M)", name));
}

std::string_view file_type_name(FileType t) {
    switch (t) {
        case FileType::F32: return "F32";
        case FileType::F16: return "F16";
        case FileType::BF16: return "BF16";
        case FileType::Q8_0: return "Q8_0";
        case FileType::Q4_K_M: return "Q4_K_M";
    }
    return "?";
}

uint32_t llama_ftype(FileType t) {
    switch (t) {
        case FileType::F32: return 0;
        case FileType::F16: return 1;
        case FileType::BF16: return 32;
        case FileType::Q8_0: return 7;
        case FileType::Q4_K_M: return 15;
    }
    return 0;
}

bool use_more_bits(uint32_t layer, uint32_t n_layer) {
    return layer < n_layer / 8 || layer >= 7 * n_layer / 8 || (layer - n_layer / 8) % 3 == 2;
}

namespace {

TensorType fallback_for_row(TensorType t, uint64_t row_length) {
    if (row_length % 256 == 0) return t;
    switch (t) {
        case TensorType::Q4_K: return TensorType::Q5_0;
        case TensorType::Q5_K: return TensorType::Q5_1;
        case TensorType::Q6_K: return TensorType::Q8_0;
        default: return t;
    }
}

}  // namespace

TensorType choose_type(FileType ft, Role role, uint64_t row_length, bool is_tied_output, uint32_t layer,
                       uint32_t n_layer) {
    // One-dimensional tensors (norms, biases) stay F32 in every llama.cpp file type.
    if (role == Role::Norm || role == Role::Bias) return TensorType::F32;
    switch (ft) {
        case FileType::F32: return TensorType::F32;
        case FileType::F16: return TensorType::F16;
        case FileType::BF16: return TensorType::BF16;
        case FileType::Q8_0: return TensorType::Q8_0;
        case FileType::Q4_K_M: break;
    }
    const bool is_output = role == Role::Output || (role == Role::TokenEmbedding && is_tied_output);
    if (is_output) return row_length % 256 == 0 ? TensorType::Q6_K : TensorType::Q8_0;
    TensorType t = TensorType::Q4_K;
    if (role == Role::AttnV || role == Role::FfnDown) {
        if (use_more_bits(layer, n_layer)) t = TensorType::Q6_K;
    } else if (role == Role::AttnQkv) {
        t = TensorType::Q5_K;
    }
    return fallback_for_row(t, row_length);
}

}  // namespace orcd::synth
