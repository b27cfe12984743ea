#include <gtest/gtest.h>

#include "grammar/utf8_ranges.h"

using namespace orcd::grammar;

namespace {

// Brute force reference: a code point is covered iff its encoding matches exactly one sequence.
int count_matches(const std::vector<Utf8Sequence>& seqs, uint32_t cp) {
    std::vector<uint8_t> enc;
    append_utf8(cp, enc);
    int n = 0;
    for (const auto& s : seqs) {
        if (s.size() != enc.size()) continue;
        bool ok = true;
        for (size_t i = 0; i < s.size(); ++i) ok = ok && enc[i] >= s[i].lo && enc[i] <= s[i].hi;
        n += ok;
    }
    return n;
}

}  // namespace

TEST(Utf8Ranges, EncodesLikeTheStandard) {
    std::vector<uint8_t> out;
    append_utf8(0x20AC, out);  // EURO SIGN: E2 82 AC (RFC 3629 example)
    EXPECT_EQ(out, (std::vector<uint8_t>{0xE2, 0x82, 0xAC}));
    out.clear();
    append_utf8(0x10348, out);  // F0 90 8D 88
    EXPECT_EQ(out, (std::vector<uint8_t>{0xF0, 0x90, 0x8D, 0x88}));
}

TEST(Utf8Ranges, SequencesCoverExactlyTheRange) {
    const std::pair<uint32_t, uint32_t> cases[] = {{0x41, 0x5A},    {0x7F, 0x80},     {0x3B1, 0x3C9},
                                                   {0x100, 0xFFFF}, {0xD000, 0xE100}, {0x1F600, 0x1F64F},
                                                   {0, 0x10FFFF}};
    for (auto [lo, hi] : cases) {
        const auto seqs = utf8_sequences(lo, hi);
        // Sample densely around the edges and sparsely inside.
        for (uint32_t cp = lo > 300 ? lo - 300 : 0; cp <= std::min<uint32_t>(hi + 300, 0x10FFFF);
             cp += cp % 97 == 0 ? 1 : 13) {
            if (cp >= 0xD800 && cp <= 0xDFFF) continue;
            EXPECT_EQ(count_matches(seqs, cp), cp >= lo && cp <= hi ? 1 : 0)
                << std::hex << lo << "-" << hi << " cp " << cp;
        }
    }
}

TEST(Utf8Ranges, NormalizeMergesAndNegates) {
    auto r = normalize_ranges({{'c', 'f'}, {'a', 'b'}, {'x', 'x'}}, false);
    ASSERT_EQ(r.size(), 2u);
    EXPECT_EQ(r[0], (std::pair<uint32_t, uint32_t>{'a', 'f'}));
    auto n = normalize_ranges({{'a', 'z'}}, true);
    ASSERT_EQ(n.size(), 2u);
    EXPECT_EQ(n[0], (std::pair<uint32_t, uint32_t>{0, 'a' - 1}));
    EXPECT_EQ(n[1], (std::pair<uint32_t, uint32_t>{'z' + 1, 0x10FFFF}));
}
