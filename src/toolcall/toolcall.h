#pragma once
// Tool calls in a model's output, parsed back into OpenAI's shape. Each model family writes calls its own way:
//   Hermes / Qwen:  <tool_call>\n{"name": "f", "arguments": {...}}\n</tool_call>   (one block per call)
//   Llama 3.x:      {"name": "f", "parameters": {...}}  as the whole reply, or after <|python_tag|>  (";"-separated)
//   Mistral:        [TOOL_CALLS][{"name": "f", "arguments": {...}, "id": "..."}]   (v0.3), or
//                   [TOOL_CALLS]f[ARGS]{...}                                        (v0.7 and later, repeated)
// The format is chosen from the chat template (the markers it writes). Text that does not parse as a call is
// returned as content, never lost.
#include <string>
#include <string_view>
#include <vector>

namespace orcd::toolcall {

enum class Format { None, Hermes, Llama3, Mistral };
std::string_view format_name(Format f);  // "none", "hermes", "llama3", "mistral"

// The format a chat template's model writes, from the markers in the template text; None when it has no tool
// support this library knows.
Format detect_format(std::string_view template_text);

// The marker control tokens a format needs to see in the text (the detokenizer skips control tokens otherwise).
bool needs_special_tokens(Format f);

struct ToolCall {
    std::string id;  // as the model wrote it (Mistral), else empty: the caller assigns one
    std::string name;
    std::string arguments;  // a JSON object, as text (OpenAI's function.arguments)
};

struct Parsed {
    std::string content;  // everything that is not a call (trimmed of the whitespace around the calls)
    std::vector<ToolCall> calls;
};

// Parses a whole reply.
Parsed parse(Format f, std::string_view text);

// Streaming: passes content through as it comes and holds back, from the first sign of a call (a marker, or for
// Llama 3.x a reply that starts with "{"), everything up to the end, which finish() parses.
class StreamSplitter {
public:
    explicit StreamSplitter(Format f) : format_(f) {}
    // Adds text; returns the content that is final now.
    std::string push(std::string_view text);
    // At the end of the reply: the held-back text, parsed (its content is what was not returned by push()).
    Parsed finish();

private:
    Format format_;
    std::string held_;
    bool in_call_ = false;
    bool emitted_ = false;  // some content went out (a Llama 3.x reply no longer starts with a call)
};

}  // namespace orcd::toolcall
