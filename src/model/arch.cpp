#include "model/arch.h"

#include <array>

#include <fmt/format.h>

#include "common/error.h"
#include "common/join.h"

namespace orcd::model {

namespace {

using gguf::TensorType;

// The types both backends implement (the CUDA backend's list in the CUDA-backend issue, the CPU backend's dequantizers
// in src/quant/). A type outside this list is refused at resolution, naming the tensor, so that no engine meets a
// weight it cannot multiply. Extending it means adding kernels in both backends first.
// Q4_1 and Q5_1 are included because llama.cpp's Q4_K_M rule falls back to Q5_1 for a Q5_K tensor whose rows are
// not a multiple of 256 (both backends have kernels for them); Q2_K and Q3_K have CPU kernels only.
constexpr std::array kMatrixTypes = {
    TensorType::F32,  TensorType::F16,  TensorType::BF16, TensorType::Q4_0, TensorType::Q4_1, TensorType::Q5_0,
    TensorType::Q5_1, TensorType::Q8_0, TensorType::Q4_K, TensorType::Q5_K, TensorType::Q6_K,
};
// Norm weights, biases and RoPE factors are small and read as floats; the converters always write them as F32.
constexpr std::array kVectorTypes = {TensorType::F32};

using S = std::vector<uint64_t>;

// Shapes in GGUF order (ne0 = row length first): a projection from n_in to n_out features is [n_in, n_out].
S embd_shape(const Config& c) { return {c.n_embd, c.n_vocab}; }
S embd_vec(const Config& c) { return {c.n_embd}; }
S q_shape(const Config& c) { return {c.n_embd, c.q_dim()}; }
S kv_shape(const Config& c) { return {c.n_embd, c.kv_dim()}; }
S qkv_shape(const Config& c) { return {c.n_embd, uint64_t{c.q_dim()} + 2ull * c.kv_dim()}; }
S q_vec(const Config& c) { return {c.q_dim()}; }
S kv_vec(const Config& c) { return {c.kv_dim()}; }
S o_shape(const Config& c) { return {c.q_dim(), c.n_embd}; }
S ff_in_shape(const Config& c) { return {c.n_embd, c.n_ff}; }
S ff_in2_shape(const Config& c) { return {c.n_embd, 2ull * c.n_ff}; }
S ff_out_shape(const Config& c) { return {c.n_ff, c.n_embd}; }
S rope_half(const Config& c) { return {c.rope_dim / 2}; }
S head_vec(const Config& c) { return {c.head_dim}; }

using L = LayerWeights;
using M = ModelWeights;
constexpr auto Mat = TypeClass::Matrix;
constexpr auto Vec = TypeClass::Vector;
constexpr auto Req = Need::Required;
constexpr auto Opt = Need::Optional;

// clang-format off
constexpr TensorSpec kEmbd      {"token_embd.weight",  nullptr, &M::token_embd,  embd_shape, "[n_embd, n_vocab]", Mat, Req};
constexpr TensorSpec kOutNorm   {"output_norm.weight", nullptr, &M::output_norm, embd_vec,   "[n_embd]",          Vec, Req};
constexpr TensorSpec kOutTied   {"output.weight",      nullptr, &M::output,      embd_shape, "[n_embd, n_vocab]", Mat, Opt, 0, 0, &M::token_embd};
constexpr TensorSpec kOutReq    {"output.weight",      nullptr, &M::output,      embd_shape, "[n_embd, n_vocab]", Mat, Req};
constexpr TensorSpec kAttnNorm  {"blk.{}.attn_norm.weight",   &L::attn_norm,   nullptr, embd_vec,     "[n_embd]",                        Vec, Req};
constexpr TensorSpec kQ         {"blk.{}.attn_q.weight",      &L::attn_q,      nullptr, q_shape,      "[n_embd, n_heads*head_dim]",      Mat, Req};
constexpr TensorSpec kK         {"blk.{}.attn_k.weight",      &L::attn_k,      nullptr, kv_shape,     "[n_embd, n_kv_heads*head_dim]",   Mat, Req};
constexpr TensorSpec kV         {"blk.{}.attn_v.weight",      &L::attn_v,      nullptr, kv_shape,     "[n_embd, n_kv_heads*head_dim]",   Mat, Req};
constexpr TensorSpec kO         {"blk.{}.attn_output.weight", &L::attn_output, nullptr, o_shape,      "[n_heads*head_dim, n_embd]",      Mat, Req};
constexpr TensorSpec kFfnNorm   {"blk.{}.ffn_norm.weight",    &L::ffn_norm,    nullptr, embd_vec,     "[n_embd]",                        Vec, Req};
constexpr TensorSpec kGate      {"blk.{}.ffn_gate.weight",    &L::ffn_gate,    nullptr, ff_in_shape,  "[n_embd, n_ff]",                  Mat, Req};
constexpr TensorSpec kUp        {"blk.{}.ffn_up.weight",      &L::ffn_up,      nullptr, ff_in_shape,  "[n_embd, n_ff]",                  Mat, Req};
constexpr TensorSpec kDown      {"blk.{}.ffn_down.weight",    &L::ffn_down,    nullptr, ff_out_shape, "[n_ff, n_embd]",                  Mat, Req};
// The q/k/v biases: optional in llama, required in qwen2.
constexpr TensorSpec q_bias(Need n) { return {"blk.{}.attn_q.bias", &L::attn_q_bias, nullptr, q_vec,  "[n_heads*head_dim]",    Vec, n}; }
constexpr TensorSpec k_bias(Need n) { return {"blk.{}.attn_k.bias", &L::attn_k_bias, nullptr, kv_vec, "[n_kv_heads*head_dim]", Vec, n}; }
constexpr TensorSpec v_bias(Need n) { return {"blk.{}.attn_v.bias", &L::attn_v_bias, nullptr, kv_vec, "[n_kv_heads*head_dim]", Vec, n}; }

constexpr std::array kLlama = {
    kEmbd, kOutNorm, kOutTied,
    TensorSpec{"rope_freqs.weight", nullptr, &M::rope_freqs, rope_half, "[rope_dim/2]", Vec, Opt},
    kAttnNorm, kQ, kK, kV,
    // Some llama-architecture conversions (e.g. of models trained with QKV bias) carry them; the engines add them.
    q_bias(Opt), k_bias(Opt), v_bias(Opt),
    kO, kFfnNorm, kGate, kUp, kDown,
};

constexpr std::array kQwen2 = {
    kEmbd, kOutNorm, kOutTied,
    kAttnNorm, kQ, kK, kV,
    q_bias(Req), k_bias(Req), v_bias(Req),
    kO, kFfnNorm, kGate, kUp, kDown,
};

// phi3: llama.cpp's converter writes the fused QKV and the fused gate+up; group 1 also accepts separate Q/K/V and
// group 2 separate gate/up, which other converters write. The variant listed first wins when both are present.
constexpr std::array kPhi3 = {
    kEmbd, kOutNorm, kOutReq,
    TensorSpec{"rope_factors_long.weight",  nullptr, &M::rope_factors_long,  rope_half, "[rope_dim/2]", Vec, Opt},
    TensorSpec{"rope_factors_short.weight", nullptr, &M::rope_factors_short, rope_half, "[rope_dim/2]", Vec, Opt},
    kAttnNorm,
    TensorSpec{"blk.{}.attn_qkv.weight", &L::attn_qkv, nullptr, qkv_shape, "[n_embd, (n_heads + 2*n_kv_heads)*head_dim]", Mat, Req, 1, 0},
    TensorSpec{"blk.{}.attn_q.weight",   &L::attn_q,   nullptr, q_shape,   "[n_embd, n_heads*head_dim]",                  Mat, Req, 1, 1},
    TensorSpec{"blk.{}.attn_k.weight",   &L::attn_k,   nullptr, kv_shape,  "[n_embd, n_kv_heads*head_dim]",               Mat, Req, 1, 1},
    TensorSpec{"blk.{}.attn_v.weight",   &L::attn_v,   nullptr, kv_shape,  "[n_embd, n_kv_heads*head_dim]",               Mat, Req, 1, 1},
    kO, kFfnNorm,
    TensorSpec{"blk.{}.ffn_gate.weight", &L::ffn_gate, nullptr, ff_in_shape,  "[n_embd, n_ff]",   Mat, Req, 2, 0},
    TensorSpec{"blk.{}.ffn_up.weight",   &L::ffn_up,   nullptr, ff_in_shape,  "[n_embd, n_ff]",   Mat, Req, 2, 0},
    TensorSpec{"blk.{}.ffn_up.weight",   &L::ffn_up,   nullptr, ff_in2_shape, "[n_embd, 2*n_ff]", Mat, Req, 2, 1},
    kDown,
};

// qwen3: llama's layer with NeoX RoPE, no QKV bias, and a per-head RMSNorm of q and k (one weight vector of head_dim
// values shared by all heads) between the projection and RoPE. head_dim comes from qwen3.attention.key_length (128
// for every published size), so n_heads * head_dim may differ from n_embd (Qwen3-0.6B: 16 * 128 = 2048 vs 1024).
constexpr std::array kQwen3 = {
    kEmbd, kOutNorm, kOutTied,
    kAttnNorm, kQ, kK, kV,
    TensorSpec{"blk.{}.attn_q_norm.weight", &L::attn_q_norm, nullptr, head_vec, "[head_dim]", Vec, Req},
    TensorSpec{"blk.{}.attn_k_norm.weight", &L::attn_k_norm, nullptr, head_vec, "[head_dim]", Vec, Req},
    kO, kFfnNorm, kGate, kUp, kDown,
};

constexpr std::array kArchs = {
    ArchDescription{Arch::Llama, "llama", RopeLayout::Interleaved, kLlama},
    ArchDescription{Arch::Qwen2, "qwen2", RopeLayout::NeoX, kQwen2},
    ArchDescription{Arch::Phi3, "phi3", RopeLayout::NeoX, kPhi3},
    ArchDescription{Arch::Qwen3, "qwen3", RopeLayout::NeoX, kQwen3},
};
// clang-format on

}  // namespace

std::span<const gguf::TensorType> accepted_types(TypeClass c) {
    if (c == TypeClass::Vector) return kVectorTypes;
    return kMatrixTypes;
}

bool type_accepted(TypeClass c, gguf::TensorType t) {
    for (auto a : accepted_types(c)) {
        if (a == t) return true;
    }
    return false;
}

std::string accepted_types_list(TypeClass c) {
    return join(accepted_types(c), ", ", [](gguf::TensorType t) { return gguf::type_name(t); });
}

std::span<const ArchDescription> architectures() { return kArchs; }

const ArchDescription* find_arch(std::string_view name) {
    for (const auto& a : kArchs) {
        if (a.name == name) return &a;
    }
    return nullptr;
}

const ArchDescription& arch_description(Arch arch) {
    for (const auto& a : kArchs) {
        if (a.arch == arch) return a;
    }
    throw Error(ErrorCode::Internal, fmt::format("no description for architecture id {}", static_cast<int>(arch)));
}

std::string supported_architectures() {
    return join(kArchs, ", ", [](const auto& a) { return a.name; });
}

std::string tensor_name(const TensorSpec& spec, uint32_t layer) {
    const auto pos = spec.name.find("{}");
    if (pos == std::string_view::npos) return std::string(spec.name);
    std::string out(spec.name.substr(0, pos));
    out += std::to_string(layer);
    out += spec.name.substr(pos + 2);
    return out;
}

}  // namespace orcd::model
