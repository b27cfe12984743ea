#include "grammar/gbnf.h"

#include <fmt/format.h>

#include "common/error.h"
#include "grammar/builder.h"

namespace orcd::grammar {

namespace {

bool is_name_char(char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '_';
}

class Parser {
public:
    Parser(std::string_view src, const GrammarLimits& limits) : src_(src), limits_(limits), b_(limits) {}

    Grammar parse() {
        if (src_.size() > limits_.max_source_bytes) {
            throw Error(ErrorCode::InvalidArgument, fmt::format("grammar of {} bytes exceeds the limit of {} bytes",
                                                                src_.size(), limits_.max_source_bytes));
        }
        skip_space(true);
        while (!at_end()) {
            parse_rule();
            skip_space(true);
        }
        return b_.finish("root");
    }

private:
    bool at_end() const { return pos_ >= src_.size(); }
    char peek(size_t ahead = 0) const { return pos_ + ahead < src_.size() ? src_[pos_ + ahead] : '\0'; }

    std::string found() const {
        if (at_end()) return "end of input";
        const char c = peek();
        if (c == '\n') return "end of line";
        if (static_cast<unsigned char>(c) < 0x20 || static_cast<unsigned char>(c) >= 0x7f) {
            return fmt::format("byte 0x{:02x}", static_cast<unsigned char>(c));
        }
        return fmt::format("'{}'", c);
    }

    [[noreturn]] void fail(std::string_view what) const {
        size_t line = 1, col = 1;
        for (size_t i = 0; i < pos_ && i < src_.size(); ++i) {
            if (src_[i] == '\n') {
                ++line;
                col = 1;
            } else {
                ++col;
            }
        }
        throw Error(ErrorCode::InvalidArgument, fmt::format("grammar {}:{}: {}", line, col, what));
    }
    [[noreturn]] void expected(std::string_view what) const {
        fail(fmt::format("expected {}, found {}", what, found()));
    }

    // Spaces, tabs and comments; newlines too when `newlines` (inside parentheses, between rules).
    void skip_space(bool newlines) {
        while (!at_end()) {
            const char c = peek();
            if (c == ' ' || c == '\t') {
                ++pos_;
            } else if (c == '#') {
                while (!at_end() && peek() != '\n') ++pos_;
            } else if (newlines && (c == '\n' || c == '\r')) {
                ++pos_;
            } else {
                break;
            }
        }
    }

    std::string_view parse_name() {
        const size_t start = pos_;
        while (is_name_char(peek())) ++pos_;
        if (pos_ == start) expected("a rule name");
        return src_.substr(start, pos_ - start);
    }

    void parse_rule() {
        const std::string_view name = parse_name();
        const uint32_t id = b_.rule(name);
        if (b_.defined(id)) fail(fmt::format("rule '{}' is defined twice", name));
        skip_space(false);
        if (src_.substr(pos_, 3) != "::=") expected(fmt::format("'::=' after the rule name '{}'", name));
        pos_ += 3;
        skip_space(true);
        Alternatives alts = parse_alternatives(std::string(name), false);
        if (peek() == '\r') ++pos_;
        if (!at_end() && peek() != '\n') {
            expected(fmt::format("'|', an element or the end of the line in rule '{}'", name));
        }
        b_.define(id, std::move(alts));
    }

    Alternatives parse_alternatives(const std::string& rule, bool nested) {
        Alternatives alts;
        alts.push_back(parse_sequence(rule, nested));
        while (peek() == '|') {
            ++pos_;
            skip_space(true);
            alts.push_back(parse_sequence(rule, nested));
        }
        return alts;
    }

    uint32_t parse_hex(size_t digits) {
        uint32_t v = 0;
        for (size_t i = 0; i < digits; ++i) {
            const char c = peek();
            int d = -1;
            if (c >= '0' && c <= '9') d = c - '0';
            if (c >= 'a' && c <= 'f') d = c - 'a' + 10;
            if (c >= 'A' && c <= 'F') d = c - 'A' + 10;
            if (d < 0) expected(fmt::format("{} hexadecimal digits", digits));
            v = v * 16 + static_cast<uint32_t>(d);
            ++pos_;
        }
        return v;
    }

    // One character of a literal or class: an escape or one UTF-8 encoded code point.
    uint32_t parse_char(bool in_class) {
        if (at_end()) expected(in_class ? "']' to close the character class" : "'\"' to close the literal");
        const auto c = static_cast<unsigned char>(peek());
        if (c == '\\') {
            ++pos_;
            const char e = peek();
            ++pos_;
            uint32_t cp = 0;
            switch (e) {
                case 'n': return '\n';
                case 'r': return '\r';
                case 't': return '\t';
                case '\\': return '\\';
                case '"': return '"';
                case '[': return '[';
                case ']': return ']';
                case '-': return '-';
                case '^': return '^';
                case '/': return '/';
                case 'x': cp = parse_hex(2); break;
                case 'u': cp = parse_hex(4); break;
                case 'U': cp = parse_hex(8); break;
                default:
                    pos_ -= 2;
                    expected("an escape (\\n \\r \\t \\\\ \\\" \\[ \\] \\- \\^ \\xHH \\uHHHH \\UHHHHHHHH)");
            }
            if (cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) {
                fail(fmt::format("escape U+{:X} is not a Unicode scalar value", cp));
            }
            return cp;
        }
        if (c < 0x80) {
            if (c == '\n' || c == '\r') {
                expected(in_class ? "']' before the end of the line" : "'\"' before the end of the line");
            }
            ++pos_;
            return c;
        }
        // UTF-8: lead byte, then continuation bytes; overlong forms and surrogates are refused.
        const size_t n = c >= 0xF0 && c <= 0xF4 ? 4 : c >= 0xE0 ? 3 : c >= 0xC2 && c < 0xE0 ? 2 : 0;
        if (n == 0 || (c >= 0xF5)) fail(fmt::format("invalid UTF-8 byte 0x{:02x}", c));
        uint32_t cp = c & (0xFF >> (n + 1));
        for (size_t i = 1; i < n; ++i) {
            const auto cc = static_cast<unsigned char>(peek(i));
            if ((cc & 0xC0) != 0x80) fail("invalid UTF-8 sequence");
            cp = (cp << 6) | (cc & 0x3F);
        }
        static constexpr uint32_t kMin[] = {0, 0, 0x80, 0x800, 0x10000};
        if (cp < kMin[n] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) fail("invalid UTF-8 sequence");
        pos_ += n;
        return cp;
    }

    uint32_t parse_int() {
        const size_t start = pos_;
        uint64_t v = 0;
        while (peek() >= '0' && peek() <= '9') {
            v = v * 10 + static_cast<uint64_t>(peek() - '0');
            if (v > limits_.max_repetition) {
                fail(fmt::format("repetition bound exceeds the limit {}", limits_.max_repetition));
            }
            ++pos_;
        }
        if (pos_ == start) expected("a number");
        return static_cast<uint32_t>(v);
    }

    Sequence parse_sequence(const std::string& rule, bool nested) {
        Sequence seq;
        size_t last_start = 0;  // where the last element's symbols begin (a postfix applies to them)
        bool have_last = false;
        while (!at_end()) {
            const char c = peek();
            const size_t start = seq.size();
            if (c == '"') {
                ++pos_;
                while (peek() != '"') b_.append_code_point(parse_char(false), seq);
                ++pos_;
            } else if (c == '[') {
                ++pos_;
                bool negate = false;
                if (peek() == '^') {
                    negate = true;
                    ++pos_;
                }
                std::vector<std::pair<uint32_t, uint32_t>> ranges;
                while (peek() != ']' || at_end()) {
                    const uint32_t lo = parse_char(true);
                    uint32_t hi = lo;
                    if (peek() == '-' && peek(1) != ']' && pos_ + 1 < src_.size()) {
                        ++pos_;
                        hi = parse_char(true);
                        if (hi < lo) fail(fmt::format("character range U+{:X}-U+{:X} is reversed", lo, hi));
                    }
                    ranges.push_back({lo, hi});
                }
                ++pos_;
                if (ranges.empty() && !negate) fail("empty character class []");
                seq.push_back(b_.char_class(std::move(ranges), negate, rule));
            } else if (c == '.') {
                ++pos_;
                seq.push_back(b_.char_class({}, true, rule));
            } else if (is_name_char(c)) {
                const std::string_view name = parse_name();
                seq.push_back({Elem::Kind::Ref, b_.rule(name)});
            } else if (c == '(') {
                ++pos_;
                if (++depth_ > limits_.max_nesting) {
                    fail(fmt::format("parentheses nested deeper than {}", limits_.max_nesting));
                }
                skip_space(true);
                Alternatives inner = parse_alternatives(rule, true);
                if (peek() != ')') expected("')'");
                ++pos_;
                --depth_;
                const uint32_t g = b_.helper_rule(rule);
                b_.define(g, std::move(inner));
                seq.push_back({Elem::Kind::Ref, g});
            } else if (c == '*' || c == '+' || c == '?' || c == '{') {
                if (!have_last) fail(fmt::format("'{}' must follow an element", c));
                ++pos_;
                uint32_t min = 0, max = GrammarBuilder::kUnbounded;
                if (c == '+') min = 1;
                if (c == '?') max = 1;
                if (c == '{') {
                    skip_space(false);
                    min = parse_int();
                    skip_space(false);
                    max = min;
                    if (peek() == ',') {
                        ++pos_;
                        skip_space(false);
                        max = peek() == '}' ? GrammarBuilder::kUnbounded : parse_int();
                        skip_space(false);
                    }
                    if (peek() != '}') expected("'}' to close the repetition");
                    ++pos_;
                }
                const Sequence item(seq.begin() + static_cast<ptrdiff_t>(last_start), seq.end());
                seq.resize(last_start);
                b_.append_repetition(item, min, max, rule, seq);
                have_last = false;  // "x**" is an error, as in llama.cpp
                skip_space(nested);
                continue;
            } else {
                break;
            }
            last_start = start;
            have_last = true;
            skip_space(nested);
        }
        return seq;
    }

    std::string_view src_;
    const GrammarLimits& limits_;
    GrammarBuilder b_;
    size_t pos_ = 0;
    uint32_t depth_ = 0;
};

}  // namespace

Grammar parse_gbnf(std::string_view text, const GrammarLimits& limits) { return Parser(text, limits).parse(); }

}  // namespace orcd::grammar
