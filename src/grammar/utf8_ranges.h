#pragma once
// Code point ranges -> the UTF-8 byte sequences that encode them, as runs of byte ranges: [U+0080, U+07FF] is
// [C2-DF][80-BF]. Lets a character class become byte-level alternatives. Surrogates (U+D800..U+DFFF) have no UTF-8
// encoding and are left out.
#include <cstdint>
#include <utility>
#include <vector>

namespace orcd::grammar {

struct ByteRange {
    uint8_t lo, hi;
};
using Utf8Sequence = std::vector<ByteRange>;  // 1 to 4 ranges, one per byte

// Each sequence matches a disjoint part of [lo, hi]; together they match exactly its encodable code points.
std::vector<Utf8Sequence> utf8_sequences(uint32_t lo, uint32_t hi);

// Appends the UTF-8 encoding of a code point (<= U+10FFFF, not a surrogate).
void append_utf8(uint32_t cp, std::vector<uint8_t>& out);

// Sorts, merges and optionally complements (within [0, U+10FFFF]) a list of inclusive code point ranges.
std::vector<std::pair<uint32_t, uint32_t>> normalize_ranges(std::vector<std::pair<uint32_t, uint32_t>> ranges,
                                                            bool negate);

}  // namespace orcd::grammar
