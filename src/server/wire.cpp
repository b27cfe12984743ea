#include "server/wire.h"

namespace orcd::server {

using json = nlohmann::json;

std::string dump_json(const json& j) { return j.dump(-1, ' ', false, json::error_handler_t::replace); }

std::string sse_frame(std::string_view event, const json& data) {
    std::string out = "event: ";
    out += event;
    out += "\ndata: ";
    out += dump_json(data);  // single line: JSON text has no raw newlines
    out += "\n\n";
    return out;
}

std::string sse_data(const json& data) { return "data: " + dump_json(data) + "\n\n"; }

std::string worker_sse(const JobEvent& ev, const std::string& job_id, const std::string& model_id) {
    switch (ev.kind) {
        case JobEvent::Kind::Started:
            return sse_frame("started", {{"job_id", job_id}, {"model", model_id}, {"started_at", ev.started_at_ms}});
        case JobEvent::Kind::Token: return sse_frame("token", {{"t", ev.text}, {"i", ev.index}});
        case JobEvent::Kind::End:
            return sse_frame("end", {{"tokens_out", ev.tokens_out},
                                     {"prompt_tokens", ev.prompt_tokens},
                                     {"decode_time_ms", ev.decode_time_ms},
                                     {"stop_reason", engine::stop_reason_name(ev.stop_reason)},
                                     {"seed", ev.seed}});
        case JobEvent::Kind::Error:
            return sse_frame("error", {{"code", job_error_code_name(ev.error_code)}, {"message", ev.message}});
    }
    return {};
}

std::string_view openai_finish_reason(engine::StopReason r) {
    return r == engine::StopReason::MaxTokens ? "length" : "stop";
}

json openai_usage(uint64_t prompt_tokens, uint64_t completion_tokens) {
    return {{"prompt_tokens", prompt_tokens},
            {"completion_tokens", completion_tokens},
            {"total_tokens", prompt_tokens + completion_tokens}};
}

static json chunk_base(const OpenAiContext& c) {
    return {{"id", c.id},
            {"object", c.chat ? "chat.completion.chunk" : "text_completion"},
            {"created", c.created},
            {"model", c.model}};
}

json openai_chunk(const OpenAiContext& c, std::string_view text, bool first) {
    json j = chunk_base(c);
    json choice = {{"index", 0}, {"finish_reason", nullptr}};
    if (c.chat) {
        json delta = {{"content", text}};
        if (first) delta["role"] = "assistant";
        choice["delta"] = std::move(delta);
    } else {
        choice["text"] = text;
        choice["logprobs"] = nullptr;
    }
    j["choices"] = json::array({std::move(choice)});
    return j;
}

json openai_final_chunk(const OpenAiContext& c, engine::StopReason r) {
    json j = chunk_base(c);
    json choice = {{"index", 0}, {"finish_reason", openai_finish_reason(r)}};
    if (c.chat) {
        choice["delta"] = json::object();
    } else {
        choice["text"] = "";
        choice["logprobs"] = nullptr;
    }
    j["choices"] = json::array({std::move(choice)});
    return j;
}

json openai_usage_chunk(const OpenAiContext& c, uint64_t prompt_tokens, uint64_t completion_tokens) {
    json j = chunk_base(c);
    j["choices"] = json::array();
    j["usage"] = openai_usage(prompt_tokens, completion_tokens);
    return j;
}

json openai_response(const OpenAiContext& c, const std::string& text, engine::StopReason r, uint64_t prompt_tokens,
                     uint64_t completion_tokens) {
    json j = {{"id", c.id},
              {"object", c.chat ? "chat.completion" : "text_completion"},
              {"created", c.created},
              {"model", c.model}};
    json choice = {{"index", 0}, {"finish_reason", openai_finish_reason(r)}};
    if (c.chat) {
        choice["message"] = {{"role", "assistant"}, {"content", text}};
        choice["logprobs"] = nullptr;
    } else {
        choice["text"] = text;
        choice["logprobs"] = nullptr;
    }
    j["choices"] = json::array({std::move(choice)});
    j["usage"] = openai_usage(prompt_tokens, completion_tokens);
    return j;
}

namespace {

json byte_list(std::string_view s) {
    json bytes = json::array();
    for (unsigned char c : s) bytes.push_back(c);
    return bytes;
}

}  // namespace

json openai_logprobs(bool chat, std::span<const engine::TokenLogprobs> items, size_t& text_offset) {
    if (chat) {
        json content = json::array();
        for (const auto& t : items) {
            json top = json::array();
            for (const auto& e : t.top) {
                top.push_back({{"token", e.text}, {"logprob", e.logprob}, {"bytes", byte_list(e.text)}});
            }
            content.push_back({{"token", t.chosen.text},
                               {"logprob", t.chosen.logprob},
                               {"bytes", byte_list(t.chosen.text)},
                               {"top_logprobs", std::move(top)}});
        }
        return {{"content", std::move(content)}, {"refusal", nullptr}};
    }
    json tokens = json::array(), token_logprobs = json::array(), top_logprobs = json::array(), offsets = json::array();
    for (const auto& t : items) {
        tokens.push_back(t.chosen.text);
        token_logprobs.push_back(t.chosen.logprob);
        json top = json::object();
        for (const auto& e : t.top) top[e.text] = e.logprob;
        top_logprobs.push_back(std::move(top));
        offsets.push_back(text_offset);
        text_offset += t.chosen.text.size();
    }
    return {{"tokens", std::move(tokens)},
            {"token_logprobs", std::move(token_logprobs)},
            {"top_logprobs", std::move(top_logprobs)},
            {"text_offset", std::move(offsets)}};
}

json openai_tool_calls(std::span<const toolcall::ToolCall> calls, bool stream) {
    json out = json::array();
    for (size_t i = 0; i < calls.size(); ++i) {
        json c = {{"id", calls[i].id},
                  {"type", "function"},
                  {"function", {{"name", calls[i].name}, {"arguments", calls[i].arguments}}}};
        if (stream) c["index"] = i;
        out.push_back(std::move(c));
    }
    return out;
}

json openai_tool_calls_chunk(const OpenAiContext& c, std::span<const toolcall::ToolCall> calls, bool first) {
    json j = chunk_base(c);
    json delta = {{"tool_calls", openai_tool_calls(calls, true)}};
    if (first) delta["role"] = "assistant";
    j["choices"] = json::array({{{"index", 0}, {"delta", std::move(delta)}, {"finish_reason", nullptr}}});
    return j;
}

json openai_error(std::string_view message, std::string_view type, std::string_view param, std::string_view code) {
    return {{"error",
             {{"message", message},
              {"type", type},
              {"param", param.empty() ? json(nullptr) : json(param)},
              {"code", code.empty() ? json(nullptr) : json(code)}}}};
}

}  // namespace orcd::server
