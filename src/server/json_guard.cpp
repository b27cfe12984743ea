#include "server/json_guard.h"

#include <fmt/format.h>

#include <cmath>
#include <cstdlib>
#include <string>
#include <vector>

namespace orcd::server {

namespace {

struct Frame {
    bool object = false;
    bool expect_key = false;  // objects: the next string is a key
    std::string key;          // objects: the current member's key
    size_t index = 0;         // arrays: the current element
};

std::string path_of(const std::vector<Frame>& stack) {
    std::string p;
    for (const Frame& f : stack) {
        if (f.object) {
            if (f.key.empty() && f.expect_key) continue;
            p += (p.empty() ? "" : ".") + f.key;
        } else {
            p += fmt::format("[{}]", f.index);
        }
    }
    return p.empty() ? "(body)" : p;
}

// The printable start of a key for an error message (keys are client text: no control bytes).
std::string clean_key(std::string_view raw) {
    std::string k;
    for (char c : raw.substr(0, 64)) {
        if (static_cast<unsigned char>(c) >= 0x20 && c != '"' && c != '\\') k += c;
    }
    return k;
}

}  // namespace

std::optional<FieldError> prescan_json(std::string_view text, size_t max_depth) {
    std::vector<Frame> stack;
    size_t i = 0;
    const size_t n = text.size();
    while (i < n) {
        const char c = text[i];
        switch (c) {
            case '{':
            case '[':
                if (stack.size() >= max_depth) {
                    return FieldError{path_of(stack),
                                      fmt::format("JSON nested deeper than {} levels (at byte {})", max_depth, i)};
                }
                stack.push_back(Frame{c == '{', c == '{', {}, 0});
                ++i;
                break;
            case '}':
            case ']':
                if (!stack.empty()) stack.pop_back();
                ++i;
                break;
            case ',':
                if (!stack.empty()) {
                    if (stack.back().object) {
                        stack.back().expect_key = true;
                    } else {
                        ++stack.back().index;
                    }
                }
                ++i;
                break;
            case '"': {
                const size_t start = ++i;
                while (i < n && text[i] != '"') i += text[i] == '\\' ? 2 : 1;
                const std::string_view s = text.substr(start, std::min(i, n) - start);
                if (!stack.empty() && stack.back().object && stack.back().expect_key) {
                    stack.back().key = clean_key(s);
                    stack.back().expect_key = false;
                }
                ++i;
                break;
            }
            case '-':
            case '0':
            case '1':
            case '2':
            case '3':
            case '4':
            case '5':
            case '6':
            case '7':
            case '8':
            case '9': {
                const size_t start = i;
                while (i < n && (std::isdigit(static_cast<unsigned char>(text[i])) || text[i] == '-' ||
                                 text[i] == '+' || text[i] == '.' || text[i] == 'e' || text[i] == 'E')) {
                    ++i;
                }
                const std::string num(text.substr(start, i - start));
                const double d = std::strtod(num.c_str(), nullptr);
                if (!std::isfinite(d)) {
                    return FieldError{path_of(stack),
                                      fmt::format("the number {} is out of range: expected a finite number "
                                                  "(magnitude below 1.8e308)",
                                                  num.size() > 40 ? num.substr(0, 37) + "..." : num)};
                }
                break;
            }
            default: ++i;
        }
    }
    return std::nullopt;
}

}  // namespace orcd::server
