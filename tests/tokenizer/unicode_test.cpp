// UTF-8 decoding with replacement (expected values from Python's bytes.decode('utf-8', 'replace')), classes, NFC.
#include <gtest/gtest.h>

#include <cstdlib>
#include <random>

#include <utf8proc.h>

#include "tokenizer/unicode.h"

namespace orcd::tokenizer::unicode {
namespace {

std::u32string decode(std::string_view s) {
    std::vector<char32_t> cps;
    decode_utf8(s, cps);
    return std::u32string(cps.begin(), cps.end());
}

TEST(Unicode, InvalidSequencesBecomeReplacementLikePython) {
    struct Case {
        std::string bytes;
        std::u32string expected;
    };
    const Case cases[] = {
        {"\xe2\x82x", U"\ufffdx"},                          // truncated 3-byte sequence: one U+FFFD
        {"\xf0\x80\x80", U"\ufffd\ufffd\ufffd"},            // overlong lead: each byte alone
        {"\xed\xa0\x80", U"\ufffd\ufffd\ufffd"},            // surrogate
        {"\xc0\xaf", U"\ufffd\ufffd"},                      // never-valid lead
        {"\xf4\x90\x80\x80", U"\ufffd\ufffd\ufffd\ufffd"},  // above U+10FFFF
        {"\xf0\x9f\xa6", U"\ufffd"},                        // truncated at the end
        {"a\xff"
         "b",
         U"a\ufffdb"},
        {"\xe0\x9f\x80", U"\ufffd\ufffd\ufffd"},
        {"\xf1\x80\x80\xe1\x80\xc0", U"\ufffd\ufffd\ufffd"},
        {"\xe2\x82\xac\xf0\x9f\xa6\x99", U"\u20ac\U0001F999"},
    };
    for (const Case& c : cases) {
        EXPECT_EQ(decode(c.bytes), c.expected) << "input bytes of length " << c.bytes.size();
        EXPECT_EQ(is_valid_utf8(c.bytes), c.expected.find(U'\ufffd') == std::u32string::npos);
    }
}

TEST(Unicode, SanitizeReplacesOnlyInvalidParts) {
    EXPECT_EQ(sanitize_utf8("ok \xe2\x82\xac"), "ok \xe2\x82\xac");
    EXPECT_EQ(sanitize_utf8("a\xe2\x82"
                            "b"),
              "a\xef\xbf\xbd"
              "b");
    EXPECT_EQ(sanitize_utf8(std::string("\0\xff", 2)), std::string("\0\xef\xbf\xbd", 4));
}

TEST(Unicode, DecodeOneReportsTruncation) {
    const Decoded d = decode_one("\xf0\x9f\xa6", 0);
    EXPECT_FALSE(d.valid);
    EXPECT_TRUE(d.truncated);
    EXPECT_EQ(d.len, 3u);
    const Decoded e = decode_one(
        "\xf0\x9f"
        "a",
        0);
    EXPECT_FALSE(e.valid);
    EXPECT_FALSE(e.truncated);
    EXPECT_EQ(e.len, 2u);
}

TEST(Unicode, Classes) {
    EXPECT_EQ(classes(U'a'), kLetter);
    EXPECT_EQ(classes(U'\u00e9'), kLetter);
    EXPECT_EQ(classes(U'\u65e5'), kLetter);  // CJK: Lo
    EXPECT_EQ(classes(U'\u02b0'), kLetter);  // modifier letter: Lm
    EXPECT_EQ(classes(U'7'), kNumber);
    EXPECT_EQ(classes(U'\u00bd'), kNumber);  // No
    EXPECT_EQ(classes(U'\u2163'), kNumber);  // Nl (Roman numeral four)
    for (char32_t s : {U' ', U'\t', U'\n', U'\v', U'\f', U'\r', U'\u0085', U'\u00a0', U'\u1680', U'\u2000', U'\u200a',
                       U'\u2028', U'\u2029', U'\u202f', U'\u205f', U'\u3000'}) {
        EXPECT_EQ(classes(s), kSpace) << std::hex << static_cast<uint32_t>(s);
    }
    // Not White_Space although Python's str.isspace says so / although they look blank.
    for (char32_t s : {U'\u001c', U'\u001f', U'\u200b', U'\u180e', U'\ufeff'}) {
        EXPECT_EQ(classes(s), 0) << std::hex << static_cast<uint32_t>(s);
    }
    EXPECT_EQ(classes(U'\U0001F999'), 0);  // emoji: So
    EXPECT_EQ(classes(U'\u0301'), 0);      // combining mark: Mn
}

TEST(Unicode, Nfc) {
    EXPECT_EQ(nfc("e\xcc\x81"), "\xc3\xa9");                     // e + COMBINING ACUTE -> é
    EXPECT_EQ(nfc("\xe1\x84\x80\xe1\x85\xa1"), "\xea\xb0\x80");  // Hangul jamo -> syllable
    EXPECT_EQ(nfc("plain ascii"), "plain ascii");
    EXPECT_EQ(nfc("\xe2\x84\xab"), "\xc3\x85");  // ANGSTROM SIGN -> Å (singleton)
}

}  // namespace
}  // namespace orcd::tokenizer::unicode

// nfc() normalizes only spans around non-inert code points; it must equal utf8proc's NFC of the whole text.
namespace orcd::tokenizer::unicode {
namespace {

std::string whole_nfc(const std::string& s) {
    utf8proc_uint8_t* p = utf8proc_NFC(reinterpret_cast<const utf8proc_uint8_t*>(s.c_str()));
    std::string out(reinterpret_cast<const char*>(p));
    std::free(p);
    return out;
}

TEST(Unicode, SpanNfcEqualsWholeTextNfc) {
    // Starters, combining marks (reordered by class), composition seconds with class 0 (Oriya, Hangul jamo),
    // precomposed letters, singletons, kana with dakuten, CJK.
    const char32_t pool[] = {U'a',   U'e',   U'o',   U' ',   U'x',   0x301,  0x300,  0x323,  0x308,  0x327,
                             0xC5,   0xE9,   0x212B, 0x0B47, 0x0B3E, 0x0B57, 0x1100, 0x1161, 0x11A8, 0xAC00,
                             0x304B, 0x3099, 0x304C, 0x4E00, 0x65E5, 0x1E0B, 0x0344, 0x0F73, 0x1F600};
    std::mt19937 rng(7);
    for (int iter = 0; iter < 3000; ++iter) {
        std::string s;
        const int n = 1 + static_cast<int>(rng() % 12);
        for (int k = 0; k < n; ++k) append_utf8(s, pool[rng() % std::size(pool)]);
        ASSERT_EQ(nfc(s), whole_nfc(s)) << "iteration " << iter;
        if (!needs_nfc(s)) {
            ASSERT_EQ(whole_nfc(s), s);
        }
    }
}

}  // namespace
}  // namespace orcd::tokenizer::unicode
