#include "grammar/gbnf_text.h"

#include <fmt/format.h>

namespace orcd::grammar {

std::string gbnf_literal(std::string_view bytes) {
    std::string out = "\"";
    for (char c : bytes) {
        const auto u = static_cast<unsigned char>(c);
        if (c == '"' || c == '\\') {
            out += '\\';
            out += c;
        } else if (u < 0x20 || u == 0x7f) {
            out += fmt::format("\\x{:02x}", u);
        } else {
            out += c;
        }
    }
    out += '"';
    return out;
}

std::string gbnf_class(const std::vector<std::pair<uint32_t, uint32_t>>& ranges) {
    std::string out = "[";
    for (auto [lo, hi] : ranges) {
        out += fmt::format("\\U{:08x}", lo);
        if (hi != lo) out += fmt::format("-\\U{:08x}", hi);
    }
    out += "]";
    return out;
}

}  // namespace orcd::grammar
