#pragma once
// UTF-8 encoding of one code point, written once for the tokenizer, the template engine and the grammar compiler.
#include <cstdint>
#include <string>

namespace orcd {

// Writes the 1-4 byte UTF-8 form of `cp` to `out` and returns its length. `cp` is at most U+10FFFF; surrogates are
// the caller's to refuse (the tokenizer maps bytes to code points that are never surrogates, the lexer checks).
inline int encode_utf8(char32_t cp, uint8_t out[4]) {
    if (cp < 0x80) {
        out[0] = static_cast<uint8_t>(cp);
        return 1;
    }
    if (cp < 0x800) {
        out[0] = static_cast<uint8_t>(0xC0 | (cp >> 6));
        out[1] = static_cast<uint8_t>(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        out[0] = static_cast<uint8_t>(0xE0 | (cp >> 12));
        out[1] = static_cast<uint8_t>(0x80 | ((cp >> 6) & 0x3F));
        out[2] = static_cast<uint8_t>(0x80 | (cp & 0x3F));
        return 3;
    }
    out[0] = static_cast<uint8_t>(0xF0 | (cp >> 18));
    out[1] = static_cast<uint8_t>(0x80 | ((cp >> 12) & 0x3F));
    out[2] = static_cast<uint8_t>(0x80 | ((cp >> 6) & 0x3F));
    out[3] = static_cast<uint8_t>(0x80 | (cp & 0x3F));
    return 4;
}

// Appends the UTF-8 form of `cp` to `out`.
inline void append_utf8(std::string& out, char32_t cp) {
    uint8_t bytes[4];
    out.append(reinterpret_cast<const char*>(bytes), static_cast<size_t>(encode_utf8(cp, bytes)));
}

}  // namespace orcd
