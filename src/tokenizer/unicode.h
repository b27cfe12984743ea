#pragma once
// The few Unicode operations the tokenizers need: UTF-8 decoding that never fails (invalid bytes become U+FFFD the
// way Python's bytes.decode('utf-8', 'replace') does it, so that our ids match the Hugging Face tokenizers fed with
// that same replaced string), character classes for the pre-tokenizer regexes, and NFC. Categories and normalization
// come from utf8proc; nothing here is a hand-made Unicode table.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "common/utf8.h"

namespace orcd::tokenizer::unicode {

inline constexpr char32_t kReplacement = 0xFFFD;

// Result of reading one UTF-8 sequence at a position.
struct Decoded {
    char32_t cp = 0;
    uint32_t len = 0;        // bytes consumed (>= 1 unless at end of input)
    bool valid = false;      // false: `len` bytes form a maximal invalid subpart, to be replaced by one U+FFFD
    bool truncated = false;  // invalid only because the input ended inside a sequence that could still complete
};

// Reads the sequence starting at s[i] (i < s.size()). Invalid input follows the Unicode "maximal subpart" practice
// (Unicode 15, section 3.9, table 3-8), which is what Python's decoder does.
Decoded decode_one(std::string_view s, size_t i);

// Appends the code points of s, invalid subparts replaced by U+FFFD. `offsets`, when given, receives the byte offset
// of each code point plus a final s.size().
void decode_utf8(std::string_view s, std::vector<char32_t>& out, std::vector<uint32_t>* offsets = nullptr);

bool is_valid_utf8(std::string_view s);
// s with every maximal invalid subpart replaced by U+FFFD (EF BF BD); returns s unchanged when it is valid.
std::string sanitize_utf8(std::string_view s);
using ::orcd::append_utf8;  // common/utf8.h

// Character classes of the pre-tokenizer regexes: \p{L}, \p{N} and \s (White_Space, which is exactly the categories
// Zs, Zl, Zp plus the controls U+0009..U+000D and U+0085).
enum Class : uint8_t { kLetter = 1, kNumber = 2, kSpace = 4 };
uint8_t classes(char32_t cp);
// classes(cp), plus kNfcInert when NFC can neither change cp nor combine it with a neighbour (see unicode.cpp): one
// property lookup serves both the pre-tokenizer and the decision to normalize.
inline constexpr uint8_t kNfcInert = 8;
uint8_t char_info(char32_t cp);

// NFC of valid UTF-8 (callers sanitize first). Only the spans around code points that normalization can touch are
// passed to utf8proc; the rest is copied.
std::string nfc(std::string_view valid_utf8);
// False when NFC leaves the text unchanged for certain (every code point is "inert", see unicode.cpp); cheap.
bool needs_nfc(std::string_view valid_utf8);

}  // namespace orcd::tokenizer::unicode
