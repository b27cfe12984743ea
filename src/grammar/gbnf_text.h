#pragma once
// Helpers for writing GBNF source text (the JSON Schema and regular-expression translators emit GBNF, which the one
// parser then compiles).
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace orcd::grammar {

// A GBNF string literal matching exactly `bytes` (valid UTF-8): quotes, backslashes and control characters escaped.
std::string gbnf_literal(std::string_view bytes);
// A GBNF character class of the inclusive code point ranges (non-empty), every bound written as an escape.
std::string gbnf_class(const std::vector<std::pair<uint32_t, uint32_t>>& ranges);

}  // namespace orcd::grammar
