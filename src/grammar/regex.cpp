#include "grammar/regex.h"

#include <fmt/format.h>

#include <algorithm>
#include <vector>

#include "common/error.h"
#include "grammar/gbnf_text.h"
#include "grammar/utf8_ranges.h"

namespace orcd::grammar {

namespace {

using Ranges = std::vector<std::pair<uint32_t, uint32_t>>;

const Ranges kDigit{{'0', '9'}};
const Ranges kWord{{'0', '9'}, {'A', 'Z'}, {'_', '_'}, {'a', 'z'}};
const Ranges kSpace{{'\t', '\r'}, {' ', ' '}};

std::string json_escape_of(uint32_t c) {
    switch (c) {
        case '"': return "\\\"";
        case '\\': return "\\\\";
        case '\n': return "\\n";
        case '\r': return "\\r";
        case '\t': return "\\t";
        case '\f': return "\\f";
        case '\b': return "\\b";
        default: return fmt::format("\\u{:04x}", c);
    }
}

// The GBNF for one character out of `set`, as it appears inside a JSON string.
std::string set_expr(const Ranges& set) {
    Ranges plain;
    std::vector<std::string> parts;
    for (auto [lo, hi] : normalize_ranges(set, false)) {
        for (uint32_t c = lo; c <= hi && c < 0x20; ++c) parts.push_back(gbnf_literal(json_escape_of(c)));
        if (lo <= '"' && '"' <= hi) parts.push_back(gbnf_literal(json_escape_of('"')));
        if (lo <= '\\' && '\\' <= hi) parts.push_back(gbnf_literal(json_escape_of('\\')));
        // What is left of [lo, hi] after cutting out controls, '"', '\' and the surrogates (not characters).
        const uint32_t cuts[][2] = {{0, 0x1F}, {'"', '"'}, {'\\', '\\'}, {0xD800, 0xDFFF}};
        uint32_t a = lo;
        for (const auto& cut : cuts) {
            if (a > hi) break;
            if (cut[1] < a) continue;
            if (cut[0] > a) plain.push_back({a, std::min(hi, cut[0] - 1)});
            a = std::max(a, cut[1] + 1);
        }
        if (a <= hi) plain.push_back({a, hi});
    }
    if (!plain.empty()) parts.insert(parts.begin(), gbnf_class(plain));
    if (parts.size() == 1) return parts[0];
    std::string out = "(";
    for (size_t i = 0; i < parts.size(); ++i) out += (i ? " | " : "") + parts[i];
    return out + ")";
}

class RegexParser {
public:
    RegexParser(std::string_view pattern, const GrammarLimits& limits, uint32_t max_repeat)
        : limits_(limits), max_repeat_(max_repeat) {
        if (pattern.size() > limits.max_pattern_bytes) {
            throw Error(ErrorCode::InvalidArgument, fmt::format("pattern of {} bytes exceeds the limit of {} bytes",
                                                                pattern.size(), limits.max_pattern_bytes));
        }
        // Decode to code points (the schema text was valid UTF-8 JSON, so a bad sequence here is a bug upstream;
        // still refused rather than trusted).
        for (size_t i = 0; i < pattern.size();) {
            const auto c = static_cast<unsigned char>(pattern[i]);
            const size_t n = c < 0x80 ? 1 : c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : c >= 0xC0 ? 2 : 0;
            if (n == 0 || i + n > pattern.size()) fail_at(i, "invalid UTF-8");
            uint32_t cp = n == 1 ? c : c & (0xFF >> (n + 1));
            for (size_t k = 1; k < n; ++k) cp = (cp << 6) | (static_cast<unsigned char>(pattern[i + k]) & 0x3F);
            cps_.push_back(cp);
            i += n;
        }
    }

    std::string parse() {
        const bool anchored_start = peek() == '^';
        if (anchored_start) ++pos_;
        std::string body = parse_alternation();
        bool anchored_end = false;
        if (peek() == '$') {
            anchored_end = true;
            ++pos_;
        }
        if (pos_ < cps_.size()) {
            if (cps_[pos_] == ')') fail("unbalanced ')'");
            fail(fmt::format("'{}' is only supported at the end", static_cast<char>(cps_[pos_])));
        }
        const std::string free = max_repeat_ ? fmt::format("char{{0,{}}}", max_repeat_) : "char*";
        std::string out;
        if (!anchored_start) out += free + " ";
        out += "(" + (body.empty() ? std::string("\"\"") : body) + ")";
        if (!anchored_end) out += " " + free;
        return out;
    }

private:
    uint32_t peek(size_t ahead = 0) const { return pos_ + ahead < cps_.size() ? cps_[pos_ + ahead] : 0; }
    bool at_end() const { return pos_ >= cps_.size(); }

    [[noreturn]] void fail_at(size_t where, std::string_view what) const {
        throw Error(ErrorCode::InvalidArgument, fmt::format("pattern: {} at offset {}", what, where));
    }
    [[noreturn]] void fail(std::string_view what) const { fail_at(pos_, what); }

    std::string parse_alternation() {
        std::string out = parse_sequence();
        bool many = false;
        while (!at_end() && peek() == '|') {
            ++pos_;
            out += " | " + nonempty(parse_sequence());
            many = true;
        }
        return many ? nonempty_first(out) : out;
    }
    static std::string nonempty(const std::string& s) { return s.empty() ? "\"\"" : s; }
    static std::string nonempty_first(const std::string& s) { return s.rfind(" | ", 0) == 0 ? "\"\"" + s : s; }

    std::string parse_sequence() {
        std::string out;
        while (!at_end()) {
            const uint32_t c = peek();
            if (c == '|' || c == ')') break;
            if (c == '$' && pos_ + 1 == cps_.size()) break;
            std::string atom = parse_atom();
            atom = parse_quantifier(std::move(atom));
            if (!out.empty()) out += ' ';
            out += atom;
        }
        return out;
    }

    uint32_t parse_number() {
        uint64_t v = 0;
        const size_t start = pos_;
        while (!at_end() && peek() >= '0' && peek() <= '9') {
            v = v * 10 + (peek() - '0');
            if (v > limits_.max_repetition) {
                fail(fmt::format("repetition bound above the limit {}", limits_.max_repetition));
            }
            ++pos_;
        }
        if (pos_ == start) fail("expected a number in the repetition");
        return static_cast<uint32_t>(v);
    }

    std::string parse_quantifier(std::string atom) {
        const uint32_t c = peek();
        std::string q;
        if (c == '*' || c == '+' || c == '?') {
            q = std::string(1, static_cast<char>(c));
            if (c != '?' && max_repeat_) {
                q = fmt::format("{{{},{}}}", c == '+' ? 1 : 0, std::max<uint32_t>(1, max_repeat_));
            }
            ++pos_;
        } else if (c == '{' && peek(1) >= '0' && peek(1) <= '9') {
            ++pos_;
            const uint32_t m = parse_number();
            q = fmt::format("{{{}", m);
            if (peek() == ',') {
                ++pos_;
                if (peek() == '}') {
                    q += max_repeat_ ? fmt::format(",{}", std::max(m, max_repeat_)) : ",";
                } else {
                    const uint32_t n = parse_number();
                    if (n < m) fail(fmt::format("repetition {{{},{}}} has its bounds reversed", m, n));
                    q += fmt::format(",{}", n);
                }
            }
            if (peek() != '}') fail("expected '}' to close the repetition");
            ++pos_;
            q += "}";
        } else {
            return atom;
        }
        if (peek() == '?') ++pos_;  // lazy: the same language
        if (peek() == '*' || peek() == '+' || peek() == '?' || (peek() == '{' && peek(1) >= '0' && peek(1) <= '9')) {
            fail("multiple repeat (possessive or nested quantifier without a group)");
        }
        return "(" + atom + ")" + q;
    }

    // An escape after '\' inside or outside a class; appends to `set` and returns true for a character set,
    // returns false for a single literal code point stored in *literal.
    bool parse_escape(Ranges& set, uint32_t* literal, bool in_class) {
        if (at_end()) fail("pattern ends with a lone backslash");
        const uint32_t e = peek();
        ++pos_;
        auto hex = [&](int digits) {
            uint32_t v = 0;
            for (int i = 0; i < digits; ++i) {
                const uint32_t h = peek();
                int d = h >= '0' && h <= '9'   ? int(h - '0')
                        : h >= 'a' && h <= 'f' ? int(h - 'a' + 10)
                        : h >= 'A' && h <= 'F' ? int(h - 'A' + 10)
                                               : -1;
                if (d < 0) fail(fmt::format("expected {} hexadecimal digits", digits));
                v = v * 16 + static_cast<uint32_t>(d);
                ++pos_;
            }
            return v;
        };
        auto add_negated = [&](const Ranges& r) {
            for (auto x : normalize_ranges(r, true)) set.push_back(x);
        };
        switch (e) {
            case 'd': set.insert(set.end(), kDigit.begin(), kDigit.end()); return true;
            case 'w': set.insert(set.end(), kWord.begin(), kWord.end()); return true;
            case 's': set.insert(set.end(), kSpace.begin(), kSpace.end()); return true;
            case 'D': add_negated(kDigit); return true;
            case 'W': add_negated(kWord); return true;
            case 'S': add_negated(kSpace); return true;
            case 'n': *literal = '\n'; return false;
            case 'r': *literal = '\r'; return false;
            case 't': *literal = '\t'; return false;
            case 'f': *literal = '\f'; return false;
            case 'v': *literal = '\v'; return false;
            case 'x': *literal = hex(2); return false;
            case 'u': *literal = hex(4); break;
            default:
                if (e == 'b' && in_class) {
                    *literal = '\b';
                    return false;
                }
                if ((e >= 'a' && e <= 'z') || (e >= 'A' && e <= 'Z') || (e >= '0' && e <= '9')) {
                    --pos_;
                    fail(
                        fmt::format("unsupported escape '\\{}' (backreferences, word boundaries and Unicode "
                                    "properties are not supported)",
                                    static_cast<char>(e)));
                }
                *literal = e;  // escaped punctuation stands for itself
                return false;
        }
        if (*literal >= 0xD800 && *literal <= 0xDFFF) fail("surrogate escapes are not supported");
        return false;
    }

    std::string parse_atom() {
        const size_t start = pos_;
        const uint32_t c = peek();
        ++pos_;
        switch (c) {
            case '(': {
                if (peek() == '?') {
                    if (peek(1) == ':') {
                        pos_ += 2;
                    } else {
                        fail_at(start, "unsupported group '(?' (only '(?:' is supported; no lookaround or flags)");
                    }
                }
                if (++depth_ > limits_.max_nesting) {
                    fail(fmt::format("groups nested deeper than {}", limits_.max_nesting));
                }
                std::string inner = parse_alternation();
                --depth_;
                if (peek() != ')') fail_at(start, "unclosed '('");
                ++pos_;
                return "(" + nonempty(inner) + ")";
            }
            case '[': return parse_class(start);
            case '.': return set_expr(normalize_ranges({{'\n', '\n'}}, true));
            case '\\': {
                Ranges set;
                uint32_t lit = 0;
                if (parse_escape(set, &lit, false)) return set_expr(set);
                return set_expr({{lit, lit}});
            }
            case '*':
            case '+':
            case '?': fail_at(start, "nothing to repeat");
            case '{':
                if (peek() >= '0' && peek() <= '9') fail_at(start, "nothing to repeat");
                return set_expr({{c, c}});
            case '^': fail_at(start, "'^' is only supported at the start");
            case '$': fail_at(start, "'$' is only supported at the end");
            default: return set_expr({{c, c}});
        }
    }

    std::string parse_class(size_t start) {
        bool negate = false;
        if (peek() == '^') {
            negate = true;
            ++pos_;
        }
        Ranges set;
        bool first = true;
        for (;;) {
            if (at_end()) fail_at(start, "unclosed '['");
            uint32_t c = peek();
            if (c == ']' && !first) {
                ++pos_;
                break;
            }
            first = false;
            ++pos_;
            uint32_t lo = c;
            if (c == '\\') {
                if (parse_escape(set, &lo, true)) continue;
            } else if (c == '[' && peek() == ':') {
                fail("POSIX classes [:...:] are not supported");
            }
            uint32_t hi = lo;
            if (peek() == '-' && peek(1) != ']' && pos_ + 1 < cps_.size()) {
                ++pos_;
                hi = peek();
                ++pos_;
                if (hi == '\\') {
                    Ranges unused;
                    if (parse_escape(unused, &hi, true)) fail("a class escape cannot end a range");
                }
                if (hi < lo) fail("character range out of order");
            }
            set.push_back({lo, hi});
        }
        const Ranges chars = normalize_ranges(set, negate);
        if (chars.empty()) fail_at(start, "character class matches nothing");
        return set_expr(chars);
    }

    const GrammarLimits& limits_;
    uint32_t max_repeat_;
    std::vector<uint32_t> cps_;
    size_t pos_ = 0;
    uint32_t depth_ = 0;
};

}  // namespace

std::string regex_to_gbnf(std::string_view pattern, const GrammarLimits& limits, uint32_t max_repeat) {
    return RegexParser(pattern, limits, max_repeat).parse();
}

}  // namespace orcd::grammar
