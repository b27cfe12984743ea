#pragma once
// What goes on the wire, as text: the worker API's SSE events and OpenAI's response objects and chunks. Pure
// functions of the job events, so that the formats are tested without sockets.
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

#include <span>

#include "server/job.h"
#include "toolcall/toolcall.h"

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
// logprobs of `items` in the endpoint's shape: chat {"content": [{token, logprob, bytes, top_logprobs}]},
// completions {tokens, token_logprobs, top_logprobs, text_offset}; `text_offset` is where the first token starts in
// the completion's text and is advanced past the items.
nlohmann::json openai_logprobs(bool chat, std::span<const engine::TokenLogprobs> items, size_t& text_offset);
// OpenAI's tool_calls array (function calls with their ids); `stream`: each with its index, as delta chunks carry them.
nlohmann::json openai_tool_calls(std::span<const toolcall::ToolCall> calls, bool stream);
// A streaming chat chunk carrying tool calls (all of each call at once).
nlohmann::json openai_tool_calls_chunk(const OpenAiContext& c, std::span<const toolcall::ToolCall> calls, bool first);

// OpenAI's error object: {"error": {"message", "type", "param", "code"}}.
nlohmann::json openai_error(std::string_view message, std::string_view type, std::string_view param = {},
                            std::string_view code = {});

}  // namespace orcd::server
