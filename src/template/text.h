#pragma once
// Python's str semantics over UTF-8: indexes, lengths and slices count code points, case mapping and whitespace are
// Unicode-aware. Invalid UTF-8 bytes are taken one byte per code point (U+FFFD is never substituted).
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "common/utf8.h"

namespace orcd::tmpl::text {

std::vector<char32_t> decode(std::string_view s);
std::string encode(const std::vector<char32_t>& cps);
using ::orcd::append_utf8;          // common/utf8.h
size_t length(std::string_view s);  // in code points

bool is_space(char32_t cp);  // Python's str.isspace for one code point
bool is_alnum(char32_t cp);  // Python's str.isalnum for one code point (letters and numbers)
std::string upper(std::string_view s);
std::string lower(std::string_view s);
std::string capitalize(std::string_view s);
std::string title(std::string_view s);

// str.strip/lstrip/rstrip: with `chars` null, Unicode whitespace; else any code point of *chars.
std::string strip(std::string_view s, const std::string* chars, bool left, bool right);
// str.split(sep=None / sep, maxsplit).
std::vector<std::string> split(std::string_view s, const std::string* sep, int64_t maxsplit);
std::vector<std::string> rsplit(std::string_view s, const std::string* sep, int64_t maxsplit);
// str.splitlines() (keepends false).
std::vector<std::string> splitlines(std::string_view s);
std::string replace(std::string_view s, std::string_view old, std::string_view with, int64_t count);
// Python's repr of a str: quotes chosen as Python chooses, non-printable code points escaped.
std::string repr(std::string_view s);

// An entry of a character escaping table: a character and the text written for it. Read the other way, a table of
// an escape's letter and the character it stands for unescapes (the lexer's string literals).
struct CharEscape {
    char c;
    std::string_view as;
};
// The text for c in table, or nullptr where c has no entry (the tables are a handful of entries: a linear search).
constexpr const std::string_view* find_escape(std::span<const CharEscape> table, char c) {
    for (const CharEscape& e : table)
        if (e.c == c) return &e.as;
    return nullptr;
}

}  // namespace orcd::tmpl::text
