// llama.cpp's tokenizer test vectors (made with each model's Hugging Face tokenizer): every string of every vocab in
// ../shared/models/vocab must encode to exactly the expected ids (no BOS, special tokens not parsed), and decode back.
#include <gtest/gtest.h>

#include <cctype>
#include <set>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "gguf/file.h"
#include "test_util.h"
#include "tokenizer/tokenizer.h"
#include "tokenizer/unicode.h"

namespace orcd::tokenizer {
namespace {

using testing::read_vocab_inputs;
using testing::read_vocab_outputs;
using testing::vocab_dir;

class VocabVectors : public ::testing::TestWithParam<std::string> {};

TEST_P(VocabVectors, AllVectorsPass) {
    ORCD_SKIP_WITHOUT_SHARED(vocab_dir());
    const auto gguf_path = vocab_dir() / GetParam();
    const gguf::File file = gguf::File::open(gguf_path);
    const Tokenizer tok = Tokenizer::from_gguf(file);
    const auto inputs = read_vocab_inputs(gguf_path.string() + ".inp");
    const auto expected = read_vocab_outputs(gguf_path.string() + ".out");
    ASSERT_EQ(inputs.size(), expected.size()) << "the .inp and .out files disagree on the number of vectors";
    ASSERT_GE(inputs.size(), 40u);
    size_t passed = 0;
    for (size_t i = 0; i < inputs.size(); ++i) {
        const auto ids = tok.encode(inputs[i], /*add_special=*/false, /*parse_special=*/false);
        EXPECT_EQ(ids, expected[i]) << "vector " << i << ": '" << inputs[i] << "'\n got      " << fmt::format("{}", ids)
                                    << "\n expected " << fmt::format("{}", expected[i]);
        if (ids == expected[i]) ++passed;
        // Round trip: every vector is valid UTF-8 without special tokens.
        ASSERT_TRUE(unicode::is_valid_utf8(inputs[i]));
        EXPECT_EQ(tok.decode(ids), inputs[i]) << "vector " << i << " does not decode back";
    }
    std::printf("%s: %zu/%zu vectors pass\n", GetParam().c_str(), passed, inputs.size());
}

INSTANTIATE_TEST_SUITE_P(SharedVocabs, VocabVectors,
                         ::testing::Values("ggml-vocab-qwen2.5.gguf", "ggml-vocab-gpt-2.gguf",
                                           "ggml-vocab-llama-spm.gguf", "ggml-vocab-phi-3.gguf"),
                         [](const auto& info) {
                             std::string name = info.param.substr(11, info.param.size() - 16);  // ggml-vocab-X.gguf
                             for (char& c : name) c = std::isalnum(static_cast<unsigned char>(c)) ? c : '_';
                             return name;
                         });

// Every vocab in the folder is covered by the list above: a new one must be added, not silently skipped.
TEST(VocabVectorsCoverage, EveryVocabFileIsTested) {
    ORCD_SKIP_WITHOUT_SHARED(vocab_dir());
    const std::set<std::string> tested = {"ggml-vocab-qwen2.5.gguf", "ggml-vocab-gpt-2.gguf",
                                          "ggml-vocab-llama-spm.gguf", "ggml-vocab-phi-3.gguf"};
    for (const auto& entry : std::filesystem::directory_iterator(vocab_dir())) {
        if (entry.path().extension() == ".gguf") {
            EXPECT_TRUE(tested.count(entry.path().filename().string())) << entry.path() << " has no test";
        }
    }
}

}  // namespace
}  // namespace orcd::tokenizer
