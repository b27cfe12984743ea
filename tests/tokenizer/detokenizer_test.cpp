// The streaming detokenizer: never emits an incomplete UTF-8 sequence, replaces invalid bytes, equals decode().
#include <gtest/gtest.h>

#include "gguf/file.h"
#include "test_util.h"
#include "tokenizer/detokenizer.h"
#include "tokenizer/tokenizer.h"
#include "tokenizer/unicode.h"

namespace orcd::tokenizer {
namespace {

Tokenizer load(const char* name) {
    const gguf::File f = gguf::File::open(testing::vocab_dir() / name);
    return Tokenizer::from_gguf(f);
}

// SentencePiece byte tokens of the llama vocab: <0xXX> has id 3 + XX.
TokenId byte_id(uint8_t b) { return 3 + b; }

TEST(Detokenizer, HoldsBackSplitCodePoint) {
    ORCD_SKIP_WITHOUT_SHARED(testing::vocab_dir());  // every case decodes with a real vocabulary
    const Tokenizer t = load("ggml-vocab-llama-spm.gguf");
    Detokenizer d(t);
    EXPECT_EQ(d.push(byte_id(0xF0)), "");
    EXPECT_EQ(d.pending(), 1u);
    EXPECT_EQ(d.push(byte_id(0x9F)), "");
    EXPECT_EQ(d.push(byte_id(0xA6)), "");
    EXPECT_EQ(d.push(byte_id(0x99)), "\xf0\x9f\xa6\x99");
    EXPECT_EQ(d.pending(), 0u);
    EXPECT_EQ(d.finish(), "");
}

TEST(Detokenizer, InvalidBytesBecomeReplacement) {
    ORCD_SKIP_WITHOUT_SHARED(testing::vocab_dir());  // every case decodes with a real vocabulary
    const Tokenizer t = load("ggml-vocab-llama-spm.gguf");
    Detokenizer d(t);
    EXPECT_EQ(d.push(byte_id(0xE2)), "");
    EXPECT_EQ(d.push(byte_id('A')),
              "\xef\xbf\xbd"
              "A");                                    // E2 then 'A': E2 can no longer complete
    EXPECT_EQ(d.push(byte_id(0xFF)), "\xef\xbf\xbd");  // never valid: replaced at once
    EXPECT_EQ(d.push(byte_id(0xE2)), "");
    EXPECT_EQ(d.push(byte_id(0x82)), "");
    EXPECT_EQ(d.finish(), "\xef\xbf\xbd");  // incomplete at the end
}

TEST(Detokenizer, SpecialTokensShownOrSkipped) {
    ORCD_SKIP_WITHOUT_SHARED(testing::vocab_dir());  // every case decodes with a real vocabulary
    const Tokenizer t = load("ggml-vocab-qwen2.5.gguf");
    Detokenizer hide(t);
    Detokenizer show(t, {.show_special = true});
    EXPECT_EQ(hide.push(151645), "");
    EXPECT_EQ(show.push(151645), "<|im_end|>");
}

TEST(Detokenizer, SpmLeadingSpaceStrippedOnlyWhenAsked) {
    ORCD_SKIP_WITHOUT_SHARED(testing::vocab_dir());  // every case decodes with a real vocabulary
    const Tokenizer t = load("ggml-vocab-llama-spm.gguf");
    const auto ids = t.encode("Hello world", true, false);  // <s> ▁Hello ▁world
    Detokenizer whole(t, {.strip_leading_space = true});
    Detokenizer continuation(t);
    std::string a, b;
    for (TokenId id : ids) {
        a += whole.push(id);
        b += continuation.push(id);
    }
    EXPECT_EQ(a, "Hello world");
    EXPECT_EQ(b, " Hello world");
}

TEST(Detokenizer, StreamEqualsDecodeAndIsAlwaysValidUtf8) {
    ORCD_SKIP_WITHOUT_SHARED(testing::vocab_dir());  // every case decodes with a real vocabulary
    const std::string text =
        "Grüße 🦙🦙 日本語のテキスト — ½ ünïcödé\n\tcode: for (int i = 0; i < n; ++i) {}  ☃️👩‍👩‍👧";
    for (const char* name :
         {"ggml-vocab-qwen2.5.gguf", "ggml-vocab-gpt-2.gguf", "ggml-vocab-llama-spm.gguf", "ggml-vocab-phi-3.gguf"}) {
        const Tokenizer t = load(name);
        const auto ids = t.encode(text, true, true);
        Detokenizer d(t, {.strip_leading_space = true});
        std::string streamed;
        size_t held_back = 0;
        for (TokenId id : ids) {
            const std::string piece = d.push(id);
            EXPECT_TRUE(unicode::is_valid_utf8(piece)) << name << " token " << id;
            held_back += d.pending() > 0;
            streamed += piece;
        }
        streamed += d.finish();
        EXPECT_EQ(streamed, t.decode(ids)) << name;
        EXPECT_EQ(streamed, text) << name;
        EXPECT_GT(held_back, 0u) << name << ": the text should split some code point across tokens";
    }
}

}  // namespace
}  // namespace orcd::tokenizer
