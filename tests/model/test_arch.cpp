// The architecture tables against shapes stated independently for the two reference models (Qwen2.5-0.5B-Instruct
// and Phi-3-mini-4k-instruct, as their GGUF conversions list them).
#include <gtest/gtest.h>

#include <map>

#include "model/arch.h"

namespace orcd::model {
namespace {

using Shapes = std::map<std::string, std::vector<uint64_t>>;

Shapes shapes_of(Arch arch, const Config& c, uint8_t variant_of_group1 = 0) {
    Shapes out;
    for (const auto& s : arch_description(arch).tensors) {
        if (s.group != 0 && s.variant != variant_of_group1) continue;
        out[tensor_name(s, 7)] = s.shape(c);
    }
    return out;
}

TEST(Registry, SupportedListAndLookup) {
    EXPECT_EQ(supported_architectures(), "llama, qwen2, phi3, qwen3");
    ASSERT_NE(find_arch("qwen2"), nullptr);
    EXPECT_EQ(find_arch("qwen2")->arch, Arch::Qwen2);
    EXPECT_EQ(find_arch("Qwen2"), nullptr);  // general.architecture is matched exactly, as llama.cpp does
    EXPECT_EQ(find_arch("gemma"), nullptr);
    EXPECT_EQ(arch_description(Arch::Llama).rope_layout, RopeLayout::Interleaved);
    EXPECT_EQ(arch_description(Arch::Qwen2).rope_layout, RopeLayout::NeoX);
    EXPECT_EQ(arch_description(Arch::Phi3).rope_layout, RopeLayout::NeoX);
    EXPECT_EQ(arch_description(Arch::Qwen3).rope_layout, RopeLayout::NeoX);
}

TEST(Registry, Qwen25HalfBillionShapes) {
    Config c;
    c.n_embd = 896;
    c.n_ff = 4864;
    c.n_heads = 14;
    c.n_kv_heads = 2;
    c.head_dim = 64;
    c.n_vocab = 151936;
    c.rope_dim = 64;
    const Shapes s = shapes_of(Arch::Qwen2, c);
    const Shapes want = {
        {"token_embd.weight", {896, 151936}},
        {"output_norm.weight", {896}},
        {"output.weight", {896, 151936}},
        {"blk.7.attn_norm.weight", {896}},
        {"blk.7.attn_q.weight", {896, 896}},
        {"blk.7.attn_k.weight", {896, 128}},
        {"blk.7.attn_v.weight", {896, 128}},
        {"blk.7.attn_q.bias", {896}},
        {"blk.7.attn_k.bias", {128}},
        {"blk.7.attn_v.bias", {128}},
        {"blk.7.attn_output.weight", {896, 896}},
        {"blk.7.ffn_norm.weight", {896}},
        {"blk.7.ffn_gate.weight", {896, 4864}},
        {"blk.7.ffn_up.weight", {896, 4864}},
        {"blk.7.ffn_down.weight", {4864, 896}},
    };
    EXPECT_EQ(s, want);
}

TEST(Registry, Phi3MiniShapes) {
    Config c;
    c.n_embd = 3072;
    c.n_ff = 8192;
    c.n_heads = 32;
    c.n_kv_heads = 32;
    c.head_dim = 96;
    c.n_vocab = 32064;
    c.rope_dim = 96;
    Shapes fused;
    for (const auto& spec : arch_description(Arch::Phi3).tensors) {
        const bool chosen =
            spec.group == 0 || (spec.group == 1 && spec.variant == 0) || (spec.group == 2 && spec.variant == 1);
        if (chosen) fused[tensor_name(spec, 0)] = spec.shape(c);
    }
    EXPECT_EQ(fused.at("blk.0.attn_qkv.weight"), (std::vector<uint64_t>{3072, 9216}));
    EXPECT_EQ(fused.at("blk.0.ffn_up.weight"), (std::vector<uint64_t>{3072, 16384}));
    EXPECT_EQ(fused.at("blk.0.ffn_down.weight"), (std::vector<uint64_t>{8192, 3072}));
    EXPECT_EQ(fused.at("blk.0.attn_output.weight"), (std::vector<uint64_t>{3072, 3072}));
    EXPECT_EQ(fused.at("output.weight"), (std::vector<uint64_t>{3072, 32064}));
    EXPECT_EQ(fused.at("rope_factors_long.weight"), (std::vector<uint64_t>{48}));
    EXPECT_FALSE(fused.contains("blk.0.ffn_gate.weight"));
    EXPECT_FALSE(fused.contains("blk.0.attn_q.weight"));
}

TEST(Registry, EverySpecIsWellFormed) {
    for (const auto& a : architectures()) {
        for (const auto& s : a.tensors) {
            SCOPED_TRACE(std::string(a.name) + " " + std::string(s.name));
            EXPECT_NE(s.shape, nullptr);
            EXPECT_FALSE(s.shape_expr.empty());
            EXPECT_NE(s.layer_slot == nullptr, s.model_slot == nullptr);  // exactly one slot
            EXPECT_EQ(s.per_layer(), s.name.find("{}") != std::string_view::npos);
            EXPECT_TRUE(s.group == 0 || s.per_layer());  // alternatives are per layer
            if (s.tie_to) {
                EXPECT_EQ(s.need, Need::Optional);
            }
        }
    }
}

TEST(Registry, AcceptedTypes) {
    EXPECT_TRUE(type_accepted(TypeClass::Matrix, gguf::TensorType::Q4_K));
    EXPECT_TRUE(type_accepted(TypeClass::Matrix, gguf::TensorType::Q5_0));
    EXPECT_FALSE(type_accepted(TypeClass::Matrix, gguf::TensorType::Q8_K));  // an activation format, not storage
    EXPECT_FALSE(type_accepted(TypeClass::Matrix, gguf::TensorType::Q8_1));
    EXPECT_TRUE(type_accepted(TypeClass::Vector, gguf::TensorType::F32));
    EXPECT_FALSE(type_accepted(TypeClass::Vector, gguf::TensorType::F16));
}

}  // namespace
}  // namespace orcd::model
