#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <unistd.h>

#include "gguf/file.h"
#include "gguf/file_type.h"
#include "shared_files.h"
#include "synth/synth.h"

namespace orcd::synth {
namespace {

namespace fs = std::filesystem;
using gguf::TensorType;
const fs::path kVocab = test::shared_path("models/vocab");

fs::path temp(const std::string& name) {
    return fs::temp_directory_path() / ("orcd_synth_" + std::to_string(::getpid()) + "_" + name);
}

std::string slurp(const fs::path& p) {
    std::ifstream in(p, std::ios::binary);
    return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

// Bytes per block and elements per block, from the published block layouts (written out here, not taken from the
// library): Q8_0 = f16 d + 32 int8; Q5_0 = f16 d + 4 B high bits + 16 B nibbles; Q5_1 adds an f16 m;
// Q4_K = 2 f16 + 12 B scales + 128 B nibbles; Q5_K adds 32 B high bits; Q6_K = 128 B low + 64 B high + 16 scales + f16.
uint64_t expected_bytes(TensorType t, uint64_t n) {
    switch (t) {
        case TensorType::F32: return n * 4;
        case TensorType::F16:
        case TensorType::BF16: return n * 2;
        case TensorType::Q8_0: return n / 32 * 34;
        case TensorType::Q5_0: return n / 32 * 22;
        case TensorType::Q5_1: return n / 32 * 24;
        case TensorType::Q4_K: return n / 256 * 144;
        case TensorType::Q5_K: return n / 256 * 176;
        case TensorType::Q6_K: return n / 256 * 210;
        default: ADD_FAILURE() << "unexpected type"; return 0;
    }
}

TEST(SynthTypeRule, UseMoreBitsMatchesLlamaCppLayers) {
    // llama.cpp: i < n/8 || i >= 7n/8 || (i - n/8) % 3 == 2. Listed by hand for 24 and 32 layers.
    std::vector<uint32_t> got24, got32;
    for (uint32_t i = 0; i < 24; ++i)
        if (use_more_bits(i, 24)) got24.push_back(i);
    for (uint32_t i = 0; i < 32; ++i)
        if (use_more_bits(i, 32)) got32.push_back(i);
    EXPECT_EQ(got24, (std::vector<uint32_t>{0, 1, 2, 5, 8, 11, 14, 17, 20, 21, 22, 23}));
    EXPECT_EQ(got32, (std::vector<uint32_t>{0, 1, 2, 3, 6, 9, 12, 15, 18, 21, 24, 27, 28, 29, 30, 31}));
}

TEST(SynthTypeRule, Q4KMChoicesAndFallbacks) {
    const auto q = FileType::Q4_K_M;
    EXPECT_EQ(choose_type(q, Role::Output, 3072, false, 0, 32), TensorType::Q6_K);
    EXPECT_EQ(choose_type(q, Role::TokenEmbedding, 3072, false, 0, 32), TensorType::Q4_K);
    EXPECT_EQ(choose_type(q, Role::TokenEmbedding, 896, true, 0, 24), TensorType::Q8_0);  // tied: it is the output
    EXPECT_EQ(choose_type(q, Role::AttnQkv, 3072, false, 5, 32), TensorType::Q5_K);
    EXPECT_EQ(choose_type(q, Role::AttnV, 896, false, 0, 24), TensorType::Q8_0);  // Q6_K falls back
    EXPECT_EQ(choose_type(q, Role::AttnV, 896, false, 3, 24), TensorType::Q5_0);  // Q4_K falls back
    EXPECT_EQ(choose_type(q, Role::FfnDown, 4864, false, 23, 24), TensorType::Q6_K);
    EXPECT_EQ(choose_type(q, Role::FfnDown, 4864, false, 4, 24), TensorType::Q4_K);
    EXPECT_EQ(choose_type(q, Role::FfnUp, 896, false, 4, 24), TensorType::Q5_0);
    EXPECT_EQ(choose_type(q, Role::Norm, 896, false, 4, 24), TensorType::F32);
    EXPECT_EQ(choose_type(q, Role::Bias, 896, false, 4, 24), TensorType::F32);
    EXPECT_EQ(choose_type(FileType::Q8_0, Role::FfnUp, 896, false, 4, 24), TensorType::Q8_0);
    EXPECT_EQ(choose_type(FileType::F16, Role::Output, 896, false, 4, 24), TensorType::F16);
}

TEST(Synth, Phi3MiniQ4KMTypeMixAndSize) {
    // 2.23 GiB measured with llama.cpp on a file of this shape.
    const Preset& p = find_preset("phi3-mini-4k");
    uint64_t total = 0;
    std::map<TensorType, int> count;
    for (const TensorPlan& t : plan_tensors(p, FileType::Q4_K_M, 32064)) {
        uint64_t n = 1;
        for (uint64_t d : t.shape) n *= d;
        total += expected_bytes(t.type, n);
        ++count[t.type];
        if (t.name == "token_embd.weight") {
            EXPECT_EQ(t.type, TensorType::Q4_K);
        }
        if (t.name == "output.weight") {
            EXPECT_EQ(t.type, TensorType::Q6_K);
        }
        if (t.name.ends_with("attn_qkv.weight")) {
            EXPECT_EQ(t.type, TensorType::Q5_K);
            EXPECT_EQ(t.shape, (std::vector<uint64_t>{3072, 9216}));
        }
        if (t.name.ends_with("ffn_up.weight")) {
            EXPECT_EQ(t.shape, (std::vector<uint64_t>{3072, 16384}));
        }
    }
    EXPECT_EQ(count[TensorType::Q5_K], 32);
    EXPECT_EQ(count[TensorType::Q6_K], 16 + 1);  // half the ffn_down + output
    EXPECT_NEAR(static_cast<double>(total) / (1ull << 30), 2.23, 2.23 * 0.01);
}

TEST(Synth, Qwen05BQ4KMFileHasTheMeasuredMixAndSize) {
    const fs::path out = temp("qwen05.gguf");
    Options o;
    o.preset = "qwen2.5-0.5b";
    o.type = FileType::Q4_K_M;
    o.vocab = kVocab / "ggml-vocab-qwen2.5.gguf";
    ORCD_SKIP_WITHOUT_SHARED(o.vocab);
    write_model(o, out);
    const gguf::File f = gguf::File::open(out);
    EXPECT_EQ(f.get_string("general.architecture"), "qwen2");
    EXPECT_EQ(f.get_uint("qwen2.block_count"), 24u);
    EXPECT_EQ(f.get_float("qwen2.rope.freq_base"), 1e6);
    EXPECT_EQ(f.get_array("tokenizer.ggml.tokens").size, 151936u);
    EXPECT_EQ(f.find_tensor("output.weight"), nullptr);  // tied
    EXPECT_EQ(f.find_tensor("token_embd.weight")->type, TensorType::Q8_0);
    EXPECT_EQ(f.find_tensor("blk.0.attn_q.bias")->shape, (std::vector<uint64_t>{896}));
    EXPECT_EQ(f.find_tensor("blk.0.attn_k.weight")->shape, (std::vector<uint64_t>{896, 128}));
    int attn_v_q8 = 0, ffn_down_q6 = 0;
    uint64_t total = 0, expected_offset = 0;
    for (const gguf::TensorInfo& t : f.tensors()) {
        total += t.n_bytes;
        EXPECT_EQ(t.n_bytes, expected_bytes(t.type, t.n_elements)) << t.name;
        EXPECT_EQ(t.offset, expected_offset) << t.name;  // packed in order, each aligned to 32
        expected_offset = (t.offset + t.n_bytes + 31) / 32 * 32;
        if (t.name.ends_with("attn_v.weight")) attn_v_q8 += t.type == TensorType::Q8_0;
        if (t.name.ends_with("ffn_down.weight")) ffn_down_q6 += t.type == TensorType::Q6_K;
        if (t.name.ends_with("attn_q.weight") || t.name.ends_with("ffn_up.weight")) {
            EXPECT_EQ(t.type, TensorType::Q5_0);
        }
    }
    EXPECT_EQ(attn_v_q8, 12);
    EXPECT_EQ(ffn_down_q6, 12);
    EXPECT_NEAR(static_cast<double>(total) / (1 << 20), 373.7, 373.7 * 0.01);
    EXPECT_EQ(gguf::type_mix(f).kind(), "Q4_K_M");
    fs::remove(out);
}

TEST(Synth, SameSeedSameBytesOtherSeedOtherBytes) {
    Options o;
    o.preset = "llama-tiny";
    o.type = FileType::Q4_K_M;
    o.n_vocab = 300;
    o.seed = 7;
    const fs::path a = temp("a.gguf"), b = temp("b.gguf"), c = temp("c.gguf");
    o.threads = 1;
    write_model(o, a);
    o.threads = 4;
    write_model(o, b);
    o.seed = 8;
    write_model(o, c);
    EXPECT_EQ(slurp(a), slurp(b));
    EXPECT_NE(slurp(a), slurp(c));
    for (const auto& p : {a, b, c}) fs::remove(p);
}

TEST(Synth, WeightsHaveTheIntendedScale) {
    Options o;
    o.preset = "phi3-tiny";
    o.type = FileType::F32;
    o.n_vocab = 512;
    const fs::path out = temp("scale.gguf");
    write_model(o, out);
    const gguf::File f = gguf::File::open(out);
    auto stats = [&](const char* name) {
        const gguf::TensorInfo* t = f.find_tensor(name);
        const auto d = f.tensor_data(*t);
        std::vector<float> v(t->n_elements);
        std::memcpy(v.data(), d.data(), d.size());
        double sum = 0, sq = 0;
        for (float x : v) {
            sum += x;
            sq += double(x) * x;
        }
        const double mean = sum / v.size();
        return std::pair{mean, std::sqrt(sq / v.size() - mean * mean)};
    };
    auto [m1, s1] = stats("blk.0.attn_qkv.weight");  // std 1/sqrt(256)
    EXPECT_NEAR(m1, 0.0, 0.01);
    EXPECT_NEAR(s1, 1.0 / 16, 0.005);
    auto [m2, s2] = stats("blk.1.ffn_down.weight");  // fan-in 512
    EXPECT_NEAR(s2, 1.0 / std::sqrt(512.0), 0.005);
    auto [m3, s3] = stats("blk.0.attn_norm.weight");
    EXPECT_NEAR(m3, 1.0, 0.02);
    fs::remove(out);
}

TEST(Synth, ErrorsAreClear) {
    Options o;
    o.preset = "gpt-5";
    EXPECT_THROW(write_model(o, temp("x.gguf")), Error);
    o.preset = "llama-tiny";
    try {
        write_model(o, temp("x.gguf"));  // neither vocab nor n_vocab
        FAIL();
    } catch (const Error& e) {
        EXPECT_EQ(e.code(), ErrorCode::InvalidArgument);
    }
    EXPECT_THROW(parse_file_type("Q3_K_XL"), Error);
    EXPECT_FALSE(fs::exists(temp("x.gguf")));
}

}  // namespace
}  // namespace orcd::synth
