#pragma once
// What goes on the wire, as text: the worker API's SSE events and OpenAI's response objects and chunks. Pure
// functions of the job events, so that the formats are tested without sockets.
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

#include "server/job.h"

namespace orcd::server {

// JSON text for the wire: invalid UTF-8 (which the engine never emits) is replaced instead of throwing.
std::string dump_json(const nlohmann::json& j);

// One SSE frame: "event: NAME\ndata: JSON\n\n".
std::string sse_frame(std::string_view event, const nlohmann::json& data);
// "data: JSON\n\n" (OpenAI streams have no event names).
std::string sse_data(const nlohmann::json& data);

// The worker API's frame for a job event (started / token / end / error).
std::string worker_sse(const JobEvent& ev, const std::string& job_id, const std::string& model_id);

// OpenAI --------------------------------------------------------------------------------------------------------
struct OpenAiContext {
    bool chat = false;
    std::string id;  // "cmpl-..." / "chatcmpl-..."
    std::string model;
    int64_t created = 0;  // Unix seconds
};

// "stop" for end-of-generation and stop strings, "length" for max_tokens.
std::string_view openai_finish_reason(engine::StopReason r);

nlohmann::json openai_usage(uint64_t prompt_tokens, uint64_t completion_tokens);
// A streaming chunk carrying `text` (chat: the first one also carries the assistant role).
nlohmann::json openai_chunk(const OpenAiContext& c, std::string_view text, bool first);
// The last content chunk: empty text, the finish reason.
nlohmann::json openai_final_chunk(const OpenAiContext& c, engine::StopReason r);
// stream_options.include_usage: a chunk with no choices and the usage.
nlohmann::json openai_usage_chunk(const OpenAiContext& c, uint64_t prompt_tokens, uint64_t completion_tokens);
// The whole (non-streaming) response.
nlohmann::json openai_response(const OpenAiContext& c, const std::string& text, engine::StopReason r,
                               uint64_t prompt_tokens, uint64_t completion_tokens);
// OpenAI's error object: {"error": {"message", "type", "param", "code"}}.
nlohmann::json openai_error(std::string_view message, std::string_view type, std::string_view param = {},
                            std::string_view code = {});

}  // namespace orcd::server
