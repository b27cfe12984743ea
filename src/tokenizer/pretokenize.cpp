#include "tokenizer/pretokenize.h"

#include "tokenizer/unicode.h"

namespace orcd::tokenizer {

namespace {

using unicode::kLetter;
using unicode::kNumber;
using unicode::kSpace;

// One matcher position: the text and its classes, with out-of-range reads answering "no class, no character".
struct Cursor {
    std::span<const char32_t> cps;
    std::span<const uint8_t> cls;
    size_t n;

    char32_t at(size_t i) const { return i < n ? cps[i] : 0xFFFFFFFF; }
    uint8_t cl(size_t i) const { return i < n ? cls[i] : 0; }
    bool letter(size_t i) const { return i < n && (cls[i] & kLetter); }
    bool number(size_t i) const { return i < n && (cls[i] & kNumber); }
    bool space(size_t i) const { return i < n && (cls[i] & kSpace); }
    // [^\s\p{L}\p{N}]
    bool other(size_t i) const { return i < n && (cls[i] & (kLetter | kNumber | kSpace)) == 0; }
    // The end of the run of one class that starts at i (i itself when cls[i] is not of it).
    size_t run(size_t i, bool (Cursor::*in_class)(size_t) const) const {
        while ((this->*in_class)(i)) ++i;
        return i;
    }
    size_t run_letters(size_t i) const { return run(i, &Cursor::letter); }
    size_t run_numbers(size_t i) const { return run(i, &Cursor::number); }
    size_t run_others(size_t i) const { return run(i, &Cursor::other); }
    size_t run_spaces(size_t i) const { return run(i, &Cursor::space); }
};

// 's|'t|'re|'ve|'m|'ll|'d at i (cps[i] == '\''); returns the end, or 0 for no match. With `fold`, letters match
// case-insensitively as Oniguruma's (?i) does: ASCII case plus U+017F LATIN SMALL LETTER LONG S, which folds to 's'.
size_t match_contraction(const Cursor& c, size_t i, bool fold) {
    auto is = [&](size_t k, char32_t lower) {
        const char32_t ch = c.at(k);
        if (ch == lower) return true;
        if (!fold) return false;
        if (ch == lower - 32) return true;  // ASCII upper case
        return lower == U's' && ch == 0x17F;
    };
    if (is(i + 1, U's') || is(i + 1, U't') || is(i + 1, U'm') || is(i + 1, U'd')) return i + 2;
    if ((is(i + 1, U'r') || is(i + 1, U'v')) && is(i + 2, U'e')) return i + 3;
    if (is(i + 1, U'l') && is(i + 2, U'l')) return i + 3;
    return 0;
}

// \s+(?!\S) then \s+ at a whitespace position i: the run, less its last character when a non-space follows
// (so that the space joins the next word), but never empty.
size_t match_spaces(const Cursor& c, size_t i) {
    const size_t j = c.run_spaces(i);
    if (j == c.n) return j;
    if (j - i >= 2) return j - 1;
    return j;
}

size_t next_gpt2(const Cursor& c, size_t i) {
    const char32_t ch = c.at(i);
    if (ch == U'\'') {
        if (size_t e = match_contraction(c, i, false)) return e;
    }
    // ' ?X+' for X in letters, numbers, others: the optional space binds only when an X follows it.
    const size_t s = (ch == U' ' && !c.space(i + 1) && i + 1 < c.n) ? i + 1 : i;
    if (c.letter(s)) return c.run_letters(s);
    if (c.number(s)) return c.run_numbers(s);
    if (c.other(s)) return c.run_others(s);
    return match_spaces(c, i);
}

bool is_crlf(char32_t ch) { return ch == U'\r' || ch == U'\n'; }

size_t next_qwen2(const Cursor& c, size_t i) {
    const char32_t ch = c.at(i);
    if (ch == U'\'') {
        if (size_t e = match_contraction(c, i, true)) return e;
    }
    // [^\r\n\p{L}\p{N}]?\p{L}+
    if (c.letter(i)) return c.run_letters(i);
    if (!is_crlf(ch) && !c.number(i) && c.letter(i + 1)) return c.run_letters(i + 1);
    // \p{N}
    if (c.number(i)) return i + 1;
    // ' ?[^\s\p{L}\p{N}]+[\r\n]*'
    {
        const size_t s = (ch == U' ' && c.other(i + 1)) ? i + 1 : i;
        if (c.other(s)) {
            size_t e = c.run_others(s);
            while (e < c.n && is_crlf(c.cps[e])) ++e;
            return e;
        }
    }
    // From here cps[i] is whitespace (every code point is a letter, a number, an "other" or a space).
    // \s*[\r\n]+ : the whitespace run up to and including its last CR/LF, if it has one.
    const size_t j = c.run_spaces(i);
    for (size_t k = j; k > i; --k) {
        if (is_crlf(c.cps[k - 1])) return k;
    }
    return match_spaces(c, i);
}

}  // namespace

void pretokenize(PreTokenizer kind, std::span<const char32_t> cps, std::span<const uint8_t> cls,
                 std::vector<uint32_t>& ends) {
    const Cursor c{cps, cls, cps.size()};
    size_t i = 0;
    while (i < c.n) {
        const size_t e = kind == PreTokenizer::Gpt2 ? next_gpt2(c, i) : next_qwen2(c, i);
        i = e > i ? e : i + 1;  // every branch consumes at least one code point; the guard only documents it
        ends.push_back(static_cast<uint32_t>(i));
    }
}

}  // namespace orcd::tokenizer
