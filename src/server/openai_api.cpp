#include "server/openai_api.h"

#include <fmt/format.h>

#include "common/error.h"
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
    return {{"id", ctx_.service.info().model_id},
            {"object", "model"},
            {"created", ctx_.created_unix},
            {"owned_by", "orcd"}};
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

void OpenAiApi::generate(const HttpRequest& req, const Ex& ex, bool chat) {
    if (ctx_.scheduler.draining()) return ex->reply(unavailable(ctx_, req.path, "the worker is shutting down"));
    auto parsed = read_json_body(req, &ctx_.metrics);
    if (auto* refused = std::get_if<HttpResponse>(&parsed)) return ex->reply(std::move(*refused));
    const json& body = std::get<json>(parsed);
    std::vector<FieldError> errors;
    OpenAiRequest r = parse_openai(body, chat, ctx_.service.info().context_length, errors);
    auto invalid = [&](std::string_view code, const std::string& msg, const std::string& param, int status = 400) {
        ctx_.metrics.count_request(Outcome::Invalid);
        ex->reply(api_error(req.path, status, code, msg, "invalid_request_error", param));
    };
    if (!errors.empty()) {
        std::string msg;
        for (const auto& e : errors) msg += (msg.empty() ? "" : "; ") + e.field + ": " + e.message;
        return invalid("INVALID_VALUE", msg, errors.front().field);
    }
    const ServiceInfo& info = ctx_.service.info();
    if (r.model != info.model_id) {
        return invalid("MODEL_NOT_FOUND",
                       fmt::format("the model '{}' does not exist: this worker serves '{}'", r.model, info.model_id),
                       "model", 404);
    }
    size_t prompt_tokens = 0;
    try {
        if (chat) r.generate.prompt = ctx_.service.format_chat(r.messages);
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

    OpenAiContext c{chat, (chat ? "chatcmpl-" : "cmpl-") + random_hex(24), info.model_id, unix_seconds()};
    auto submitted = submit_job(ctx_, req.path, c.id, std::move(r.generate));
    if (auto* refused = std::get_if<HttpResponse>(&submitted)) return ex->reply(std::move(*refused));
    auto job = std::get<std::shared_ptr<Job>>(submitted);
    server_log(fmt::format("job {}: accepted ({} waiting)", job->id(), ctx_.scheduler.queued()));
    std::weak_ptr<Job> weak = job;

    if (r.stream) {
        auto first = std::make_shared<bool>(true);
        stream_job(ex, job, ctx_.scheduler, HttpResponse{},
                   [weak, c, first, include_usage = r.include_usage](const JobEvent& ev) -> std::string {
                       switch (ev.kind) {
                           case JobEvent::Kind::Started:
                               return {};
                           case JobEvent::Kind::Token: {
                               std::string s = sse_data(openai_chunk(c, ev.text, *first));
                               *first = false;
                               return s;
                           }
                           case JobEvent::Kind::End: {
                               if (auto j = weak.lock()) log_job_end(*j, ev);
                               std::string s;
                               // Chat clients expect the role in the first delta even when no text was generated.
                               if (*first && c.chat) s += sse_data(openai_chunk(c, "", true));
                               s += sse_data(openai_final_chunk(c, ev.stop_reason));
                               if (include_usage) s += sse_data(openai_usage_chunk(c, ev.prompt_tokens, ev.tokens_out));
                               return s + "data: [DONE]\n\n";
                           }
                           case JobEvent::Kind::Error:
                               if (auto j = weak.lock()) log_job_end(*j, ev);
                               return sse_data(openai_error(ev.message, "server_error", {},
                                                            job_error_code_name(ev.error_code))) +
                                      "data: [DONE]\n\n";
                       }
                       return {};
                   });
        return;
    }
    // Not streaming: the answer waits for the end; a client that leaves meanwhile cancels the job.
    collect_job(ex, job, ctx_.scheduler, [weak, c, path = req.path](const std::string& text, const JobEvent& end) {
        if (auto j = weak.lock()) log_job_end(*j, end);
        if (end.kind == JobEvent::Kind::End) {
            return json_response(200, openai_response(c, text, end.stop_reason, end.prompt_tokens, end.tokens_out));
        }
        const int status = http_status_for(end.error_code);
        HttpResponse r = api_error(path, status, job_error_code_name(end.error_code), end.message,
                                   status >= 500 ? "server_error" : "invalid_request_error");
        if (status == 503) r.headers.emplace_back("Retry-After", "1");
        return r;
    });
}

}  // namespace orcd::server
