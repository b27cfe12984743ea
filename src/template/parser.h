#pragma once
// Tokens -> statement tree. Recursive descent with jinja2's operator precedence; nesting (of blocks, brackets and
// unary operators) is bounded so that a hostile template cannot exhaust the stack.
#include <string_view>
#include <vector>

#include "template/ast.h"
#include "template/lexer.h"

namespace orcd::tmpl {

inline constexpr int kMaxParseDepth = 100;

// Throws Error(ChatTemplate) "template NAME line N: ..." for a syntax error.
Body parse(const std::vector<Token>& tokens, std::string_view name);

}  // namespace orcd::tmpl
