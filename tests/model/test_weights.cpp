// Tensor resolution against the architecture descriptions: every slot filled from the right tensor, alternatives,
// ties, and a precise error for every way a file can disagree with its architecture.
#include <gtest/gtest.h>

#include "common/error.h"
#include "gguf/file.h"
#include "model/arch.h"
#include "model/model.h"
#include "test_models.h"

namespace orcd::model {
namespace {

using gguf::TensorType;
using testing::TinyModel;

struct Parsed {
    std::vector<std::byte> bytes;
    std::shared_ptr<const gguf::File> file;
    Model model;
};

std::unique_ptr<Parsed> parse(const TinyModel& m) {
    auto p = std::make_unique<Parsed>();
    p->bytes = testing::tiny_writer(m).to_bytes();
    p->file = std::make_shared<const gguf::File>(gguf::File::parse(p->bytes, "tiny-" + m.arch + ".gguf"));
    p->model = describe_model(p->file);
    return p;
}

Error resolve_error(const TinyModel& m) {
    try {
        (void)parse(m);
    } catch (const Error& e) {
        return e;
    }
    ADD_FAILURE() << "resolution did not throw";
    return Error(ErrorCode::Ok, "");
}

const std::string& name_of(const Model& m, TensorId id) { return m.weights[id].name; }

void expect_contains(const Error& e, const std::string& s) {
    EXPECT_NE(std::string(e.what()).find(s), std::string::npos) << "message: " << e.what() << "\nmissing: " << s;
}

TEST(Weights, LlamaSlotsResolveToTheirTensors) {
    auto p = parse(testing::tiny_llama());
    const Model& m = p->model;
    ASSERT_EQ(m.weights.layers.size(), 2u);
    EXPECT_EQ(name_of(m, m.weights.token_embd), "token_embd.weight");
    EXPECT_EQ(name_of(m, m.weights.output_norm), "output_norm.weight");
    EXPECT_EQ(name_of(m, m.weights.output), "output.weight");
    EXPECT_FALSE(m.weights.output_tied);
    EXPECT_FALSE(m.weights.rope_freqs.valid());
    for (uint32_t l = 0; l < 2; ++l) {
        const LayerWeights& L = m.weights.layers[l];
        const std::string p = "blk." + std::to_string(l) + ".";
        EXPECT_EQ(name_of(m, L.attn_norm), p + "attn_norm.weight");
        EXPECT_EQ(name_of(m, L.attn_q), p + "attn_q.weight");
        EXPECT_EQ(name_of(m, L.attn_k), p + "attn_k.weight");
        EXPECT_EQ(name_of(m, L.attn_v), p + "attn_v.weight");
        EXPECT_EQ(name_of(m, L.attn_output), p + "attn_output.weight");
        EXPECT_EQ(name_of(m, L.ffn_norm), p + "ffn_norm.weight");
        EXPECT_EQ(name_of(m, L.ffn_gate), p + "ffn_gate.weight");
        EXPECT_EQ(name_of(m, L.ffn_up), p + "ffn_up.weight");
        EXPECT_EQ(name_of(m, L.ffn_down), p + "ffn_down.weight");
        EXPECT_FALSE(L.attn_qkv.valid());
        EXPECT_FALSE(L.attn_q_bias.valid());
        EXPECT_FALSE(L.fused_qkv());
        EXPECT_FALSE(L.fused_gate_up());
        EXPECT_EQ(m.weights[L.attn_q].layer, static_cast<int32_t>(l));
    }
    EXPECT_EQ(m.weights[m.weights.token_embd].layer, -1);
    EXPECT_EQ(m.weights.tensors.size(), 3u + 2 * 9);
    EXPECT_TRUE(m.weights.ignored.empty());
}

TEST(Weights, TensorsAreInFileOrderAndViewTheMapping) {
    TinyModel t = testing::tiny_llama();
    t.blocks_first = true;
    auto p = parse(t);
    const auto& ts = p->model.weights.tensors;
    for (size_t i = 1; i < ts.size(); ++i) EXPECT_LT(ts[i - 1].file_offset, ts[i].file_offset);
    EXPECT_EQ(ts.front().name, "blk.0.attn_norm.weight");
    for (const auto& r : ts) {
        const gguf::TensorInfo* info = p->file->find_tensor(r.name);
        ASSERT_NE(info, nullptr);
        EXPECT_EQ(r.data.data(), p->bytes.data() + info->file_offset);
        EXPECT_EQ(r.data.size(), info->n_bytes);
        EXPECT_EQ(r.n_bytes, info->n_bytes);
        EXPECT_EQ(r.type, info->type);
    }
}

TEST(Weights, Qwen2TiesOutputAndHasBiases) {
    auto p = parse(testing::tiny_qwen2());
    const Model& m = p->model;
    EXPECT_TRUE(m.weights.output_tied);
    EXPECT_EQ(m.weights.output, m.weights.token_embd);
    for (const auto& L : m.weights.layers) {
        ASSERT_TRUE(L.attn_q_bias && L.attn_k_bias && L.attn_v_bias);
        EXPECT_EQ(m.weights[L.attn_q_bias].shape, (std::vector<uint64_t>{m.config.q_dim()}));
        EXPECT_EQ(m.weights[L.attn_k_bias].shape, (std::vector<uint64_t>{m.config.kv_dim()}));
    }
    // The tied tensor is stored (and later transferred) once.
    EXPECT_EQ(m.weights.tensors.size(), 2u + 2 * 12);
}

TEST(Weights, Qwen2BiasIsRequired) {
    TinyModel t = testing::tiny_qwen2();
    t.drop = {"blk.1.attn_k.bias"};
    const Error e = resolve_error(t);
    EXPECT_EQ(e.code(), ErrorCode::MissingTensor);
    expect_contains(e, "missing tensor blk.1.attn_k.bias");
    expect_contains(e, "qwen2");
}

TEST(Weights, Phi3FusedFormsAreExplicit) {
    auto p = parse(testing::tiny_phi3());
    const Model& m = p->model;
    ASSERT_EQ(m.weights.layers.size(), 3u);
    for (const auto& L : m.weights.layers) {
        EXPECT_TRUE(L.fused_qkv());
        EXPECT_TRUE(L.fused_gate_up());
        EXPECT_FALSE(L.attn_q || L.attn_k || L.attn_v || L.ffn_gate);
        // rows: q_dim + 2 kv_dim; ffn_up: gate rows then up rows
        EXPECT_EQ(m.weights[L.attn_qkv].shape, (std::vector<uint64_t>{64, 64 + 2 * 64}));
        EXPECT_EQ(m.weights[L.ffn_up].shape, (std::vector<uint64_t>{64, 2 * 160}));
    }
    EXPECT_FALSE(m.weights.output_tied);
}

TEST(Weights, Phi3SeparateFormsAreAccepted) {
    TinyModel t = testing::tiny_phi3();
    t.fused_qkv = false;
    t.fused_gate_up = false;
    auto p = parse(t);
    for (const auto& L : p->model.weights.layers) {
        EXPECT_FALSE(L.fused_qkv());
        EXPECT_FALSE(L.fused_gate_up());
        EXPECT_TRUE(L.attn_q && L.attn_k && L.attn_v && L.ffn_gate && L.ffn_up);
        EXPECT_EQ(p->model.weights[L.ffn_up].shape, (std::vector<uint64_t>{64, 160}));
    }
}

TEST(Weights, Phi3WithNeitherFormNamesBoth) {
    TinyModel t = testing::tiny_phi3();
    t.drop = {"blk.2.attn_qkv.weight"};
    const Error e = resolve_error(t);
    EXPECT_EQ(e.code(), ErrorCode::MissingTensor);
    expect_contains(e, "blk.2.attn_qkv.weight or blk.2.attn_q.weight + blk.2.attn_k.weight + blk.2.attn_v.weight");
}

TEST(Weights, Phi3OutputIsRequired) {
    TinyModel t = testing::tiny_phi3();
    t.write_output = false;
    const Error e = resolve_error(t);
    EXPECT_EQ(e.code(), ErrorCode::MissingTensor);
    expect_contains(e, "missing tensor output.weight");
}

TEST(Weights, Phi3UnfusedUpWithoutGateIsAShapeError) {
    // A phi3 file with a single-width ffn_up and no ffn_gate: the fused form is chosen and its shape is wrong.
    TinyModel t = testing::tiny_phi3();
    t.reshape["blk.0.ffn_up.weight"] = {64, 160};
    const Error e = resolve_error(t);
    EXPECT_EQ(e.code(), ErrorCode::TensorShape);
    expect_contains(e, "blk.0.ffn_up.weight: expected shape [n_embd, 2*n_ff] = [64, 320], found [64, 160]");
}

TEST(Weights, MissingTensorIsNamed) {
    TinyModel t = testing::tiny_llama();
    t.drop = {"blk.1.ffn_down.weight"};
    const Error e = resolve_error(t);
    EXPECT_EQ(e.code(), ErrorCode::MissingTensor);
    expect_contains(e, "tiny-llama.gguf: missing tensor blk.1.ffn_down.weight (required by architecture llama)");
}

TEST(Weights, WrongShapeNamesTensorExpectedAndFound) {
    TinyModel t = testing::tiny_llama();
    t.reshape["blk.0.attn_k.weight"] = {64, 64};  // MHA-shaped in a GQA model
    const Error e = resolve_error(t);
    EXPECT_EQ(e.code(), ErrorCode::TensorShape);
    expect_contains(e,
                    "tensor blk.0.attn_k.weight: expected shape [n_embd, n_kv_heads*head_dim] = [64, 32], found "
                    "[64, 64]");
}

TEST(Weights, TrailingUnitDimensionsAreTheSameShape) {
    TinyModel t = testing::tiny_llama();
    t.reshape["output_norm.weight"] = {64, 1};
    auto p = parse(t);
    EXPECT_TRUE(p->model.weights.output_norm.valid());
}

TEST(Weights, UnsupportedMatrixTypeNamesTensorAndAcceptedTypes) {
    TinyModel t = testing::tiny_llama();
    t.retype["blk.1.attn_v.weight"] = TensorType::Q8_1;  // a valid GGUF type that no backend multiplies
    const Error e = resolve_error(t);
    EXPECT_EQ(e.code(), ErrorCode::UnsupportedTensorType);
    expect_contains(e, "tensor blk.1.attn_v.weight has type Q8_1");
    expect_contains(e, "accepted: F32, F16, BF16, Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q4_K, Q5_K, Q6_K");
}

TEST(Weights, NormMustBeF32) {
    TinyModel t = testing::tiny_llama();
    t.retype["blk.0.ffn_norm.weight"] = TensorType::F16;
    const Error e = resolve_error(t);
    EXPECT_EQ(e.code(), ErrorCode::UnsupportedTensorType);
    expect_contains(e, "blk.0.ffn_norm.weight has type F16");
    expect_contains(e, "accepted: F32");
}

TEST(Weights, QuantizedTypesResolve) {
    for (TensorType type : {TensorType::F16, TensorType::BF16, TensorType::Q4_0, TensorType::Q5_0, TensorType::Q8_0,
                            TensorType::Q4_K, TensorType::Q5_K, TensorType::Q6_K}) {
        TinyModel t = testing::tiny_qwen2();
        t.n_embd = 256;  // K-quants need rows that are multiples of 256
        t.n_ff = 512;
        t.matrix_type = type;
        auto p = parse(t);
        EXPECT_EQ(p->model.weights[p->model.weights.layers[0].attn_q].type, type) << gguf::type_name(type);
    }
}

TEST(Weights, UnknownTensorsAreListedAsIgnored) {
    TinyModel t = testing::tiny_llama();
    t.extra = {"blk.0.attn_sinks.weight"};
    auto p = parse(t);
    ASSERT_EQ(p->model.weights.ignored.size(), 1u);
    EXPECT_EQ(p->model.weights.ignored[0], "blk.0.attn_sinks.weight");
}

TEST(Weights, OptionalLlamaBiasesAndRopeFreqsResolveWhenPresent) {
    TinyModel t = testing::tiny_llama();
    t.extra = {};
    auto p0 = parse(t);
    EXPECT_FALSE(p0->model.weights.layers[0].attn_q_bias.valid());
    // rope_freqs is [rope_dim/2]: written through `reshape` of an extra tensor
    t.extra = {"rope_freqs.weight"};
    t.reshape["rope_freqs.weight"] = {8};
    auto p1 = parse(t);
    ASSERT_TRUE(p1->model.weights.rope_freqs.valid());
    EXPECT_EQ(p1->model.weights[p1->model.weights.rope_freqs].shape, (std::vector<uint64_t>{8}));
}

// The descriptions against independently stated shapes of the two reference models.

}  // namespace
}  // namespace orcd::model
