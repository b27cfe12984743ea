#pragma once
// Request bodies -> typed requests, with every field checked. Nothing here touches the engine: a request that
// passes is well-formed; whether it fits the context is decided when it runs (CONTEXT_OVERFLOW) or, for the OpenAI
// endpoints, by counting its tokens first.
#include <nlohmann/json.hpp>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "engine/generator.h"
#include "tokenizer/chat_template.h"

namespace orcd::server {

inline constexpr size_t kMaxPromptChars = 32768;  // Unicode code points
inline constexpr size_t kMaxStopStrings = 4;
inline constexpr size_t kMaxLogitBias = 300;  // OpenAI's own limit
inline constexpr size_t kMaxJobIdBytes = 256;

// Job ids are echoed in logs, events and headers: 1..kMaxJobIdBytes characters of [A-Za-z0-9._:-].
// Returns "" for a valid id, else what is wrong.
std::string job_id_problem(std::string_view id);

struct FieldError {
    std::string field;    // "temperature", "stop[2]", "messages[0].role"
    std::string message;  // what was expected and what was found
};

// A structured-output request, compiled against the model's vocabulary when the job is submitted (the request layer
// has no tokenizer). `param` names the field it came from, for errors.
struct ConstraintSpec {
    enum class Kind { None, Gbnf, JsonSchema };
    Kind kind = Kind::None;
    std::string text;   // GBNF text, or the schema as JSON text
    std::string param;  // "grammar", "json_schema", "response_format" ...
};

struct ExecuteRequest {
    std::string job_id;
    engine::GenerateRequest generate;
    ConstraintSpec constraint;  // the "grammar" / "json_schema" fields
};

// POST /execute. `context_length` bounds max_tokens. Fills `errors` (one per bad field) and returns the request when
// there are none.
ExecuteRequest parse_execute(const nlohmann::json& body, uint32_t context_length, std::vector<FieldError>& errors);

struct OpenAiRequest {
    bool chat = false;
    std::string model;
    std::string prompt;                            // completions
    std::vector<tokenizer::ChatMessage> messages;  // chat
    engine::GenerateRequest generate;              // prompt filled in later for chat (through the template)
    uint32_t n = 1;  // choices: each runs as its own sequence in the batch (at most kMaxChoices)
    bool stream = false;
    bool include_usage = false;  // stream_options.include_usage
    std::string user;            // accepted and logged
    bool logprobs = false;       // chat: logprobs true; completions: logprobs N (then top_logprobs = N)
    uint32_t top_logprobs = 0;
    ConstraintSpec constraint;  // response_format, or llama-server's grammar / json_schema
    // Tool calling (chat): the tool definitions as the template sees them (null: none), and tool_choice.
    nlohmann::ordered_json tools;
    std::string tool_choice = "auto";  // "auto", "none", "required", or "function" with tool_choice_name
    std::string tool_choice_name;
    std::vector<std::string> unsupported;  // fields the worker does not implement (each a 400 of its own shape)
};

// The most choices (`n`) one request may ask for: each is a sequence in the batch and a job in the queue.
inline constexpr uint32_t kMaxChoices = 16;

// The fields each OpenAI endpoint implements; any other key is refused ("unsupported parameter: X").
std::span<const std::string_view> openai_supported_fields(bool chat);

// POST /v1/completions and /v1/chat/completions. Every key is either implemented or listed in `unsupported`; values
// the worker cannot honour (n beyond kMaxChoices, echo) are field errors.
OpenAiRequest parse_openai(const nlohmann::json& body, bool chat, uint32_t context_length,
                           std::vector<FieldError>& errors);

// Number of Unicode code points in valid UTF-8 (the JSON parser has already rejected invalid UTF-8).
size_t utf8_length(std::string_view s);

}  // namespace orcd::server
