#pragma once
// Which tensor type each weight gets for a requested file type. For Q4_K_M this follows llama.cpp's rule
// (llama_tensor_get_type): Q6_K for the output (and for a tied embedding, which is the output), Q6_K for attn_v and
// ffn_down in the layers chosen by use_more_bits, Q5_K for a fused attn_qkv, Q4_K elsewhere; a K-type on a row length
// that is not a multiple of 256 falls back (Q4_K->Q5_0, Q5_K->Q5_1, Q6_K->Q8_0, and the output to Q8_0).
#include <cstdint>
#include <string_view>

#include "gguf/types.h"

namespace orcd::synth {

enum class FileType { F32, F16, BF16, Q8_0, Q4_K_M };

FileType parse_file_type(std::string_view name);  // "F32", "F16", "BF16", "Q8_0", "Q4_K_M"; throws InvalidArgument
std::string_view file_type_name(FileType t);
uint32_t llama_ftype(FileType t);  // value for general.file_type (llama.cpp's LLAMA_FTYPE_*)

// What a weight is, as far as the type rule cares.
enum class Role {
    TokenEmbedding,
    Output,
    AttnQ,
    AttnK,
    AttnV,
    AttnQkv,
    AttnOutput,
    FfnGate,
    FfnUp,
    FfnDown,
    Norm,
    Bias
};

// layer/n_layer locate the tensor among the model's blocks (ignored for non-block tensors).
gguf::TensorType choose_type(FileType ft, Role role, uint64_t row_length, bool is_tied_output, uint32_t layer,
                             uint32_t n_layer);

// llama.cpp's use_more_bits: the first and last eighth of the layers, and every third one in between.
bool use_more_bits(uint32_t layer, uint32_t n_layer);

}  // namespace orcd::synth
