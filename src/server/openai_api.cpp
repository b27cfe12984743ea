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
        case JobErrorCode::InvalidRequest: return 400;
        case JobErrorCode::Cancelled: return 409;
        case JobErrorCode::VramOom: return 503;
        case JobErrorCode::Internal: return 500;
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
            return invalid(
                "INVALID_VALUE",
                fmt::format("logit_bias: token id {} is outside the vocabulary of {} tokens", id, info.vocab_size),
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
    try {
        if (chat) r.generate.prompt = ctx_.service.format_chat_with_tools(r.messages, r.tools);
        // Tokenized once here: the context check needs the count, and the engine (every choice) takes the ids.
        r.generate.prompt_ids = ctx_.service.prompt_tokens(r.generate);
    } catch (const Error& e) {
        return invalid(e.code() == ErrorCode::ChatTemplate ? "CHAT_TEMPLATE" : "INVALID_VALUE", e.what(),
                       chat ? "messages" : "prompt");
    }
    const size_t prompt_tokens = r.generate.prompt_ids.size();
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
            room = std::min<uint64_t>(
                room, info.kv_pool_positions > prompt_tokens ? info.kv_pool_positions - prompt_tokens : 0);
        }
        r.generate.max_tokens = std::min<uint32_t>(r.generate.max_tokens, static_cast<uint32_t>(room));
    }

    OpenAiContext c{chat, (chat ? "chatcmpl-" : "cmpl-") + random_hex(24), info.model_id, unix_seconds()};
    // The n choices run as n jobs, each its own sequence in the batch (the prompt's KV shared through the prefix
    // cache once its pages are complete). Choice i samples with seed + i (mod 2^64), so choice 0 is the n = 1
    // answer for the same seed, and each choice is reproducible on its own; without a seed each draws its own.
    std::vector<std::shared_ptr<LogprobBuffer>> logprobs(r.n);
    std::vector<std::shared_ptr<Job>> jobs;
    for (uint32_t i = 0; i < r.n; ++i) {
        engine::GenerateRequest g = r.generate;
        if (g.sampling.seed) g.sampling.seed = *g.sampling.seed + i;
        if (r.logprobs) {
            auto buffer = logprobs[i] = std::make_shared<LogprobBuffer>();
            g.top_logprobs = r.top_logprobs;
            g.on_logprobs = [buffer](const engine::TokenLogprobs& t) {
                std::lock_guard lock(buffer->mu);
                buffer->items.push_back(t);
            };
        }
        auto submitted = submit_job(ctx_, req.path, i == 0 ? c.id : fmt::format("{}-{}", c.id, i), std::move(g));
        if (auto* refused = std::get_if<HttpResponse>(&submitted)) {
            // The request is refused whole: the choices already queued are withdrawn.
            for (const auto& j : jobs) ctx_.scheduler.cancel(j->id(), CancelReason::Request);
            return ex->reply(std::move(*refused));
        }
        jobs.push_back(std::get<std::shared_ptr<Job>>(submitted));
    }
    server_log(fmt::format("job {}: accepted{} ({} waiting){}", c.id, r.n > 1 ? fmt::format(" as {} choices", r.n) : "",
                           ctx_.scheduler.queued(),
                           r.user.empty() ? "" : fmt::format(" for user '{}'", log_escape(r.user, 100))));
    std::vector<std::weak_ptr<Job>> weak(jobs.begin(), jobs.end());

    if (r.stream) {
        // Per choice: whether its first chunk is out, its tool-call splitter, its log-probabilities' text offset.
        struct Choice {
            bool first = true;
            std::optional<toolcall::StreamSplitter> tools;
            size_t text_offset = 0;
        };
        struct State {
            std::vector<Choice> choices;
            uint64_t prompt_tokens = 0;
            uint64_t completion_tokens = 0;  // over every choice
        };
        auto st = std::make_shared<State>();
        st->choices.resize(r.n);
        if (plan.format != toolcall::Format::None) {
            for (Choice& ch : st->choices) ch.tools.emplace(plan.format);
        }
        auto indexed = [](json chunk, size_t i) {
            for (json& choice : chunk["choices"]) choice["index"] = i;
            return sse_data(chunk);
        };
        // A chunk of choice i's text with the log-probabilities reported since the last one.
        auto text_chunk = [c, st, logprobs, indexed](size_t i, std::string_view text) {
            Choice& ch = st->choices[i];
            json chunk = openai_chunk(c, text, ch.first);
            ch.first = false;
            if (logprobs[i]) {
                chunk["choices"][0]["logprobs"] = openai_logprobs(c.chat, logprobs[i]->take(), ch.text_offset);
            }
            return indexed(std::move(chunk), i);
        };
        auto format = [weak, c, st, logprobs, text_chunk, indexed, short_ids = plan.short_ids](size_t i,
                                                                                               const JobEvent& ev) {
            Choice& ch = st->choices[i];
            switch (ev.kind) {
                case JobEvent::Kind::Started: return std::string();
                case JobEvent::Kind::Token: {
                    const std::string text = ch.tools ? ch.tools->push(ev.text) : ev.text;
                    if (text.empty()) return std::string();
                    return text_chunk(i, text);
                }
                case JobEvent::Kind::End: {
                    if (auto j = weak[i].lock()) log_job_end(*j, ev);
                    st->prompt_tokens = ev.prompt_tokens;
                    st->completion_tokens += ev.tokens_out;
                    std::string s;
                    toolcall::Parsed rest;
                    if (ch.tools) {
                        rest = ch.tools->finish();
                        assign_ids(rest.calls, short_ids);
                    }
                    if (!rest.content.empty() || (logprobs[i] && !logprobs[i]->empty())) {
                        s += text_chunk(i, rest.content);
                    }
                    if (!rest.calls.empty()) {
                        s += indexed(openai_tool_calls_chunk(c, rest.calls, ch.first), i);
                        ch.first = false;
                    }
                    // Chat clients expect the role in the first delta even when no text was generated.
                    if (ch.first && c.chat) s += indexed(openai_chunk(c, "", true), i);
                    json fin = openai_final_chunk(c, ev.stop_reason);
                    if (!rest.calls.empty()) fin["choices"][0]["finish_reason"] = "tool_calls";
                    return s + indexed(std::move(fin), i);
                }
                case JobEvent::Kind::Error:
                    if (auto j = weak[i].lock()) log_job_end(*j, ev);
                    return sse_data(openai_error(ev.message, "server_error", {}, job_error_code_name(ev.error_code)));
            }
            return std::string();
        };
        // After the last choice: the usage (prompt once, completion tokens summed over the choices), then [DONE].
        auto tail = [c, st, include_usage = r.include_usage](bool ok) {
            std::string s;
            if (ok && include_usage) s += sse_data(openai_usage_chunk(c, st->prompt_tokens, st->completion_tokens));
            return s + "data: [DONE]\n\n";
        };
        stream_jobs(ex, jobs, ctx_.scheduler, HttpResponse{}, std::move(format), std::move(tail));
        return;
    }
    // Not streaming: the answer waits for every choice; a client that leaves meanwhile cancels the jobs.
    collect_jobs(ex, jobs, ctx_.scheduler,
                 [weak, c, logprobs, format = plan.format, short_ids = plan.short_ids, path = req.path](
                     const std::vector<std::string>& texts, const std::vector<JobEvent>& ends) {
                     for (size_t i = 0; i < ends.size(); ++i) {
                         if (ends[i].kind != JobEvent::Kind::Error) continue;
                         if (auto j = weak[i].lock()) log_job_end(*j, ends[i]);
                         const int status = http_status_for(ends[i].error_code);
                         HttpResponse r =
                             api_error(path, status, job_error_code_name(ends[i].error_code), ends[i].message,
                                       status >= 500 ? "server_error" : "invalid_request_error");
                         if (status == 503) r.headers.emplace_back("Retry-After", "1");
                         return r;
                     }
                     json resp;
                     uint64_t completion_tokens = 0;
                     for (size_t i = 0; i < ends.size(); ++i) {
                         const JobEvent& end = ends[i];
                         if (auto j = weak[i].lock()) log_job_end(*j, end);
                         toolcall::Parsed p = toolcall::parse(format, texts[i]);
                         assign_ids(p.calls, short_ids);
                         json one = openai_response(c, p.content, end.stop_reason, end.prompt_tokens, end.tokens_out);
                         json choice = std::move(one["choices"][0]);
                         choice["index"] = i;
                         if (!p.calls.empty()) {
                             choice["message"]["tool_calls"] = openai_tool_calls(p.calls, false);
                             if (p.content.empty()) choice["message"]["content"] = nullptr;
                             choice["finish_reason"] = "tool_calls";
                         }
                         if (logprobs[i]) {
                             size_t offset = 0;
                             choice["logprobs"] = openai_logprobs(c.chat, logprobs[i]->take(), offset);
                         }
                         if (i == 0) {
                             resp = std::move(one);
                             resp["choices"] = json::array();
                         }
                         resp["choices"].push_back(std::move(choice));
                         completion_tokens += end.tokens_out;
                     }
                     // The prompt counts once; the completion tokens of every choice.
                     resp["usage"] = openai_usage(ends[0].prompt_tokens, completion_tokens);
                     return json_response(200, resp);
                 });
}

}  // namespace orcd::server
