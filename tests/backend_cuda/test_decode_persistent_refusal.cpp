// What the persistent decode step (decode_persistent.h) cannot run, named: a host-side check over the model's shapes,
// types and recipe, so these tests need no device (the gpu test test_decode_persistent.cpp checks that the backend
// raises them).
#include <gtest/gtest.h>

#include <string>

#include "../engine/tiny_models.h"
#include "backend/cuda/decode_persistent.h"
#include "model/model.h"

namespace orcd::backend::cuda {
namespace {

// The CUDA model's shape of m (types and row lengths; no weights on any device).
CudaModel shape_of(const model::Model& m) {
    CudaModel cm;
    cm.config = &m.config;
    cm.recipe = &m.recipe;
    auto mat = [&](model::TensorId id) {
        const model::TensorRef& t = m.weights[id];
        return Matmul{t.type, nullptr, static_cast<int64_t>(t.rows()), static_cast<int64_t>(t.row_length()), 0};
    };
    cm.output = mat(m.weights.output);
    for (const model::LayerWeights& lw : m.weights.layers) {
        Layer l;
        l.qkv = lw.fused_qkv() ? std::vector{mat(lw.attn_qkv)}
                               : std::vector{mat(lw.attn_q), mat(lw.attn_k), mat(lw.attn_v)};
        l.o = mat(lw.attn_output);
        l.gate_up = lw.fused_gate_up() ? std::vector{mat(lw.ffn_up)} : std::vector{mat(lw.ffn_gate), mat(lw.ffn_up)};
        l.down = mat(lw.ffn_down);
        cm.layers.push_back(l);
    }
    return cm;
}

TEST(PersistentDecodeRefusal, RunsTheQuantizedLlamaFamily) {
    for (const char* preset : {"qwen2.5-tiny", "llama-tiny", "phi3-tiny"}) {
        const model::Model m = model::open_model(test::tiny_model(preset, synth::FileType::Q4_K_M));
        EXPECT_EQ(persistent_decode_refusal(shape_of(m), Activations::Int8), "") << preset;
    }
}

TEST(PersistentDecodeRefusal, NamesWhatItLacks) {
    const model::Model q4 = model::open_model(test::tiny_model("qwen2.5-tiny", synth::FileType::Q4_K_M));
    EXPECT_EQ(persistent_decode_refusal(shape_of(q4), Activations::F32),
              "the persistent decode step runs int8 activations only (found f32)");

    const model::Model qwen3 = model::open_model(test::tiny_model("qwen3-tiny", synth::FileType::Q8_0));
    EXPECT_EQ(persistent_decode_refusal(shape_of(qwen3), Activations::Int8),
              "the persistent decode step does not implement q/k RMSNorm (qwen3)");

    const model::Model f32 = model::open_model(test::tiny_model("phi3-tiny", synth::FileType::F32));
    EXPECT_EQ(persistent_decode_refusal(shape_of(f32), Activations::Int8),
              "the persistent decode step has no int8 matvec for the output matrix (F32, rows of 256)");

    CudaModel one_f16 = shape_of(q4);
    one_f16.layers[1].down.type = gguf::TensorType::F16;
    EXPECT_EQ(persistent_decode_refusal(one_f16, Activations::Int8),
              "the persistent decode step has no int8 matvec for the layer 1 feed-forward down matrix (F16, rows of "
              "512)");

    model::Config narrow_heads = q4.config;
    narrow_heads.head_dim = 48;
    CudaModel narrow = shape_of(q4);
    narrow.config = &narrow_heads;
    EXPECT_EQ(persistent_decode_refusal(narrow, Activations::Int8),
              "the persistent decode step needs a head dimension that is a multiple of 32 (found 48)");
}

}  // namespace
}  // namespace orcd::backend::cuda
