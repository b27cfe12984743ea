#pragma once
// Request bodies -> typed requests, with every field checked. Nothing here touches the engine: a request that
// passes is well-formed; whether it fits the context is decided when it runs (CONTEXT_OVERFLOW) or, for the OpenAI
// endpoints, by counting its tokens first.
#include <nlohmann/json_fwd.hpp>
#include <string>
#include <vector>

#include "engine/generator.h"
#include "tokenizer/chat_template.h"

namespace orcd::server {

inline constexpr size_t kMaxPromptChars = 32768;  // Unicode code points
inline constexpr size_t kMaxStopStrings = 4;
inline constexpr size_t kMaxJobIdBytes = 256;

// Job ids are echoed in logs, events and headers: 1..kMaxJobIdBytes characters of [A-Za-z0-9._:-].
// Returns "" for a valid id, else what is wrong.
std::string job_id_problem(std::string_view id);

struct FieldError {
    std::string field;    // "temperature", "stop[2]", "messages[0].role"
    std::string message;  // what was expected and what was found
};

struct ExecuteRequest {
    std::string job_id;
    engine::GenerateRequest generate;
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
    bool stream = false;
    bool include_usage = false;  // stream_options.include_usage
};

// POST /v1/completions and /v1/chat/completions. Unknown fields are ignored, as OpenAI's clients send optional ones
// freely; known ones the worker cannot honour (n > 1, logprobs, echo) are errors.
OpenAiRequest parse_openai(const nlohmann::json& body, bool chat, uint32_t context_length,
                           std::vector<FieldError>& errors);

// Number of Unicode code points in valid UTF-8 (the JSON parser has already rejected invalid UTF-8).
size_t utf8_length(std::string_view s);

}  // namespace orcd::server
