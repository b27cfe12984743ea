// Hyperparameters come from the file, per architecture, with llama.cpp's defaults only for its optional keys.
#include <gtest/gtest.h>

#include "common/error.h"
#include "gguf/file.h"
#include "model/config.h"
#include "test_models.h"

namespace orcd::model {
namespace {

using testing::TinyModel;

gguf::File parse(const TinyModel& m, std::vector<std::byte>& storage) {
    storage = testing::tiny_writer(m).to_bytes();
    return gguf::File::parse(storage, "tiny-" + m.arch + ".gguf");
}

Config config_of(const TinyModel& m) {
    std::vector<std::byte> bytes;
    return load_config(parse(m, bytes));
}

// Runs load_config and returns the error it throws (fails the test when it does not throw).
Error config_error(const TinyModel& m) {
    try {
        (void)config_of(m);
    } catch (const Error& e) {
        return e;
    }
    ADD_FAILURE() << "load_config did not throw";
    return Error(ErrorCode::Ok, "");
}

TEST(Config, LlamaValuesComeFromTheFile) {
    TinyModel m = testing::tiny_llama();
    m.n_layers = 3;
    m.n_embd = 96;
    m.n_heads = 6;
    m.n_kv_heads = 3;
    m.n_ff = 200;
    m.n_vocab = 123;
    m.context_length = 777;
    m.rope_theta = 500000.0f;
    const Config c = config_of(m);
    EXPECT_EQ(c.arch, Arch::Llama);
    EXPECT_EQ(c.arch_name, "llama");
    EXPECT_EQ(c.model_name, "tiny-llama");
    EXPECT_EQ(c.n_layers, 3u);
    EXPECT_EQ(c.n_embd, 96u);
    EXPECT_EQ(c.n_ff, 200u);
    EXPECT_EQ(c.n_heads, 6u);
    EXPECT_EQ(c.n_kv_heads, 3u);
    EXPECT_EQ(c.head_dim, 16u);
    EXPECT_EQ(c.rope_dim, 16u);
    EXPECT_EQ(c.n_vocab, 123u);  // from token_embd's rows
    EXPECT_EQ(c.context_length, 777u);
    EXPECT_FLOAT_EQ(c.rope_theta, 500000.0f);
    EXPECT_FLOAT_EQ(c.rms_eps, 1e-6f);
    EXPECT_EQ(c.rope_layout, RopeLayout::Interleaved);
    EXPECT_EQ(c.q_dim(), 96u);
    EXPECT_EQ(c.kv_dim(), 48u);
    EXPECT_EQ(c.gqa_group(), 2u);
}

TEST(Config, Qwen2UsesNeoxRopeAndItsOwnTheta) {
    const Config c = config_of(testing::tiny_qwen2());
    EXPECT_EQ(c.arch, Arch::Qwen2);
    EXPECT_EQ(c.rope_layout, RopeLayout::NeoX);
    EXPECT_FLOAT_EQ(c.rope_theta, 1000000.0f);  // not the 10,000 default
    EXPECT_EQ(c.n_kv_heads, 2u);
    EXPECT_EQ(c.n_heads, 8u);
}

TEST(Config, Phi3UsesNeoxRope) {
    const Config c = config_of(testing::tiny_phi3());
    EXPECT_EQ(c.arch, Arch::Phi3);
    EXPECT_EQ(c.rope_layout, RopeLayout::NeoX);
    EXPECT_EQ(c.n_kv_heads, c.n_heads);
}

TEST(Config, OptionalKeysTakeLlamaCppDefaults) {
    TinyModel m = testing::tiny_llama();
    m.drop_keys = {"llama.attention.head_count_kv", "llama.rope.dimension_count", "llama.rope.freq_base"};
    m.n_kv_heads = m.n_heads;  // the tensors must then be MHA-shaped; only the config is read here
    const Config c = config_of(m);
    EXPECT_EQ(c.n_kv_heads, c.n_heads);
    EXPECT_EQ(c.rope_dim, c.head_dim);
    EXPECT_FLOAT_EQ(c.rope_theta, 10000.0f);
}

TEST(Config, UnsupportedArchitectureNamesItAndTheSupportedList) {
    TinyModel m = testing::tiny_llama();
    m.arch = "gemma2";
    const Error e = config_error(m);
    EXPECT_EQ(e.code(), ErrorCode::UnsupportedArchitecture);
    EXPECT_NE(std::string(e.what()).find("'gemma2'"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("llama, qwen2, phi3"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("tiny-gemma2.gguf"), std::string::npos) << e.what();
}

TEST(Config, MissingArchitectureKey) {
    TinyModel m = testing::tiny_llama();
    m.drop_keys = {"general.architecture"};
    const Error e = config_error(m);
    EXPECT_EQ(e.code(), ErrorCode::MetadataMissing);
    EXPECT_NE(std::string(e.what()).find("general.architecture"), std::string::npos) << e.what();
}

TEST(Config, MissingRequiredKeysAreNamed) {
    for (const char* key :
         {"qwen2.block_count", "qwen2.embedding_length", "qwen2.feed_forward_length", "qwen2.attention.head_count",
          "qwen2.context_length", "qwen2.attention.layer_norm_rms_epsilon"}) {
        TinyModel m = testing::tiny_qwen2();
        m.drop_keys = {key};
        const Error e = config_error(m);
        EXPECT_EQ(e.code(), ErrorCode::MetadataMissing) << key;
        EXPECT_NE(std::string(e.what()).find(key), std::string::npos) << e.what();
    }
}

TEST(Config, InconsistentValuesAreCorrupt) {
    struct Case {
        const char* key;
        uint32_t value;
        const char* mentions;
    };
    for (const Case& c :
         {Case{"llama.attention.head_count_kv", 3, "head_count_kv = 3"},
          Case{"llama.rope.dimension_count", 17, "dimension_count = 17"},
          Case{"llama.rope.dimension_count", 32, "dimension_count = 32"},
          Case{"llama.block_count", 0, "block_count = 0"}, Case{"llama.attention.head_count", 5, "head_count = 5"}}) {
        TinyModel m = testing::tiny_llama();
        m.override_u32[c.key] = c.value;
        const Error e = config_error(m);
        EXPECT_EQ(e.code(), ErrorCode::CorruptFile) << c.key << "=" << c.value << ": " << e.what();
        EXPECT_NE(std::string(e.what()).find(c.mentions), std::string::npos) << e.what();
    }
}

TEST(Config, MissingEmbeddingIsAMissingTensor) {
    TinyModel m = testing::tiny_llama();
    m.drop = {"token_embd.weight"};
    const Error e = config_error(m);
    EXPECT_EQ(e.code(), ErrorCode::MissingTensor);
    EXPECT_NE(std::string(e.what()).find("token_embd.weight"), std::string::npos);
}

}  // namespace
}  // namespace orcd::model
