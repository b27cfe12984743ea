#include "server/openai_api.h"

#include <fmt/format.h>

#include "common/error.h"
#include <mutex>
#include <optional>

#include "server/openai_tools.h"
#include "server/requests.h"
#include "server/wire.h"
#include "server/worker_api.h"

namespace orcd::server {

using json = nlohmann::json;

namespace {

// HTTP status of an error event when the response is not a stream.
int http_status_for(JobErrorCode c) {
    switch (c) {
        case JobErrorCode::ContextOverflow:
        case JobErrorCode::InvalidRequest:
            return 400;
        case JobErrorCode::Cancelled:
            return 409;
        case JobErrorCode::VramOom:
            return 503;
        case JobErrorCode::Internal:
            return 500;
    }
    return 500;
}

}  // namespace

json OpenAiApi::model_object() const {
    const ServiceInfo& info = ctx_.service.info();
    // The context length under vLLM's name (which OpenAI-compatible clients read) and llama-server's meta.n_ctx.
    return {{"id", info.model_id},
            {"object", "model"},
            {"created", ctx_.created_unix},
            {"owned_by", "orcd"},
            {"max_model_len", info.context_length},
            {"meta", {{"n_ctx", info.context_length}, {"n_vocab", info.vocab_size}, {"arch", info.arch}}}};
}

void OpenAiApi::models(const HttpRequest&, const Ex& ex) {
    ex->reply(json_response(200, {{"object", "list"}, {"data", json::array({model_object()})}}));
}

void OpenAiApi::model(const HttpRequest& req, const Ex& ex) {
    const std::string id = req.path.substr(std::string_view("/v1/models/").size());
    if (id != ctx_.service.info().model_id) {
        return ex->reply(api_error(req.path, 404, "MODEL_NOT_FOUND",
                                   fmt::format("the model '{}' does not exist: this worker serves '{}'",
                                               log_escape(id, 100), ctx_.service.info().model_id),
                                   "invalid_request_error", "model"));
    }
    ex->reply(json_response(200, model_object()));
}

namespace {

// The log-probabilities the engine reports from the scheduler's thread, taken by the formatter as it writes chunks.
struct LogprobBuffer {
    std::mutex mu;
    std::vector<engine::TokenLogprobs> items;
    std::vector<engine::TokenLogprobs> take() {
        std::lock_guard lock(mu);
        return std::exchange(items, {});
    }
    bool empty() {
        std::lock_guard lock(mu);
        return items.empty();
    }
};

// Calls without an id (all but Mistral's) get one, as OpenAI's clients need it to answer with a tool message.
void assign_ids(std::vector<toolcall::ToolCall>& calls, bool short_ids) {
    for (auto& c : calls) {
        if (c.id.empty()) c.id = short_ids ? random_hex(9) : "call_" + random_hex(24);
    }
}

}  // namespace

void OpenAiApi::generate(const HttpRequest& req, const Ex& ex, bool chat) {
    if (ctx_.scheduler.draining()) return ex->reply(unavailable(ctx_, req.path, "the worker is shutting down"));
    auto parsed = read_json_body(req, &ctx_.metrics);
    if (auto* refused = std::get_if<HttpResponse>(&parsed)) return ex->reply(std::move(*refused));
    const json& body = std::get<json>(parsed);
    std::vector<FieldError> errors;
    const ServiceInfo& info = ctx_.service.info();
    OpenAiRequest r = parse_openai(body, chat, info.context_length, errors);
    auto invalid = [&](std::string_view code, const std::string& msg, const std::string& param, int status = 400) {
        ctx_.metrics.count_request(Outcome::Invalid);
        ex->reply(api_error(req.path, status, code, msg, "invalid_request_error", param));
    };
    // A field the worker does not implement is refused, never ignored: the client would get output it did not ask
    // for with no sign of why.
    if (!r.unsupported.empty()) {
        return invalid("UNSUPPORTED_PARAMETER", "unsupported parameter: " + r.unsupported.front(),
                       r.unsupported.front());
    }
    if (!errors.empty()) {
        std::string msg;
        for (const auto& e : errors) msg += (msg.empty() ? "" : "; ") + e.field + ": " + e.message;
        return invalid("INVALID_VALUE", msg, errors.front().field);
    }
    if (r.model != info.model_id) {
        return invalid("MODEL_NOT_FOUND",
                       fmt::format("the model '{}' does not exist: this worker serves '{}'", r.model, info.model_id),
                       "model", 404);
    }
    for (const auto& [id, bias] : r.generate.sampling.logit_bias) {
        if (static_cast<uint32_t>(id) >= info.vocab_size) {
            return invalid("INVALID_VALUE",
                           fmt::format("logit_bias: token id {} is outside the vocabulary of {} tokens", id,
                                       info.vocab_size),
                           "logit_bias");
        }
    }
    ToolPlan plan;
    // The template's text is read only when tools are asked for (it names the format of the calls).
    const std::string template_text = r.tools.is_null() ? std::string() : ctx_.service.chat_template_text();
    if (auto bad = plan_tools(r, template_text, plan)) {
        return invalid("INVALID_VALUE", bad->field + ": " + bad->message, bad->field);
    }
    if (auto bad = apply_constraint(ctx_.service, ctx_.opt, r.constraint, r.generate)) {
        return invalid("INVALID_VALUE", *bad, r.constraint.param);
    }
    // The markers of some formats are control tokens, which the text leaves out unless asked.
    r.generate.show_special = toolcall::needs_special_tokens(plan.format);
    size_t prompt_tokens = 0;
    try {
        if (chat) r.generate.prompt = ctx_.service.format_chat_with_tools(r.messages, r.tools);
        prompt_tokens = ctx_.service.count_prompt_tokens(r.generate);
    } catch (const Error& e) {
        return invalid(e.code() == ErrorCode::ChatTemplate ? "CHAT_TEMPLATE" : "INVALID_VALUE", e.what(),
                       chat ? "messages" : "prompt");
    }
    const uint32_t ctx = info.context_length;
    const bool explicit_max = body.contains("max_tokens") || body.contains("max_completion_tokens");
    if (prompt_tokens >= ctx || (explicit_max && prompt_tokens + r.generate.max_tokens > ctx)) {
        return invalid("CONTEXT_LENGTH_EXCEEDED",
                       fmt::format("this model's context is {} tokens; the prompt has {} and {} more were requested",
                                   ctx, prompt_tokens, r.generate.max_tokens),
                       chat ? "messages" : "prompt");
    }
    // Without an explicit limit, generate as much as fits: the context, and the whole KV pool when that is smaller
    // (an explicit max_tokens beyond the pool is refused with 400 naming it).
    if (!explicit_max) {
        uint64_t room = ctx - prompt_tokens;
        if (info.kv_pool_positions > 0) {
            room = std::min<uint64_t>(room, info.kv_pool_positions > prompt_tokens
                                                ? info.kv_pool_positions - prompt_tokens
                                                : 0);
        }
        r.generate.max_tokens = std::min<uint32_t>(r.generate.max_tokens, static_cast<uint32_t>(room));
    }

    std::shared_ptr<LogprobBuffer> logprobs;
    if (r.logprobs) {
        logprobs = std::make_shared<LogprobBuffer>();
        r.generate.top_logprobs = r.top_logprobs;
        r.generate.on_logprobs = [logprobs](const engine::TokenLogprobs& t) {
            std::lock_guard lock(logprobs->mu);
            logprobs->items.push_back(t);
        };
    }

    OpenAiContext c{chat, (chat ? "chatcmpl-" : "cmpl-") + random_hex(24), info.model_id, unix_seconds()};
    auto submitted = submit_job(ctx_, req.path, c.id, std::move(r.generate));
    if (auto* refused = std::get_if<HttpResponse>(&submitted)) return ex->reply(std::move(*refused));
    auto job = std::get<std::shared_ptr<Job>>(submitted);
    server_log(fmt::format("job {}: accepted ({} waiting){}", job->id(), ctx_.scheduler.queued(),
                           r.user.empty() ? "" : fmt::format(" for user '{}'", log_escape(r.user, 100))));
    std::weak_ptr<Job> weak = job;

    if (r.stream) {
        struct State {
            bool first = true;
            std::optional<toolcall::StreamSplitter> tools;
            size_t text_offset = 0;
        };
        auto st = std::make_shared<State>();
        if (plan.format != toolcall::Format::None) st->tools.emplace(plan.format);
        // A chunk of text with the log-probabilities reported since the last one.
        auto text_chunk = [c, st, logprobs](std::string_view text) {
            json chunk = openai_chunk(c, text, st->first);
            st->first = false;
            if (logprobs) {
                chunk["choices"][0]["logprobs"] = openai_logprobs(c.chat, logprobs->take(), st->text_offset);
            }
            return sse_data(chunk);
        };
        stream_job(ex, job, ctx_.scheduler, HttpResponse{},
                   [weak, c, st, logprobs, text_chunk, include_usage = r.include_usage, short_ids = plan.short_ids](const JobEvent& ev) {
                       switch (ev.kind) {
                           case JobEvent::Kind::Started:
                               return std::string();
                           case JobEvent::Kind::Token: {
                               const std::string text = st->tools ? st->tools->push(ev.text) : ev.text;
                               if (text.empty()) return std::string();
                               return text_chunk(text);
                           }
                           case JobEvent::Kind::End: {
                               if (auto j = weak.lock()) log_job_end(*j, ev);
                               std::string s;
                               toolcall::Parsed rest;
                               if (st->tools) {
                                   rest = st->tools->finish();
                                   assign_ids(rest.calls, short_ids);
                               }
                               if (!rest.content.empty() || (logprobs && !logprobs->empty())) {
                                   s += text_chunk(rest.content);
                               }
                               if (!rest.calls.empty()) {
                                   s += sse_data(openai_tool_calls_chunk(c, rest.calls, st->first));
                                   st->first = false;
                               }
                               // Chat clients expect the role in the first delta even when no text was generated.
                               if (st->first && c.chat) s += sse_data(openai_chunk(c, "", true));
                               json fin = openai_final_chunk(c, ev.stop_reason);
                               if (!rest.calls.empty()) fin["choices"][0]["finish_reason"] = "tool_calls";
                               s += sse_data(fin);
                               if (include_usage) s += sse_data(openai_usage_chunk(c, ev.prompt_tokens, ev.tokens_out));
                               return s + "data: [DONE]\n\n";
                           }
                           case JobEvent::Kind::Error:
                               if (auto j = weak.lock()) log_job_end(*j, ev);
                               return sse_data(openai_error(ev.message, "server_error", {},
                                                            job_error_code_name(ev.error_code))) +
                                      "data: [DONE]\n\n";
                       }
                       return std::string();
                   });
        return;
    }
    // Not streaming: the answer waits for the end; a client that leaves meanwhile cancels the job.
    collect_job(ex, job, ctx_.scheduler,
                [weak, c, logprobs, format = plan.format, short_ids = plan.short_ids, path = req.path](const std::string& text,
                                                                            const JobEvent& end) {
                    if (auto j = weak.lock()) log_job_end(*j, end);
                    if (end.kind == JobEvent::Kind::End) {
                        toolcall::Parsed p = toolcall::parse(format, text);
                        assign_ids(p.calls, short_ids);
                        json resp = openai_response(c, p.content, end.stop_reason, end.prompt_tokens, end.tokens_out);
                        json& choice = resp["choices"][0];
                        if (!p.calls.empty()) {
                            choice["message"]["tool_calls"] = openai_tool_calls(p.calls, false);
                            if (p.content.empty()) choice["message"]["content"] = nullptr;
                            choice["finish_reason"] = "tool_calls";
                        }
                        if (logprobs) {
                            size_t offset = 0;
                            choice["logprobs"] = openai_logprobs(c.chat, logprobs->take(), offset);
                        }
                        return json_response(200, resp);
                    }
                    const int status = http_status_for(end.error_code);
                    HttpResponse r = api_error(path, status, job_error_code_name(end.error_code), end.message,
                                               status >= 500 ? "server_error" : "invalid_request_error");
                    if (status == 503) r.headers.emplace_back("Retry-After", "1");
                    return r;
                });
}

}  // namespace orcd::server
