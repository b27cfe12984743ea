// Tokenizer behaviour beyond the shared vectors: pre-tokenizer splits (expected values from Python's `regex` module
// running the models' own expressions), special tokens, BOS/EOS, NFC, invalid input, errors.
#include <gtest/gtest.h>

#include <random>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "common/error.h"
#include "gguf/file.h"
#include "test_util.h"
#include "tokenizer/bpe.h"
#include "tokenizer/pretokenize.h"
#include "tokenizer/spm.h"
#include "tokenizer/tokenizer.h"
#include "tokenizer/unicode.h"

namespace orcd::tokenizer {
namespace {

using testing::vocab_dir;

struct PretokCase {
    PreTokenizer kind;
    std::string text;
    std::vector<std::string> words;
};

std::vector<std::string> split(PreTokenizer kind, const std::string& text) {
    std::vector<char32_t> cps;
    std::vector<uint32_t> offsets;
    unicode::decode_utf8(text, cps, &offsets);
    std::vector<uint8_t> cls;
    for (char32_t c : cps) cls.push_back(unicode::classes(c));
    std::vector<uint32_t> ends;
    pretokenize(kind, cps, cls, ends);
    std::vector<std::string> out;
    uint32_t start = 0;
    for (uint32_t e : ends) {
        out.push_back(text.substr(offsets[start], offsets[e] - offsets[start]));
        start = e;
    }
    return out;
}

TEST(PreTokenizer, MatchesTheRegularExpressions) {
    // Generated with: regex.findall(PATTERN, text) for the Qwen2 and GPT-2 patterns of pretokenize.h.
    const PretokCase cases[] = {
#include "pretokenize_cases.inc"
        {PreTokenizer::Qwen2, "x'S'\u017f'Re'LL'd", {"x", "'S", "'\u017f", "'Re", "'LL", "'d"}},
    };
    for (const PretokCase& c : cases) {
        EXPECT_EQ(split(c.kind, c.text), c.words)
            << (c.kind == PreTokenizer::Qwen2 ? "qwen2" : "gpt2") << " on '" << c.text << "'";
    }
}

class SharedTokenizer : public ::testing::Test {
protected:
    void SetUp() override { ORCD_SKIP_WITHOUT_SHARED(vocab_dir()); }
    static Tokenizer load(const char* name) {
        const gguf::File f = gguf::File::open(vocab_dir() / name);
        return Tokenizer::from_gguf(f);
    }
};

TEST_F(SharedTokenizer, QwenSpecialTokensParsedOnlyWhenAsked) {
    const Tokenizer t = load("ggml-vocab-qwen2.5.gguf");
    EXPECT_EQ(t.kind(), Kind::ByteLevelBpe);
    EXPECT_EQ(t.kind_name(), "bpe/qwen2");
    EXPECT_EQ(t.size(), 151936u);
    const std::string text = "<|im_start|>user\nHello world<|im_end|>\n";
    const auto ids = t.encode(text, true, true);
    // No BOS for Qwen; the markers are single control tokens; the text between them is ordinary BPE.
    const std::vector<TokenId> expected = {151644, 872, 198, 9707, 1879, 151645, 198};
    EXPECT_EQ(ids, expected) << fmt::format("{}", ids);
    const auto plain = t.encode(text, true, false);
    EXPECT_EQ(std::count(plain.begin(), plain.end(), 151644), 0);
    EXPECT_GT(plain.size(), ids.size());
    EXPECT_EQ(t.decode(plain), text);
    EXPECT_EQ(t.decode(ids, /*show_special=*/true), text);
    EXPECT_EQ(t.decode(ids, /*show_special=*/false), "user\nHello world\n");
    // User-defined tokens are shown as text even when special tokens are hidden.
    EXPECT_EQ(t.decode(t.encode("<tool_call>", false, true)), "<tool_call>");
    EXPECT_EQ(t.encode("<tool_call>", false, true), std::vector<TokenId>{151657});
    EXPECT_EQ(t.vocab().eos, 151645);
    EXPECT_EQ(t.vocab().eot, 151645);
    EXPECT_TRUE(t.vocab().is_end_of_generation(151643));
    EXPECT_FALSE(t.vocab().add_bos);
}

TEST_F(SharedTokenizer, QwenNormalizesToNfc) {
    const Tokenizer t = load("ggml-vocab-qwen2.5.gguf");
    EXPECT_EQ(t.encode("caf\x65\xcc\x81 cr\xc3\xa8me", false, false),
              t.encode("caf\xc3\xa9 cr\xc3\xa8me", false, false));
}

TEST_F(SharedTokenizer, LongestSpecialTokenWinsAndAdjacentSpecialsSplit) {
    const Tokenizer t = load("ggml-vocab-qwen2.5.gguf");
    // "<|im_start|><|im_end|>" is two tokens; "<|fim_pad|>" and "<|fim_prefix|>" share a prefix.
    EXPECT_EQ(t.encode("<|im_start|><|im_end|><|fim_pad|><|fim_prefix|>", false, true),
              (std::vector<TokenId>{151644, 151645, 151662, 151659}));
    // An unterminated marker is text.
    const auto ids = t.encode("<|im_start", false, true);
    EXPECT_EQ(std::count(ids.begin(), ids.end(), 151644), 0);
}

TEST_F(SharedTokenizer, Phi3AddsBosAndParsesItsMarkers) {
    const Tokenizer t = load("ggml-vocab-phi-3.gguf");
    EXPECT_EQ(t.kind(), Kind::SentencePiece);
    EXPECT_TRUE(t.vocab().add_bos);
    const auto ids = t.encode("<|user|>\nhi<|end|>\n<|assistant|>", true, true);
    ASSERT_GE(ids.size(), 5u);
    EXPECT_EQ(ids.front(), 1);                                // <s>
    EXPECT_EQ(ids[1], 32010);                                 // <|user|>
    EXPECT_EQ(ids.back(), 32001);                             // <|assistant|>
    EXPECT_EQ(std::count(ids.begin(), ids.end(), 32007), 1);  // <|end|>
    EXPECT_EQ(t.vocab().eot, 32007);
    EXPECT_TRUE(t.vocab().is_end_of_generation(32000));
    const auto no_bos = t.encode("hi", false, true);
    ASSERT_FALSE(no_bos.empty());
    EXPECT_NE(no_bos.front(), 1);
    // Text after a special token gets SentencePiece's space prefix again, which decoding keeps (as HF does).
    EXPECT_EQ(t.decode(t.encode("a<|end|>b", false, true), true), "a<|end|> b");
}

TEST_F(SharedTokenizer, SpmByteFallbackRoundTrips) {
    const Tokenizer t = load("ggml-vocab-llama-spm.gguf");
    const std::string text = "\xf0\x9f\xa6\x99 \xe1\x9a\x80 tab\there\n";  // llama emoji, Ogham space mark
    const auto ids = t.encode(text, false, false);
    EXPECT_EQ(t.decode(ids), text);
    // The emoji has no token: four byte tokens <0xF0><0x9F><0xA6><0x99> = ids 3 + byte.
    const std::vector<TokenId> emoji_bytes = {3 + 0xF0, 3 + 0x9F, 3 + 0xA6, 3 + 0x99};
    EXPECT_NE(std::search(ids.begin(), ids.end(), emoji_bytes.begin(), emoji_bytes.end()), ids.end())
        << fmt::format("{}", ids);
}

TEST_F(SharedTokenizer, InvalidUtf8EncodesAsReplacementCharacter) {
    for (const char* name : {"ggml-vocab-qwen2.5.gguf", "ggml-vocab-llama-spm.gguf"}) {
        const Tokenizer t = load(name);
        EXPECT_EQ(t.encode("a\xff"
                           "b\xe2\x82",
                           false, true),
                  t.encode("a\xef\xbf\xbd"
                           "b\xef\xbf\xbd",
                           false, true))
            << name;
    }
}

TEST_F(SharedTokenizer, EmptyInput) {
    EXPECT_TRUE(load("ggml-vocab-qwen2.5.gguf").encode("", true, true).empty());
    EXPECT_EQ(load("ggml-vocab-phi-3.gguf").encode("", true, true), std::vector<TokenId>{1});
    EXPECT_TRUE(load("ggml-vocab-phi-3.gguf").encode("", false, true).empty());
}

TEST_F(SharedTokenizer, OutOfRangeIdIsAnError) {
    const Tokenizer t = load("ggml-vocab-gpt-2.gguf");
    const std::vector<TokenId> bad = {50257};
    try {
        (void)t.decode(bad);
        FAIL();
    } catch (const Error& e) {
        EXPECT_EQ(e.code(), ErrorCode::InvalidArgument);
        EXPECT_NE(std::string(e.what()).find("50257"), std::string::npos);
    }
}

TEST(TokenizerErrors, UnknownModelNamesItAndListsSupported) {
    try {
        Tokenizer t(Vocab::from_parts("wordpiece", "default", {"a"}, {}, {}, {}));
        FAIL();
    } catch (const Error& e) {
        EXPECT_EQ(e.code(), ErrorCode::Tokenizer);
        const std::string msg = e.what();
        EXPECT_NE(msg.find("'wordpiece'"), std::string::npos) << msg;
        EXPECT_NE(msg.find("'gpt2'"), std::string::npos) << msg;
        EXPECT_NE(msg.find("'llama'"), std::string::npos) << msg;
    }
}

TEST(TokenizerErrors, UnknownPreTokenizerNamesItAndListsSupported) {
    try {
        Tokenizer t(Vocab::from_parts("gpt2", "deepseek-coder", {"a"}, {}, {}, {}));
        FAIL();
    } catch (const Error& e) {
        EXPECT_EQ(e.code(), ErrorCode::Tokenizer);
        const std::string msg = e.what();
        EXPECT_NE(msg.find("'deepseek-coder'"), std::string::npos) << msg;
        EXPECT_NE(msg.find("'qwen2'"), std::string::npos) << msg;
    }
}

TEST(TokenizerErrors, IncompleteByteAlphabetIsReported) {
    try {
        Tokenizer t(Vocab::from_parts("gpt2", "gpt-2", {"a", "b"}, {}, {}, {}));
        FAIL();
    } catch (const Error& e) {
        EXPECT_EQ(e.code(), ErrorCode::Tokenizer);
        EXPECT_NE(std::string(e.what()).find("byte 0x00"), std::string::npos) << e.what();
    }
}

// A tiny byte-level BPE vocabulary built by hand, to check merge order where the answer is known.
TEST(BpeModelTest, MergesApplyByRankNotPosition) {
    std::vector<std::string> tokens;
    for (int b = 0; b < 256; ++b) {
        std::string s;
        unicode::append_utf8(s, byte_to_codepoint(static_cast<uint8_t>(b)));
        tokens.push_back(s);
    }
    tokens.push_back("bc");   // 256
    tokens.push_back("ab");   // 257
    tokens.push_back("abc");  // 258
    tokens.push_back("bcd");  // 259
    // "bc" outranks "ab": "abcd" -> a + bc + d -> a + bcd, never ab + c + d.
    Tokenizer t(Vocab::from_parts("gpt2", "gpt-2", tokens, {}, {}, {"b c", "a b", "bc d", "ab c"}));
    EXPECT_EQ(t.encode("abcd", false, false), (std::vector<TokenId>{'a', 259}));
    EXPECT_EQ(t.encode("abc", false, false), (std::vector<TokenId>{'a', 256}));
    EXPECT_EQ(t.encode("abx", false, false), (std::vector<TokenId>{257, 'x'}));
}

}  // namespace
}  // namespace orcd::tokenizer

namespace orcd::tokenizer {
namespace {

// Pieces that random test texts are made of: letters, words, runs of spaces, tabs and newlines, punctuation, digits,
// other scripts (Latin-1, Cyrillic, CJK, Hangul, Ethiopic), an emoji, SentencePiece's "▁" and U+FFFD. All valid UTF-8.
std::vector<std::string> text_pieces() {
    return {"a",
            "e",
            "t",
            "h",
            " ",
            "  ",
            "   ",
            "in",
            "ing",
            "\n",
            "\t",
            "\xc3\xa9",
            "\xd0\xb0",
            "\xd0\xbf",
            "\xe4\xb8\x80",
            "\xe7\x9a\x84",
            "\xea\xb0\x80",
            "\xe1\x88\x80",
            "\xf0\x9f\xa6\x99",
            "0",
            "'",
            "{",
            "}",
            ".",
            "=",
            "\xe2\x96\x81",
            "\xef\xbf\xbd",
            "Hello",
            " world"};
}

// The short-word merge loop and the heap loop must agree on every word (the vectors only cover a few hundred).
TEST(BpeModelTest, ShortWordPathEqualsHeapPath) {
    ORCD_SKIP_WITHOUT_SHARED(vocab_dir());
    const gguf::File f = gguf::File::open(vocab_dir() / "ggml-vocab-qwen2.5.gguf");
    const Vocab v = Vocab::from_gguf(f);
    const BpeModel model(v, PreTokenizer::Qwen2, true);
    std::mt19937 rng(3);
    std::vector<std::string> alphabet = text_pieces();
    alphabet.emplace_back("\xff");  // invalid UTF-8: a BPE word's bytes are taken as they are
    for (int iter = 0; iter < 20000; ++iter) {
        std::string word;
        const int parts = 1 + static_cast<int>(rng() % 16);
        for (int k = 0; k < parts; ++k) word += alphabet[rng() % alphabet.size()];
        std::vector<TokenId> a, b;
        model.encode_word(word, a);
        model.encode_word_heap(word, b);
        ASSERT_EQ(a, b) << "word of " << word.size() << " bytes, iteration " << iter;
    }
}

// SentencePiece word by word (the Llama 2 and Phi-3 vocabularies) must give the tokens of one sequence of merges over
// the whole text, its definition: on random text of words, runs of spaces, punctuation, other scripts and characters
// without a token (byte fallback), and on llama.cpp's vector inputs.
TEST(SpmModelTest, WordByWordEqualsTheWholeText) {
    ORCD_SKIP_WITHOUT_SHARED(vocab_dir());
    const std::vector<std::string> alphabet = text_pieces();
    for (const char* name : {"ggml-vocab-phi-3.gguf", "ggml-vocab-llama-spm.gguf"}) {
        const gguf::File f = gguf::File::open(vocab_dir() / name);
        const Vocab v = Vocab::from_gguf(f);
        const SpmModel words(v), whole(v, SpmModel::Walk::WholeText);
        ASSERT_TRUE(words.encodes_word_by_word()) << name;
        ASSERT_FALSE(whole.encodes_word_by_word()) << name;
        auto check = [&](const std::string& text, bool starts_segment, const std::string& what) {
            std::vector<TokenId> a, b;
            words.encode(text, starts_segment, a);
            whole.encode(text, starts_segment, b);
            ASSERT_EQ(a, b) << name << ": " << what << " (" << text.size() << " bytes)";
        };
        std::mt19937 rng(11);
        for (int iter = 0; iter < 3000; ++iter) {
            std::string text;
            const int parts = 1 + static_cast<int>(rng() % 40);
            for (int k = 0; k < parts; ++k) text += alphabet[rng() % alphabet.size()];
            check(text, iter % 2 == 0, fmt::format("random text {}", iter));
        }
        const auto inputs = testing::read_vocab_inputs(vocab_dir() / (std::string(name) + ".inp"));
        for (size_t i = 0; i < inputs.size(); ++i) {
            if (!unicode::is_valid_utf8(inputs[i]))
                continue;  // the Tokenizer repairs invalid text before a model sees it
            check(inputs[i], true, fmt::format("vector input {}", i));
        }
    }
}

// A vocabulary with a token that holds a character followed by "▁" is encoded as one sequence: word by word, the
// merge of "a▁" and then "a▁b" across the word boundary could not happen.
TEST(SpmModelTest, AVocabularyWithASpaceInsideATokenIsNotSplitIntoWords) {
    std::vector<std::string> tokens;
    for (int b = 0; b < 256; ++b) tokens.push_back(fmt::format("<0x{:02X}>", b));
    const auto base = static_cast<TokenId>(tokens.size());
    for (const char* t : {"\xe2\x96\x81", "a", "b", "a\xe2\x96\x81",
                          "a\xe2\x96\x81"
                          "b"})
        tokens.emplace_back(t);
    std::vector<float> scores(tokens.size(), 0.0f);
    scores[base + 3] = -1.0f;
    scores[base + 4] = -0.5f;
    const Vocab v = Vocab::from_parts("llama", "default", tokens, scores, {}, {});
    const SpmModel model(v);
    EXPECT_FALSE(model.encodes_word_by_word());
    std::vector<TokenId> ids;
    model.encode("a b", true, ids);  // "▁a▁b"
    EXPECT_EQ(ids, (std::vector<TokenId>{base + 0, base + 4}));
}

}  // namespace
}  // namespace orcd::tokenizer
