// `orcd inspect --json` as a user runs it: on every shared vocab file and on synth files. Expected counts, types,
// shapes and offsets come from facts about the files and from the block layouts computed here, not from the writer.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <unistd.h>

#include "run.h"

namespace {

namespace fs = std::filesystem;
using nlohmann::json;
const std::string kOrcd = ORCD_BINARY;
const fs::path kVocab = fs::path(ORCD_SHARED_DIR) / "models/vocab";

json inspect(const fs::path& p) {
    const auto r = orcd::test::run(kOrcd + " inspect --json '" + p.string() + "'");
    EXPECT_EQ(r.exit_code, 0) << r.out;
    return json::parse(r.out);
}

TEST(Inspect, VocabFiles) {
    struct Expect { const char* file; const char* model; uint64_t tokens; };
    for (const Expect& e : {Expect{"ggml-vocab-qwen2.5.gguf", "gpt2", 151936}, Expect{"ggml-vocab-phi-3.gguf", "llama", 32064},
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

}  // namespace
