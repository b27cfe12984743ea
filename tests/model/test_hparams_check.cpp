// The hyperparameter table (hparams_check.h) against hostile model files (issue 13 rows 15 and 16): each file is a
// valid tiny model written with the project's GGUF writer, then one value is replaced by what a lying file carries.
// Loading must refuse it naming the key, the value and the valid range; check_hparams must list it.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <memory>
#include <optional>

#include "common/error.h"
#include "gguf/file.h"
#include "model/config.h"
#include "model/hparams_check.h"
#include "test_models.h"

namespace orcd::model {
namespace {

using testing::TinyModel;

// The bytes and the file parsed from them (the file views the bytes).
struct Parsed {
    std::vector<std::byte> bytes;
    std::optional<gguf::File> parsed;
    const gguf::File& file() const { return *parsed; }
};

std::unique_ptr<Parsed> parse(const gguf::Writer& w) {
    auto p = std::make_unique<Parsed>();
    p->bytes = w.to_bytes();
    p->parsed.emplace(gguf::File::parse(p->bytes, "hostile.gguf"));
    return p;
}

// load_config's error message; fails the test when it loads or the code is not `want`.
std::string load_error(const gguf::File& f, ErrorCode want = ErrorCode::CorruptFile) {
    try {
        (void)load_config(f);
    } catch (const Error& e) {
        EXPECT_EQ(e.code(), want) << e.what();
        return e.what();
    }
    ADD_FAILURE() << "load_config accepted the file";
    return {};
}

void expect_has(const std::string& text, const std::string& part) {
    EXPECT_NE(text.find(part), std::string::npos) << "missing '" << part << "' in: " << text;
}

TEST(HparamsCheck, EveryRuleHasAKeyARangeAndAReason) {
    ASSERT_FALSE(hparam_rules().empty());
    for (const HparamRule& r : hparam_rules()) {
        EXPECT_FALSE(r.suffix.empty());
        EXPECT_FALSE(r.reason.empty()) << r.suffix;
        EXPECT_LE(r.min, r.max) << r.suffix;
    }
}

TEST(HparamsCheck, ValidTinyModelsHaveNoViolations) {
    for (const TinyModel& m : {testing::tiny_llama(), testing::tiny_qwen2(), testing::tiny_phi3()}) {
        auto p = parse(testing::tiny_writer(m));
        EXPECT_TRUE(check_hparams(p->file()).empty()) << m.arch;
    }
}

TEST(HparamsCheck, F64ThatOverflowsF32IsRefused) {
    gguf::Writer w = testing::tiny_writer(testing::tiny_qwen2());
    w.set_f64("qwen2.rope.freq_base", 1e300);  // would become inf as the f32 the engines use
    auto p = parse(w);
    const std::string e = load_error(p->file());
    expect_has(e, "qwen2.rope.freq_base = 1e+300");
    expect_has(e, "a number in [1, 1000000000000]");
    expect_has(e, "hostile.gguf");
}

TEST(HparamsCheck, EpsilonThatUnderflowsToZeroIsRefused) {
    gguf::Writer w = testing::tiny_writer(testing::tiny_llama());
    w.set_f64("llama.attention.layer_norm_rms_epsilon", 1e-50);
    auto p = parse(w);
    ASSERT_EQ(static_cast<float>(1e-50), 0.0f);  // the premise: the f32 conversion loses it
    const std::string e = load_error(p->file());
    expect_has(e, "llama.attention.layer_norm_rms_epsilon = 1e-50");
    expect_has(e, "a number in [1e-20, 0.5]");
}

TEST(HparamsCheck, NonFiniteAndDenormalFloatsAreRefused) {
    for (double v : {std::numeric_limits<double>::quiet_NaN(), std::numeric_limits<double>::infinity(), -1.0, 0.0,
                     1e-40 /* an f32 denormal */}) {
        gguf::Writer w = testing::tiny_writer(testing::tiny_llama());
        w.set_f64("llama.attention.layer_norm_rms_epsilon", v);
        auto p = parse(w);
        const auto bad = check_hparams(p->file());
        ASSERT_EQ(bad.size(), 1u) << v;
        EXPECT_EQ(bad[0].key, "llama.attention.layer_norm_rms_epsilon");
        (void)load_error(p->file());
    }
}

TEST(HparamsCheck, CountsOutOfRangeNameKeyValueAndRange) {
    struct Case {
        const char* key;
        uint64_t value;
        const char* range;
    };
    for (const Case& c : {Case{"llama.context_length", 0, "an integer in 1..16777216"},
                          Case{"llama.context_length", 1ull << 40, "an integer in 1..16777216"},
                          Case{"llama.block_count", 100000, "an integer in 1..4096"},
                          Case{"llama.attention.head_count", 0, "an integer in 1..4096"},
                          Case{"llama.embedding_length", 1ull << 33, "an integer in 1..1048576"}}) {
        gguf::Writer w = testing::tiny_writer(testing::tiny_llama());
        w.set_u64(c.key, c.value);
        auto p = parse(w);
        const std::string e = load_error(p->file());
        expect_has(e, std::string(c.key) + " = " + std::to_string(c.value));
        expect_has(e, c.range);
    }
}

TEST(HparamsCheck, WrongValueTypeIsAViolation) {
    gguf::Writer w = testing::tiny_writer(testing::tiny_llama());
    w.set_string("llama.context_length", "4096");
    auto p = parse(w);
    const auto bad = check_hparams(p->file());
    ASSERT_EQ(bad.size(), 1u);
    EXPECT_EQ(bad[0].value, "<string>");
    EXPECT_TRUE(bad[0].wrong_type);
    // A wrong type is the reader's MetadataType, as the typed accessors report it.
    expect_has(load_error(p->file(), ErrorCode::MetadataType), "llama.context_length = <string>");
    w.set_u32("llama.context_length", 256);
    w.set_f32("llama.block_count", 2.5f);  // an integer key given as a float
    auto p2 = parse(w);
    expect_has(load_error(p2->file(), ErrorCode::MetadataType), "llama.block_count = 2.5 (f32)");
}

TEST(HparamsCheck, HeadCountsThatDoNotDivide) {
    TinyModel m = testing::tiny_llama();  // 4 heads, 2 kv heads, n_embd 64
    m.override_u32["llama.attention.head_count_kv"] = 3;
    auto p = parse(testing::tiny_writer(m));
    expect_has(load_error(p->file()),
               "llama.attention.head_count_kv = 3: expected a divisor of llama.attention.head_count = 4");

    TinyModel m2 = testing::tiny_llama();
    m2.override_u32["llama.attention.head_count"] = 6;  // 64 / 6 is no whole head; no key_length in the file
    m2.override_u32["llama.attention.head_count_kv"] = 6;
    auto p2 = parse(testing::tiny_writer(m2));
    expect_has(load_error(p2->file()),
               "llama.attention.head_count = 6: expected a divisor of llama.embedding_length = 64");
}

TEST(HparamsCheck, RopeDimensionsBeyondTheHeadOrOdd) {
    for (uint32_t rd : {17u, 18u + 16u}) {
        TinyModel m = testing::tiny_llama();  // head size 16
        m.override_u32["llama.rope.dimension_count"] = rd;
        auto p = parse(testing::tiny_writer(m));
        expect_has(load_error(p->file()), "llama.rope.dimension_count = " + std::to_string(rd) +
                                              ": expected an even number <= the head size 16");
    }
}

TEST(HparamsCheck, TensorsBeyondBlockCountAreNamed) {
    TinyModel m = testing::tiny_qwen2();
    m.n_layers = 3;
    m.override_u32["qwen2.block_count"] = 1;  // the file holds blk.0..blk.2; a lying header claims one layer
    auto p = parse(testing::tiny_writer(m));
    const auto bad = check_hparams(p->file());
    ASSERT_EQ(bad.size(), 1u);
    EXPECT_EQ(bad[0].key, "qwen2.block_count");
    // qwen2 has 12 tensors per layer (norms, Q/K/V with biases, output, FFN): 2 unused layers = 24 tensors.
    expect_has(bad[0].expected, "24 tensor(s) are used by no layer: blk.1.attn_norm.weight");
    expect_has(bad[0].expected, "and 8 more");
    expect_has(load_error(p->file()), "blk.1.attn_q.weight");
}

TEST(HparamsCheck, ExtraTensorsWithinTheLayersAreNotViolations) {
    TinyModel m = testing::tiny_llama();
    m.extra = {"blk.0.attn_sinks.weight", "blk.00x.weird"};  // unknown to the table, inside block_count or no index
    auto p = parse(testing::tiny_writer(m));
    EXPECT_TRUE(check_hparams(p->file()).empty());
}

}  // namespace
}  // namespace orcd::model
