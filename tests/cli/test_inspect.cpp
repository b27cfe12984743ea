// `orcd inspect --json` as a user runs it: on every shared vocab file and on synth files. Expected counts, types,
// shapes and offsets come from facts about the files and from the block layouts computed here, not from the writer.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <unistd.h>

#include "gguf/writer.h"
#include "run.h"
#include "shared_files.h"

namespace {

namespace fs = std::filesystem;
using nlohmann::json;
const std::string kOrcd = ORCD_BINARY;
const fs::path kVocab = orcd::test::shared_path("models/vocab");

json inspect(const fs::path& p) {
    const auto r = orcd::test::run(kOrcd + " inspect --json '" + p.string() + "'");
    EXPECT_EQ(r.exit_code, 0) << r.out;
    return json::parse(r.out);
}

TEST(Inspect, VocabFiles) {
    ORCD_SKIP_WITHOUT_SHARED(kVocab);
    struct Expect {
        const char* file;
        const char* model;
        uint64_t tokens;
    };
    for (const Expect& e :
         {Expect{"ggml-vocab-qwen2.5.gguf", "gpt2", 151936}, Expect{"ggml-vocab-phi-3.gguf", "llama", 32064},
          Expect{"ggml-vocab-llama-spm.gguf", "llama", 32000}, Expect{"ggml-vocab-gpt-2.gguf", "gpt2", 50257}}) {
        SCOPED_TRACE(e.file);
        const json j = inspect(kVocab / e.file);
        EXPECT_EQ(j["tensors"].size(), 0u);
        EXPECT_EQ(j["metadata"]["tokenizer.ggml.model"], e.model);
        const json& tokens = j["metadata"]["tokenizer.ggml.tokens"];
        EXPECT_EQ(tokens["type"], "array");
        EXPECT_EQ(tokens["element_type"], "string");
        EXPECT_EQ(tokens["length"], e.tokens);
        EXPECT_EQ(j["file_size"], fs::file_size(kVocab / e.file));
    }
}

TEST(Inspect, SynthFileTensorsTypesShapesOffsets) {
    const fs::path model = fs::temp_directory_path() / ("orcd_inspect_" + std::to_string(::getpid()) + ".gguf");
    auto r = orcd::test::run(kOrcd + " synth --preset qwen2.5-tiny --type Q8_0 --n-vocab 1000 --seed 3 -o '" +
                             model.string() + "' 2>&1");
    ASSERT_EQ(r.exit_code, 0) << r.out;
    const json j = inspect(model);
    EXPECT_EQ(j["architecture"], "qwen2");
    EXPECT_EQ(j["metadata"]["qwen2.embedding_length"], 256);
    EXPECT_EQ(j["metadata"]["qwen2.attention.head_count_kv"], 2);
    // 2 layers x (norm, q, k, v, 3 biases, output, ffn_norm, gate, up, down) + token_embd + output_norm (tied head).
    const json& t = j["tensors"];
    ASSERT_EQ(t.size(), 2u * 12 + 2);
    EXPECT_EQ(t[0]["name"], "token_embd.weight");
    EXPECT_EQ(t[0]["type"], "Q8_0");
    EXPECT_EQ(t[0]["shape"], json::array({256, 1000}));
    uint64_t offset = j["data_offset"];
    EXPECT_EQ(offset % 32, 0u);
    for (const json& x : t) {
        uint64_t n = 1;
        for (uint64_t d : x["shape"]) n *= d;
        // Q8_0: 34 bytes per 32 elements; F32 (norms, biases): 4 bytes each.
        const uint64_t bytes = x["type"] == "Q8_0" ? n / 32 * 34 : n * 4;
        EXPECT_EQ(x["type"] == "Q8_0" || x["type"] == "F32", true) << x["name"];
        EXPECT_EQ(x["bytes"], bytes) << x["name"];
        EXPECT_EQ(x["offset"], offset) << x["name"];
        offset = (offset + bytes + 31) / 32 * 32;
    }
    EXPECT_EQ(j["file_size"], fs::file_size(model));
    const auto text = orcd::test::run(kOrcd + " inspect '" + model.string() + "'");
    EXPECT_EQ(text.exit_code, 0);
    EXPECT_NE(text.out.find("Q8_0-like: Q8_0"), std::string::npos) << text.out;
    fs::remove(model);
}

TEST(Inspect, BadFilesExitOneWithTypedError) {
    const fs::path bad = fs::temp_directory_path() / ("orcd_bad_" + std::to_string(::getpid()) + ".gguf");
    {
        std::ofstream out(bad, std::ios::binary);
        out << "GGUF";
        const uint32_t version = 3;
        out.write(reinterpret_cast<const char*>(&version), 4);
    }
    auto r = orcd::test::run(kOrcd + " inspect --json '" + bad.string() + "' 2>&1");
    EXPECT_EQ(r.exit_code, 1);
    EXPECT_NE(r.out.find("TRUNCATED"), std::string::npos) << r.out;
    EXPECT_NE(r.out.find(bad.string()), std::string::npos) << r.out;
    r = orcd::test::run(kOrcd + " inspect /no/such/file.gguf 2>&1");
    EXPECT_EQ(r.exit_code, 1);
    EXPECT_NE(r.out.find("FILE_NOT_FOUND"), std::string::npos) << r.out;
    fs::remove(bad);
}

// Issue 13 rows 14-16: a file whose strings carry terminal escapes and whose hyperparameters lie. The human output
// shows every escape as text (no raw control byte reaches the terminal), lists the violations and still prints the
// rest; --json carries the violations as data.
TEST(Inspect, HostileMetadataIsEscapedAndViolationsListed) {
    const fs::path model = fs::temp_directory_path() / ("orcd_hostile_" + std::to_string(::getpid()) + ".gguf");
    orcd::gguf::Writer w;
    w.set_string("general.architecture", "llama");
    w.set_string("general.name", "\x1b[2J\x1b[31mpwned\x07");
    w.set_string("general.description\x1b]0;title\x07", "line1\nline2\r\xc2\x9b");
    w.set_u32("llama.block_count", 1);
    w.set_u32("llama.embedding_length", 64);
    w.set_u32("llama.feed_forward_length", 128);
    w.set_u32("llama.attention.head_count", 4);
    w.set_u32("llama.context_length", 0);
    w.set_f64("llama.rope.freq_base", 1e300);
    w.set_f32("llama.attention.layer_norm_rms_epsilon", 1e-5f);
    w.add_tensor("blk.3.\x1b[1mattn_q.weight", orcd::gguf::TensorType::F32, {4}, std::vector<std::byte>(16));
    w.write_file(model);

    const auto r = orcd::test::run(kOrcd + " inspect '" + model.string() + "'");
    EXPECT_EQ(r.exit_code, 0) << r.out;
    for (char c : r.out) {
        const auto u = static_cast<unsigned char>(c);
        EXPECT_TRUE(u >= 0x20 || c == '\n') << "raw control byte " << int(u) << " in:\n" << r.out;
        if (u < 0x20 && c != '\n') break;
    }
    EXPECT_EQ(r.out.find("\xc2\x9b"), std::string::npos);
    EXPECT_NE(r.out.find("\\x1b[2J\\x1b[31mpwned\\x07"), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("general.description\\x1b]0;title\\x07"), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("line1\\nline2\\r\\u009b"), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("INVALID hyperparameters (3;"), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("llama.context_length = 0: expected an integer in 1..16777216"), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("llama.rope.freq_base = 1e+300"), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("used by no layer: blk.3.\\x1b[1mattn_q.weight"), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("total tensor bytes: 16"), std::string::npos) << r.out;  // the rest is still printed

    const json j = inspect(model);
    ASSERT_EQ(j["hyperparameter_violations"].size(), 3u) << j.dump();
    EXPECT_EQ(j["hyperparameter_violations"][0]["key"], "llama.context_length");
    EXPECT_EQ(j["hyperparameter_violations"][0]["value"], "0");
    EXPECT_EQ(j["metadata"]["general.name"], "\x1b[2J\x1b[31mpwned\x07");  // JSON escapes it itself
    fs::remove(model);
}

}  // namespace
