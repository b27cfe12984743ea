#include <gtest/gtest.h>

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <span>

#include "gguf/file.h"
#include "gguf_bytes.h"
#include "shared_files.h"

namespace orcd::gguf {
namespace {

namespace fs = std::filesystem;
const fs::path kVocabDir = test::shared_path("models/vocab");

File parse(const std::vector<std::byte>& b) { return File::parse(std::span<const std::byte>(b), "test.gguf"); }

ErrorCode code_of(const std::vector<std::byte>& b) {
    try {
        parse(b);
    } catch (const Error& e) {
        return e.code();
    }
    return ErrorCode::Ok;
}

TEST(GgufReader, ParsesHandBuiltFile) {
    const auto b = test::small_valid_file();
    const File f = parse(b.bytes);
    EXPECT_EQ(f.version(), 3u);
    EXPECT_EQ(f.alignment(), 32u);
    EXPECT_EQ(f.data_offset(), b.at.at("data"));
    ASSERT_EQ(f.metadata().size(), 4u);
    EXPECT_EQ(f.get_string("general.architecture"), "llama");
    EXPECT_EQ(f.get_uint("llama.block_count"), 2u);
    EXPECT_EQ(f.get_array("scores").to_floats(), (std::vector<float>{0.5f, -1.0f, 2.0f}));
    const Array& tokens = f.get_array("tokens");
    ASSERT_EQ(tokens.strings.size(), 2u);
    EXPECT_EQ(tokens.strings[0], "a");
    EXPECT_EQ(tokens.strings[1], "bc");

    ASSERT_EQ(f.tensors().size(), 2u);
    const TensorInfo* w = f.find_tensor("w");
    ASSERT_NE(w, nullptr);
    EXPECT_EQ(w->type, TensorType::F32);
    EXPECT_EQ(w->shape, (std::vector<uint64_t>{4, 2}));
    EXPECT_EQ(w->n_elements, 8u);
    EXPECT_EQ(w->n_bytes, 32u);
    EXPECT_EQ(w->file_offset, b.at.at("t0.data"));
    const TensorInfo* q = f.find_tensor("q");
    ASSERT_NE(q, nullptr);
    EXPECT_EQ(q->type, TensorType::Q8_0);
    EXPECT_EQ(q->n_bytes, 34u);
    EXPECT_EQ(q->file_offset, b.at.at("t1.data"));
    float third;
    std::memcpy(&third, f.tensor_data(*w).data() + 8, 4);
    EXPECT_EQ(third, 2.0f);
    EXPECT_EQ(f.find_tensor("missing"), nullptr);
}

TEST(GgufReader, EveryScalarTypeAndNestedArrays) {
    test::GgufBytes b;
    b.put<uint32_t>(0x46554747).put<uint32_t>(2).put<uint64_t>(0).put<uint64_t>(14);
    b.str("u8").put<uint32_t>(0).put<uint8_t>(200);
    b.str("i8").put<uint32_t>(1).put<int8_t>(-100);
    b.str("u16").put<uint32_t>(2).put<uint16_t>(60000);
    b.str("i16").put<uint32_t>(3).put<int16_t>(-30000);
    b.str("u32").put<uint32_t>(4).put<uint32_t>(4000000000u);
    b.str("i32").put<uint32_t>(5).put<int32_t>(-2000000000);
    b.str("f32").put<uint32_t>(6).put<float>(1.5f);
    b.str("bool").put<uint32_t>(7).put<uint8_t>(1);
    b.str("string").put<uint32_t>(8).str("hé");
    b.str("u64").put<uint32_t>(10).put<uint64_t>(1ull << 63);
    b.str("i64").put<uint32_t>(11).put<int64_t>(-(1ll << 62));
    b.str("f64").put<uint32_t>(12).put<double>(-0.25);
    b.str("nested").put<uint32_t>(9).put<uint32_t>(9).put<uint64_t>(2);
    b.put<uint32_t>(5).put<uint64_t>(1).put<int32_t>(-7);  // [[-7], [true, false]]
    b.put<uint32_t>(7).put<uint64_t>(2).put<uint8_t>(1).put<uint8_t>(0);
    b.str("empty").put<uint32_t>(9).put<uint32_t>(4).put<uint64_t>(0);
    const File f = parse(b.bytes);
    EXPECT_EQ(f.version(), 2u);
    EXPECT_EQ(f.get_uint("u8"), 200u);
    EXPECT_EQ(f.get_int("i8"), -100);
    EXPECT_EQ(f.get_uint("u16"), 60000u);
    EXPECT_EQ(f.get_int("i16"), -30000);
    EXPECT_EQ(f.get_uint("u32"), 4000000000u);
    EXPECT_EQ(f.get_int("i32"), -2000000000);
    EXPECT_EQ(f.get_float("f32"), 1.5);
    EXPECT_TRUE(f.get_bool("bool"));
    EXPECT_EQ(f.get_string("string"), "hé");
    EXPECT_EQ(f.get_uint("u64"), 1ull << 63);
    EXPECT_EQ(f.get_int("i64"), -(1ll << 62));
    EXPECT_EQ(f.get_float("f64"), -0.25);
    const Array& nested = f.get_array("nested");
    ASSERT_EQ(nested.arrays.size(), 2u);
    EXPECT_EQ(nested.arrays[0].int_at(0), -7);
    EXPECT_EQ(nested.arrays[1].int_at(0), 1);
    EXPECT_EQ(nested.arrays[1].int_at(1), 0);
    EXPECT_EQ(f.get_array("empty").size, 0u);
    EXPECT_TRUE(f.tensors().empty());
}

TEST(GgufReader, TypedAccessorErrorsNameKeyAndTypes) {
    const auto b = test::small_valid_file();
    const File f = parse(b.bytes);
    try {
        f.get_uint("general.architecture");
        FAIL() << "expected MetadataType";
    } catch (const Error& e) {
        EXPECT_EQ(e.code(), ErrorCode::MetadataType);
        EXPECT_NE(std::string(e.what()).find("general.architecture"), std::string::npos) << e.what();
        EXPECT_NE(std::string(e.what()).find("unsigned integer"), std::string::npos) << e.what();
        EXPECT_NE(std::string(e.what()).find("found string"), std::string::npos) << e.what();
    }
    try {
        f.get_string("llama.context_length");
        FAIL() << "expected MetadataMissing";
    } catch (const Error& e) {
        EXPECT_EQ(e.code(), ErrorCode::MetadataMissing);
        EXPECT_NE(std::string(e.what()).find("llama.context_length"), std::string::npos) << e.what();
    }
    EXPECT_FALSE(f.get_uint_opt("nope").has_value());
    EXPECT_EQ(f.get_uint_opt("llama.block_count"), 2u);
    EXPECT_THROW(f.get_bool_opt("llama.block_count"), Error);  // present but of the wrong type
    EXPECT_THROW(f.get_array("scores").to_i32(), Error);       // floats are not integers
}

TEST(GgufReader, OpenErrorsAreTyped) {
    try {
        File::open("/nonexistent/model.gguf");
        FAIL();
    } catch (const Error& e) {
        EXPECT_EQ(e.code(), ErrorCode::FileNotFound);
        EXPECT_NE(std::string(e.what()).find("/nonexistent/model.gguf"), std::string::npos);
    }
    // A text file and a directory, made here: the test needs nothing from ../shared.
    const fs::path text = fs::temp_directory_path() / ("orcd-reader-test-" + std::to_string(getpid()) + ".md");
    { std::ofstream(text) << "# not a GGUF file\n"; }
    try {
        File::open(text);
        FAIL();
    } catch (const Error& e) {
        EXPECT_EQ(e.code(), ErrorCode::NotGguf) << e.what();
    }
    fs::remove(text);
    try {
        File::open(fs::temp_directory_path());  // a directory
        FAIL();
    } catch (const Error& e) {
        EXPECT_EQ(e.code(), ErrorCode::FileUnreadable) << e.what();
    }
}

// Independent facts about the shared vocab files (from shared/README.md and the models' published tokenizers).
TEST(GgufReader, EveryVocabFileParses) {
    ORCD_SKIP_WITHOUT_SHARED(kVocabDir);
    int n = 0;
    for (const auto& entry : fs::directory_iterator(kVocabDir)) {
        if (entry.path().extension() != ".gguf") continue;
        SCOPED_TRACE(entry.path().string());
        const File f = File::open(entry.path());
        EXPECT_GT(f.metadata().size(), 0u);
        EXPECT_TRUE(f.tensors().empty());
        EXPECT_GT(f.get_array("tokenizer.ggml.tokens").size, 1000u);
        ++n;
    }
    EXPECT_EQ(n, 4);
    const File qwen = File::open(kVocabDir / "ggml-vocab-qwen2.5.gguf");
    EXPECT_EQ(qwen.get_string("tokenizer.ggml.model"), "gpt2");
    EXPECT_EQ(qwen.get_string("tokenizer.ggml.pre"), "qwen2");
    EXPECT_EQ(qwen.get_array("tokenizer.ggml.tokens").size, 151936u);
    EXPECT_EQ(qwen.get_array("tokenizer.ggml.merges").size, 151387u);
    EXPECT_TRUE(qwen.has("tokenizer.chat_template"));
    const File phi = File::open(kVocabDir / "ggml-vocab-phi-3.gguf");
    EXPECT_EQ(phi.get_string("tokenizer.ggml.model"), "llama");
    EXPECT_EQ(phi.get_array("tokenizer.ggml.tokens").size, 32064u);
    EXPECT_EQ(phi.get_array("tokenizer.ggml.scores").to_floats().size(), 32064u);
    const File spm = File::open(kVocabDir / "ggml-vocab-llama-spm.gguf");
    EXPECT_EQ(spm.get_array("tokenizer.ggml.tokens").size, 32000u);
}

TEST(GgufReader, AlignmentKeyIsHonouredAndChecked) {
    // general.alignment = 64 moves the data section to the next multiple of 64.
    test::GgufBytes b;
    b.put<uint32_t>(0x46554747).put<uint32_t>(3).put<uint64_t>(1).put<uint64_t>(1);
    b.str("general.alignment").put<uint32_t>(4).put<uint32_t>(64, "align");
    b.str("t").put<uint32_t>(1).put<uint64_t>(16).put<uint32_t>(0).put<uint64_t>(0, "offset");
    b.pad_to(64);
    const size_t data = b.bytes.size();
    b.zeros(64);
    const File f = parse(b.bytes);
    EXPECT_EQ(f.alignment(), 64u);
    EXPECT_EQ(f.data_offset(), data);
    EXPECT_EQ(data % 64, 0u);
    auto bad = b;
    bad.set_u32("align", 48);
    EXPECT_EQ(code_of(bad.bytes), ErrorCode::CorruptFile);
    bad.set_u32("align", 0);
    EXPECT_EQ(code_of(bad.bytes), ErrorCode::CorruptFile);
    bad = b;
    bad.set_u64("offset", 32);  // aligned to 32 but not to the file's 64
    EXPECT_EQ(code_of(bad.bytes), ErrorCode::CorruptFile);
}

}  // namespace
}  // namespace orcd::gguf
