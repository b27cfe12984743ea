#include "template/lexer.h"

#include <cctype>
#include <fmt/format.h>

#include "common/error.h"
#include "template/text.h"

namespace orcd::tmpl {

namespace {

[[noreturn]] void fail(std::string_view name, int line, std::string_view what) {
    throw Error(ErrorCode::ChatTemplate, fmt::format("template {} line {}: {}", name, line, what));
}

// Python's one-letter escapes in a string literal: the letter after the backslash and the character it stands for.
constexpr text::CharEscape kLetterEscapes[] = {{'n', "\n"}, {'t', "\t"}, {'r', "\r"}, {'\\', "\\"}, {'\'', "'"},
                                               {'"', "\""}, {'a', "\a"}, {'b', "\b"}, {'f', "\f"},  {'v', "\v"}};

// "\r\n" and "\r" become "\n"; one trailing newline goes unless kept.
std::string normalize_newlines(std::string_view src, bool keep_trailing_newline) {
    std::string out;
    out.reserve(src.size());
    for (size_t i = 0; i < src.size(); ++i) {
        if (src[i] == '\r') {
            out += '\n';
            if (i + 1 < src.size() && src[i + 1] == '\n') ++i;
        } else {
            out += src[i];
        }
    }
    if (!keep_trailing_newline && !out.empty() && out.back() == '\n') out.pop_back();
    return out;
}

bool is_ws(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f'; }

std::string rstrip_ws(std::string_view s) {
    // Python's str.rstrip(): Unicode whitespace.
    return text::strip(s, nullptr, false, true);
}

class Lexer {
public:
    Lexer(std::string src, std::string_view name, const LexerOptions& o) : src_(std::move(src)), name_(name), o_(o) {}

    std::vector<Token> run() {
        bool line_starting = true;   // the previous tag ended a line (or we are at the start)
        bool strip_leading = false;  // the previous tag ended with `-`
        while (pos_ < src_.size()) {
            size_t open = find_open(pos_);
            std::string textv = src_.substr(pos_, open - pos_);
            if (strip_leading) textv = text::strip(textv, nullptr, true, false);
            strip_leading = false;
            if (open == src_.size()) {
                count_lines(pos_, open);
                emit_text(std::move(textv));
                pos_ = open;
                break;
            }
            const char kind = src_[open + 1];  // '{', '%' or '#'
            const char marker = open + 2 < src_.size() ? src_[open + 2] : '\0';
            if (marker == '-') {
                textv = rstrip_ws(textv);
            } else if (marker != '+' && o_.lstrip_blocks && (kind == '%' || kind == '#')) {
                const size_t nl = textv.rfind('\n');
                const size_t l_pos = nl == std::string::npos ? 0 : nl + 1;
                if (l_pos > 0 || line_starting) {
                    bool only_ws = true;
                    for (size_t i = l_pos; i < textv.size(); ++i)
                        if (!is_ws(textv[i])) only_ws = false;
                    if (only_ws) textv.resize(l_pos);
                }
            }
            count_lines(pos_, open);
            emit_text(std::move(textv));
            pos_ = open + 2 + ((marker == '-' || marker == '+') ? 1 : 0);
            bool strip_after = false;
            if (kind == '#') {
                const int start_line = line_;
                const size_t close = src_.find("#}", pos_);
                if (close == std::string::npos) fail(name_, start_line, "unterminated comment (missing '#}')");
                strip_after = close > pos_ && src_[close - 1] == '-';
                const bool keep = close > pos_ && src_[close - 1] == '+';
                count_lines(pos_, close);
                pos_ = close + 2;
                line_starting = finish_tag(strip_after, keep, strip_leading);
                continue;
            }
            const bool block = kind == '%';
            const size_t first_token = tokens_.size();
            tokens_.push_back({block ? TokenType::BlockBegin : TokenType::VarBegin, "", line_});
            bool keep = false;
            lex_expression(block ? '%' : '}', strip_after, keep);
            tokens_.push_back({block ? TokenType::BlockEnd : TokenType::VarEnd, "", line_});
            if (block) {
                line_starting = finish_tag(strip_after, keep, strip_leading);
                if (tokens_.size() == first_token + 3 && tokens_[first_token + 1].type == TokenType::Name &&
                    tokens_[first_token + 1].value == "raw") {
                    tokens_.resize(first_token);
                    lex_raw(strip_leading, line_starting);
                }
            } else {
                strip_leading = strip_after;
                line_starting = false;
            }
        }
        tokens_.push_back({TokenType::Eof, "", line_});
        return std::move(tokens_);
    }

private:
    size_t find_open(size_t from) const {
        for (size_t i = from; i + 1 < src_.size(); ++i) {
            if (src_[i] == '{' && (src_[i + 1] == '{' || src_[i + 1] == '%' || src_[i + 1] == '#')) return i;
        }
        return src_.size();
    }

    void count_lines(size_t from, size_t to) {
        for (size_t i = from; i < to && i < src_.size(); ++i)
            if (src_[i] == '\n') ++line_;
    }

    void emit_text(std::string t) {
        if (!t.empty()) tokens_.push_back({TokenType::Text, std::move(t), line_});
    }

    // After a block or comment tag: `-` strips all following whitespace, else trim_blocks removes one newline.
    // Returns whether the tag ended its line.
    bool finish_tag(bool strip_after, bool keep, bool& strip_leading) {
        if (strip_after) {
            strip_leading = true;
            return false;
        }
        if (!keep && o_.trim_blocks && pos_ < src_.size() && src_[pos_] == '\n') {
            ++pos_;
            ++line_;
            return true;
        }
        return false;
    }

    // {% raw %} ... {% endraw %}: the body is text, whatever it holds.
    void lex_raw(bool& strip_leading, bool& line_starting) {
        size_t search = pos_;
        while (true) {
            const size_t open = src_.find("{%", search);
            if (open == std::string::npos) fail(name_, line_, "unterminated raw block (missing '{% endraw %}')");
            size_t p = open + 2;
            const bool minus = p < src_.size() && src_[p] == '-';
            if (p < src_.size() && (src_[p] == '-' || src_[p] == '+')) ++p;
            while (p < src_.size() && is_ws(src_[p])) ++p;
            if (src_.compare(p, 6, "endraw") != 0) {
                search = open + 2;
                continue;
            }
            p += 6;
            while (p < src_.size() && is_ws(src_[p])) ++p;
            bool strip_after = false, keep = false;
            if (p < src_.size() && (src_[p] == '-' || src_[p] == '+')) {
                strip_after = src_[p] == '-';
                keep = src_[p] == '+';
                ++p;
            }
            if (src_.compare(p, 2, "%}") != 0) {
                search = open + 2;
                continue;
            }
            std::string body = src_.substr(pos_, open - pos_);
            if (strip_leading) body = text::strip(body, nullptr, true, false);
            if (minus) body = rstrip_ws(body);
            emit_text(std::move(body));
            count_lines(pos_, p + 2);
            pos_ = p + 2;
            strip_leading = false;
            line_starting = finish_tag(strip_after, keep, strip_leading);
            return;
        }
    }

    // Tokens up to the closing `%}` or `}}` (brackets balanced first, so `}}` of nested dict literals is not an end).
    void lex_expression(char end_char, bool& strip_after, bool& keep) {
        int depth = 0;
        const int start_line = line_;
        while (true) {
            while (pos_ < src_.size() && is_ws(src_[pos_])) {
                if (src_[pos_] == '\n') ++line_;
                ++pos_;
            }
            if (pos_ >= src_.size())
                fail(name_, start_line,
                     fmt::format("unexpected end of template, expected '{}}}'", end_char == '%' ? "%" : "}"));
            const char c = src_[pos_];
            if (depth == 0) {
                auto at = [&](std::string_view s) { return src_.compare(pos_, s.size(), s) == 0; };
                const std::string close = end_char == '%' ? "%}" : "}}";
                if (at("-" + close)) {
                    strip_after = true;
                    pos_ += 3;
                    return;
                }
                if (at("+" + close) && end_char == '%') {
                    keep = true;
                    pos_ += 3;
                    return;
                }
                if (at(close)) {
                    pos_ += 2;
                    return;
                }
            }
            if (std::isalpha(static_cast<unsigned char>(c)) || c == '_') {
                size_t e = pos_;
                while (e < src_.size() && (std::isalnum(static_cast<unsigned char>(src_[e])) || src_[e] == '_')) ++e;
                tokens_.push_back({TokenType::Name, src_.substr(pos_, e - pos_), line_});
                pos_ = e;
            } else if (std::isdigit(static_cast<unsigned char>(c))) {
                lex_number();
            } else if (c == '\'' || c == '"') {
                lex_string(c);
            } else {
                static const char* const ops[] = {"//", "**", "==", "!=", "<=", ">=", "+", "-", "*", "/", "%", "~", "<",
                                                  ">",  "=",  "(",  ")",  "[",  "]",  "{", "}", ",", ".", ":", "|"};
                bool found = false;
                for (const char* op : ops) {
                    const std::string_view sv(op);
                    if (src_.compare(pos_, sv.size(), sv) == 0) {
                        tokens_.push_back({TokenType::Op, std::string(sv), line_});
                        pos_ += sv.size();
                        if (sv == "(" || sv == "[" || sv == "{") ++depth;
                        if ((sv == ")" || sv == "]" || sv == "}") && depth > 0) --depth;
                        found = true;
                        break;
                    }
                }
                if (!found) fail(name_, line_, fmt::format("unexpected character '{}'", c));
            }
        }
    }

    void lex_number() {
        size_t e = pos_;
        auto digits = [&] {
            while (e < src_.size() && (std::isdigit(static_cast<unsigned char>(src_[e])) || src_[e] == '_')) ++e;
        };
        digits();
        bool is_float = false;
        if (e + 1 < src_.size() && src_[e] == '.' && std::isdigit(static_cast<unsigned char>(src_[e + 1]))) {
            is_float = true;
            ++e;
            digits();
        }
        if (e < src_.size() && (src_[e] == 'e' || src_[e] == 'E')) {
            size_t f = e + 1;
            if (f < src_.size() && (src_[f] == '+' || src_[f] == '-')) ++f;
            if (f < src_.size() && std::isdigit(static_cast<unsigned char>(src_[f]))) {
                is_float = true;
                e = f;
                digits();
            }
        }
        std::string v;
        for (size_t i = pos_; i < e; ++i)
            if (src_[i] != '_') v += src_[i];
        tokens_.push_back({is_float ? TokenType::Float : TokenType::Int, v, line_});
        pos_ = e;
    }

    // A quoted string with Python's escapes.
    void lex_string(char quote) {
        const int start_line = line_;
        std::string v;
        size_t i = pos_ + 1;
        auto hex = [&](size_t n) -> char32_t {
            if (i + n > src_.size()) fail(name_, line_, "truncated escape in string literal");
            char32_t cp = 0;
            for (size_t k = 0; k < n; ++k) {
                const char h = src_[i + k];
                if (!std::isxdigit(static_cast<unsigned char>(h))) fail(name_, line_, "bad escape in string literal");
                cp = cp * 16 + static_cast<char32_t>(std::isdigit(static_cast<unsigned char>(h))
                                                         ? h - '0'
                                                         : std::tolower(static_cast<unsigned char>(h)) - 'a' + 10);
            }
            i += n;
            return cp;
        };
        while (true) {
            if (i >= src_.size()) fail(name_, start_line, "unterminated string literal");
            const char c = src_[i];
            if (c == quote) break;
            if (c == '\n') ++line_;
            if (c != '\\') {
                v += c;
                ++i;
                continue;
            }
            if (i + 1 >= src_.size()) fail(name_, start_line, "unterminated string literal");
            const char e = src_[i + 1];
            i += 2;
            if (const std::string_view* plain = text::find_escape(kLetterEscapes, e)) {
                v += *plain;
                continue;
            }
            switch (e) {
                case '\n': ++line_; break;  // a backslash-newline continues the line
                case 'x': text::append_utf8(v, hex(2)); break;
                case 'u': text::append_utf8(v, hex(4)); break;
                case 'U': {
                    const char32_t cp = hex(8);
                    if (cp > 0x10FFFF) fail(name_, line_, "escape out of the Unicode range in string literal");
                    text::append_utf8(v, cp);
                    break;
                }
                default:
                    if (e >= '0' && e <= '7') {
                        char32_t cp = static_cast<char32_t>(e - '0');
                        for (int k = 0; k < 2 && i < src_.size() && src_[i] >= '0' && src_[i] <= '7'; ++k, ++i)
                            cp = cp * 8 + static_cast<char32_t>(src_[i] - '0');
                        text::append_utf8(v, cp);
                    } else {
                        v += '\\';  // Python keeps unknown escapes as written
                        v += e;
                    }
            }
        }
        tokens_.push_back({TokenType::String, std::move(v), start_line});
        pos_ = i + 1;
    }

    std::string src_;
    std::string_view name_;
    LexerOptions o_;
    size_t pos_ = 0;
    int line_ = 1;
    std::vector<Token> tokens_;
};

}  // namespace

std::vector<Token> tokenize(std::string_view source, std::string_view name, const LexerOptions& options) {
    return Lexer(normalize_newlines(source, options.keep_trailing_newline), name, options).run();
}

}  // namespace orcd::tmpl
