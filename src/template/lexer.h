#pragma once
// Template source -> tokens, with jinja2's whitespace rules as Hugging Face configures them: newlines normalised to
// "\n", one trailing newline dropped, trim_blocks (the newline after a block or comment tag is removed), lstrip_blocks
// (spaces and tabs before a block or comment tag on its own line are removed), and the `-` / `+` markers inside tags.
#include <string>
#include <string_view>
#include <vector>

namespace orcd::tmpl {

enum class TokenType {
    Text,        // literal output
    VarBegin,    // {{
    VarEnd,      // }}
    BlockBegin,  // {%
    BlockEnd,    // %}
    Name,
    String,  // value holds the decoded string
    Int,
    Float,
    Op,  // value holds the operator text
    Eof,
};

struct Token {
    TokenType type;
    std::string value;
    int line;
};

struct LexerOptions {
    bool trim_blocks = true;
    bool lstrip_blocks = true;
    bool keep_trailing_newline = false;
};

// Throws Error(ChatTemplate) naming `name` and the line for an unterminated tag, string or comment.
std::vector<Token> tokenize(std::string_view source, std::string_view name, const LexerOptions& options);

}  // namespace orcd::tmpl
