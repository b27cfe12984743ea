#include "template/text.h"

#include <algorithm>
#include <cctype>
#include <initializer_list>
#include <optional>
#include <fmt/format.h>
#include <utf8proc.h>

namespace orcd::tmpl::text {

namespace {

// One code point at s[i]; an invalid sequence yields its first byte as the code point, with len 1.
char32_t next_cp(std::string_view s, size_t& i) {
    const auto c = static_cast<unsigned char>(s[i]);
    size_t len = c < 0x80 ? 1 : (c >> 5) == 0x6 ? 2 : (c >> 4) == 0xE ? 3 : (c >> 3) == 0x1E ? 4 : 0;
    if (len == 0 || i + len > s.size()) {
        ++i;
        return c;
    }
    char32_t cp = len == 1 ? c : len == 2 ? (c & 0x1F) : len == 3 ? (c & 0x0F) : (c & 0x07);
    for (size_t k = 1; k < len; ++k) {
        const auto cc = static_cast<unsigned char>(s[i + k]);
        if ((cc & 0xC0) != 0x80) {
            ++i;
            return c;
        }
        cp = (cp << 6) | (cc & 0x3F);
    }
    i += len;
    return cp;
}

std::string map_cps(std::string_view s, char32_t (*f)(char32_t)) {
    std::string out;
    out.reserve(s.size());
    for (size_t i = 0; i < s.size();) append_utf8(out, f(next_cp(s, i)));
    return out;
}

char32_t to_upper(char32_t c) { return static_cast<char32_t>(utf8proc_toupper(static_cast<utf8proc_int32_t>(c))); }
char32_t to_lower(char32_t c) { return static_cast<char32_t>(utf8proc_tolower(static_cast<utf8proc_int32_t>(c))); }

// Whether c's Unicode general category is one of `cats`: Python defines its str predicates by category.
bool in_category(char32_t c, std::initializer_list<utf8proc_category_t> cats) {
    const utf8proc_category_t cat = utf8proc_category(static_cast<utf8proc_int32_t>(c));
    return std::find(cats.begin(), cats.end(), cat) != cats.end();
}

bool is_cased_letter(char32_t c) {
    return in_category(c, {UTF8PROC_CATEGORY_LU, UTF8PROC_CATEGORY_LL, UTF8PROC_CATEGORY_LT});
}

// Python's str.isprintable for one code point: everything but the "Other" and "Separator" categories, except space.
bool is_printable(char32_t c) {
    if (c == ' ') return true;
    if (c > 0x10FFFF) return false;
    return !in_category(c, {UTF8PROC_CATEGORY_CC, UTF8PROC_CATEGORY_CF, UTF8PROC_CATEGORY_CS, UTF8PROC_CATEGORY_CO,
                            UTF8PROC_CATEGORY_CN, UTF8PROC_CATEGORY_ZL, UTF8PROC_CATEGORY_ZP, UTF8PROC_CATEGORY_ZS});
}

bool in_set(char32_t c, const std::vector<char32_t>& set) {
    for (char32_t x : set)
        if (x == c) return true;
    return false;
}

}  // namespace

std::vector<char32_t> decode(std::string_view s) {
    std::vector<char32_t> out;
    out.reserve(s.size());
    for (size_t i = 0; i < s.size();) {
        const size_t start = i;
        const char32_t cp = next_cp(s, i);
        // An invalid byte is kept as a marker above the Unicode range so that encode() restores the same byte.
        out.push_back(i - start == 1 && cp >= 0x80 ? 0x110000 + cp : cp);
    }
    return out;
}

std::string encode(const std::vector<char32_t>& cps) {
    std::string out;
    out.reserve(cps.size());
    for (char32_t c : cps) {
        if (c >= 0x110000)
            out += static_cast<char>(c - 0x110000);
        else
            append_utf8(out, c);
    }
    return out;
}

size_t length(std::string_view s) {
    size_t n = 0;
    for (size_t i = 0; i < s.size(); ++n) next_cp(s, i);
    return n;
}

bool is_space(char32_t c) {
    if (c == ' ' || (c >= 0x09 && c <= 0x0D) || (c >= 0x1C && c <= 0x1F) || c == 0x85) return true;
    if (c < 0x80 || c > 0x10FFFF) return false;
    return in_category(c, {UTF8PROC_CATEGORY_ZS, UTF8PROC_CATEGORY_ZL, UTF8PROC_CATEGORY_ZP});
}

bool is_alnum(char32_t c) {
    if (c < 0x80) return std::isalnum(static_cast<int>(c)) != 0;
    if (c > 0x10FFFF) return false;
    return in_category(c, {UTF8PROC_CATEGORY_LU, UTF8PROC_CATEGORY_LL, UTF8PROC_CATEGORY_LT, UTF8PROC_CATEGORY_LM,
                           UTF8PROC_CATEGORY_LO, UTF8PROC_CATEGORY_ND, UTF8PROC_CATEGORY_NL, UTF8PROC_CATEGORY_NO});
}

std::string upper(std::string_view s) { return map_cps(s, to_upper); }
std::string lower(std::string_view s) { return map_cps(s, to_lower); }

namespace {

// s with each code point upper-cased where upper_after(the code point before it; none for the first) holds and
// lower-cased elsewhere: capitalize and title differ only in that rule.
template <typename UpperAfter>
std::string recase(std::string_view s, UpperAfter upper_after) {
    std::string out;
    std::optional<char32_t> prev;
    for (size_t i = 0; i < s.size();) {
        const char32_t c = next_cp(s, i);
        append_utf8(out, upper_after(prev) ? to_upper(c) : to_lower(c));
        prev = c;
    }
    return out;
}

}  // namespace

std::string capitalize(std::string_view s) {
    return recase(s, [](std::optional<char32_t> prev) { return !prev; });
}

// Python's str.title: a word starts after anything but a cased letter.
std::string title(std::string_view s) {
    return recase(s, [](std::optional<char32_t> prev) { return !prev || !is_cased_letter(*prev); });
}

std::string strip(std::string_view s, const std::string* chars, bool left, bool right) {
    const std::vector<char32_t> cps = decode(s);
    const std::vector<char32_t> set = chars ? decode(*chars) : std::vector<char32_t>{};
    auto strippable = [&](char32_t c) { return chars ? in_set(c, set) : is_space(c); };
    size_t b = 0, e = cps.size();
    if (left)
        while (b < e && strippable(cps[b])) ++b;
    if (right)
        while (e > b && strippable(cps[e - 1])) --e;
    return encode(std::vector<char32_t>(cps.begin() + static_cast<std::ptrdiff_t>(b),
                                        cps.begin() + static_cast<std::ptrdiff_t>(e)));
}

std::vector<std::string> split(std::string_view s, const std::string* sep, int64_t maxsplit) {
    std::vector<std::string> out;
    if (sep) {
        if (sep->empty()) throw std::invalid_argument("empty separator");
        size_t pos = 0;
        while (maxsplit < 0 || static_cast<int64_t>(out.size()) < maxsplit) {
            const size_t f = s.find(*sep, pos);
            if (f == std::string_view::npos) break;
            out.emplace_back(s.substr(pos, f - pos));
            pos = f + sep->size();
        }
        out.emplace_back(s.substr(pos));
        return out;
    }
    // Runs of whitespace separate; leading/trailing whitespace gives no empty strings.
    const std::vector<char32_t> cps = decode(s);
    size_t i = 0;
    while (i < cps.size()) {
        while (i < cps.size() && is_space(cps[i])) ++i;
        if (i == cps.size()) break;
        if (maxsplit >= 0 && static_cast<int64_t>(out.size()) == maxsplit) {
            size_t e = cps.size();
            while (e > i && is_space(cps[e - 1])) --e;
            out.push_back(
                encode({cps.begin() + static_cast<std::ptrdiff_t>(i), cps.begin() + static_cast<std::ptrdiff_t>(e)}));
            break;
        }
        size_t j = i;
        while (j < cps.size() && !is_space(cps[j])) ++j;
        out.push_back(
            encode({cps.begin() + static_cast<std::ptrdiff_t>(i), cps.begin() + static_cast<std::ptrdiff_t>(j)}));
        i = j;
    }
    return out;
}

std::vector<std::string> rsplit(std::string_view s, const std::string* sep, int64_t maxsplit) {
    if (maxsplit < 0 || !sep) return split(s, sep, maxsplit);  // without a limit both directions agree
    if (sep->empty()) throw std::invalid_argument("empty separator");
    std::vector<std::string> out;
    size_t end = s.size();
    while (static_cast<int64_t>(out.size()) < maxsplit) {
        if (end < sep->size()) break;
        const size_t f = s.rfind(*sep, end - sep->size());
        if (f == std::string_view::npos) break;
        out.emplace_back(s.substr(f + sep->size(), end - f - sep->size()));
        end = f;
    }
    out.emplace_back(s.substr(0, end));
    return {out.rbegin(), out.rend()};
}

std::vector<std::string> splitlines(std::string_view s) {
    std::vector<std::string> out;
    const std::vector<char32_t> cps = decode(s);
    size_t start = 0;
    for (size_t i = 0; i < cps.size(); ++i) {
        const char32_t c = cps[i];
        const bool brk = c == '\n' || c == '\r' || c == 0x0B || c == 0x0C || (c >= 0x1C && c <= 0x1E) || c == 0x85 ||
                         c == 0x2028 || c == 0x2029;
        if (!brk) continue;
        out.push_back(
            encode({cps.begin() + static_cast<std::ptrdiff_t>(start), cps.begin() + static_cast<std::ptrdiff_t>(i)}));
        if (c == '\r' && i + 1 < cps.size() && cps[i + 1] == '\n') ++i;
        start = i + 1;
    }
    if (start < cps.size()) out.push_back(encode({cps.begin() + static_cast<std::ptrdiff_t>(start), cps.end()}));
    return out;
}

std::string replace(std::string_view s, std::string_view old, std::string_view with, int64_t count) {
    std::string out;
    if (old.empty()) {
        // Python inserts `with` before every code point and at the end.
        int64_t n = 0;
        size_t i = 0;
        while (i <= s.size()) {
            if (count < 0 || n < count) {
                out += with;
                ++n;
            }
            if (i == s.size()) break;
            const size_t start = i;
            next_cp(s, i);
            out.append(s.substr(start, i - start));
        }
        return out;
    }
    size_t pos = 0;
    int64_t n = 0;
    while (count < 0 || n < count) {
        const size_t f = s.find(old, pos);
        if (f == std::string_view::npos) break;
        out.append(s.substr(pos, f - pos));
        out.append(with);
        pos = f + old.size();
        ++n;
    }
    out.append(s.substr(pos));
    return out;
}

std::string repr(std::string_view s) {
    const bool has_single = s.find('\'') != std::string_view::npos;
    const bool has_double = s.find('"') != std::string_view::npos;
    const char quote = has_single && !has_double ? '"' : '\'';
    std::string out(1, quote);
    for (size_t i = 0; i < s.size();) {
        const size_t start = i;
        const char32_t c = next_cp(s, i);
        if (c == static_cast<char32_t>(quote) || c == '\\') {
            out += '\\';
            out += static_cast<char>(c);
        } else if (c == '\n') {
            out += "\\n";
        } else if (c == '\r') {
            out += "\\r";
        } else if (c == '\t') {
            out += "\\t";
        } else if (i - start == 1 && c >= 0x80) {
            out += fmt::format("\\x{:02x}", static_cast<unsigned>(c));  // an invalid byte (Python would not have it)
        } else if (!is_printable(c)) {
            if (c < 0x100)
                out += fmt::format("\\x{:02x}", static_cast<unsigned>(c));
            else if (c < 0x10000)
                out += fmt::format("\\u{:04x}", static_cast<unsigned>(c));
            else
                out += fmt::format("\\U{:08x}", static_cast<unsigned>(c));
        } else {
            out.append(s.substr(start, i - start));
        }
    }
    out += quote;
    return out;
}

}  // namespace orcd::tmpl::text
