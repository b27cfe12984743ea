// The model recipe: what each architecture's tiny model asks of a backend, and the check that refuses a backend
// lacking a feature, naming it.
#include <gtest/gtest.h>

#include <string>
#include <unistd.h>

#include "common/error.h"
#include "model/model.h"
#include "model/recipe.h"
#include "synth/synth.h"

namespace orcd::model {
namespace {

namespace fs = std::filesystem;

Model tiny(const std::string& preset) {
    // One name per process: ctest runs the tests of this file in parallel processes.
    const fs::path path =
        fs::temp_directory_path() / ("orcd-recipe-test-" + std::to_string(getpid()) + "-" + preset + ".gguf");
    synth::Options o;
    o.preset = preset;
    o.type = synth::FileType::F32;
    o.n_vocab = 64;
    synth::write_model(o, path);
    Model m = open_model(path);
    fs::remove(path);  // the mapping stays valid after the name is gone
    return m;
}

TEST(Recipe, EachArchitectureStatesItsLayer) {
    const Model qwen2 = tiny("qwen2.5-tiny");
    EXPECT_TRUE(qwen2.recipe.qkv_bias);
    EXPECT_FALSE(qwen2.recipe.qk_norm);
    EXPECT_FALSE(qwen2.recipe.fused_qkv);
    EXPECT_TRUE(qwen2.recipe.tied_head);
    EXPECT_EQ(qwen2.recipe.rope_layout, RopeLayout::NeoX);
    EXPECT_EQ(qwen2.recipe.sliding_window, 0u);

    const Model qwen3 = tiny("qwen3-tiny");
    EXPECT_TRUE(qwen3.recipe.qk_norm);
    EXPECT_FALSE(qwen3.recipe.qkv_bias);
    EXPECT_EQ(qwen3.recipe.head_dim, 128u);  // qwen3.attention.key_length, not n_embd / n_heads = 64
    EXPECT_EQ(qwen3.recipe.n_heads * qwen3.recipe.head_dim, 512u);
    EXPECT_EQ(qwen3.config.n_embd, 256u);
    EXPECT_EQ(qwen3.recipe.rope_layout, RopeLayout::NeoX);
    ASSERT_EQ(qwen3.weights.layers.size(), 2u);
    EXPECT_TRUE(qwen3.weights.layers[1].attn_q_norm.valid());
    EXPECT_EQ(qwen3.weights[qwen3.weights.layers[1].attn_k_norm].name, "blk.1.attn_k_norm.weight");

    const Model phi3 = tiny("phi3-tiny");
    EXPECT_TRUE(phi3.recipe.fused_qkv);
    EXPECT_TRUE(phi3.recipe.fused_gate_up);
    EXPECT_FALSE(phi3.recipe.tied_head);
    EXPECT_EQ(phi3.recipe.sliding_window, 16u);
    EXPECT_TRUE(phi3.recipe.features().has(Feature::SlidingWindow));

    const Model llama = tiny("llama-tiny");
    EXPECT_EQ(llama.recipe.rope_layout, RopeLayout::Interleaved);
    EXPECT_EQ(llama.recipe.features().names(), "interleaved RoPE");
}

TEST(Recipe, ABackendLackingAFeatureIsRefusedByName) {
    const Model phi3 = tiny("phi3-tiny");
    EXPECT_NO_THROW(check_backend_features(phi3.recipe, "phi3", "test", FeatureSet::all()));
    try {
        check_backend_features(phi3.recipe, "phi3", "test", FeatureSet::all().remove(Feature::SlidingWindow));
        FAIL() << "expected UnsupportedArchitecture";
    } catch (const Error& e) {
        EXPECT_EQ(e.code(), ErrorCode::UnsupportedArchitecture);
        const std::string msg = e.what();
        EXPECT_NE(msg.find("the test backend"), std::string::npos) << msg;
        EXPECT_NE(msg.find("does not implement sliding-window attention"), std::string::npos) << msg;
    }
    const Model qwen3 = tiny("qwen3-tiny");
    try {
        check_backend_features(qwen3.recipe, "qwen3", "test",
                               FeatureSet{Feature::RopeNeox, Feature::TiedHead, Feature::QkvBias});
        FAIL() << "expected UnsupportedArchitecture";
    } catch (const Error& e) {
        EXPECT_NE(std::string(e.what()).find("does not implement q/k RMSNorm"), std::string::npos) << e.what();
    }
    // A feature the recipe does not need may be missing.
    EXPECT_NO_THROW(
        check_backend_features(qwen3.recipe, "qwen3", "test", FeatureSet::all().remove(Feature::SlidingWindow)));
}

TEST(Recipe, TheWindowConventionIsTheLastWPositions) {
    // Hand-checked cases of "a query at p attends j when j <= p and p - j < w".
    EXPECT_TRUE(attends(20, 5, 16));
    EXPECT_FALSE(attends(21, 5, 16));
    EXPECT_FALSE(attends(5, 6, 16));
    EXPECT_TRUE(attends(1000, 0, 0));
    EXPECT_EQ(first_attended(15, 16), 0);
    EXPECT_EQ(first_attended(16, 16), 1);
    EXPECT_EQ(first_attended(99, 16), 84);
    EXPECT_EQ(first_attended(99, 0), 0);
}

}  // namespace
}  // namespace orcd::model
