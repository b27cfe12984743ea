// The only translation unit that includes cpp-httplib (Debian's split build: declarations here, code in the shared
// library), so the slow header is compiled once.
#include "server/http_server.h"

#include <fmt/chrono.h>
#include <fmt/format.h>
#include <httplib.h>

#include <atomic>
#include <condition_variable>
#include <cstring>
#include <mutex>
#include <nlohmann/json.hpp>
#include <random>
#include <thread>

#include "common/error.h"
#include "server/metrics.h"
#include "server/requests.h"
#include "server/residency.h"
#include "server/scheduler.h"
#include "server/wire.h"

namespace orcd::server {

using json = nlohmann::json;
using std::chrono::milliseconds;

namespace {

// How often a waiting stream wakes to look for events, and how long it may stay silent before it writes an SSE
// comment. Writing is the only way to learn that a client went away while its job waits in the queue.
constexpr milliseconds kPollInterval{50};
constexpr milliseconds kHeartbeatInterval{1000};
// After the running job ends at shutdown, how long the handlers get to write the last events before the listener
// stops.
constexpr milliseconds kFlushTimeout{2000};

void log(std::string_view msg) {
    const auto now = std::chrono::floor<milliseconds>(std::chrono::system_clock::now());
    fmt::print(stderr, "{:%Y-%m-%dT%H:%M:%S}Z orcd serve: {}\n", now, msg);
}

std::string random_hex(size_t n) {
    static thread_local std::mt19937_64 rng{std::random_device{}()};
    static constexpr char kHex[] = "0123456789abcdef";
    std::string s(n, '0');
    for (auto& c : s) c = kHex[rng() & 15];
    return s;
}

int64_t unix_seconds() {
    return std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch())
        .count();
}

// Constant-time comparison, so that response timing does not reveal how much of a guessed key was right.
bool same_secret(std::string_view a, std::string_view b) {
    unsigned diff = a.size() != b.size();
    for (size_t i = 0; i < a.size(); ++i) diff |= static_cast<unsigned char>(a[i]) ^ (i < b.size() ? b[i] : 0);
    return diff == 0;
}

bool is_openai_path(const std::string& path) {
    return path.rfind("/v1/", 0) == 0;
}

// Worker API error body: {"error": {"code", "message"[, "fields"]}}.
void worker_error(httplib::Response& res, int status, std::string_view code, std::string_view message,
                  const json& fields = nullptr) {
    json err = {{"code", code}, {"message", message}};
    if (!fields.is_null()) err["fields"] = fields;
    res.status = status;
    res.set_content(dump_json({{"error", err}}), "application/json");
}

// An error in the shape of the endpoint's API: OpenAI's error object under /v1/, the worker's otherwise.
void api_error(const httplib::Request& req, httplib::Response& res, int status, std::string_view code,
               std::string_view message, std::string_view openai_type = "invalid_request_error",
               std::string_view param = {}) {
    if (is_openai_path(req.path)) {
        res.status = status;
        res.set_content(dump_json(openai_error(message, openai_type, param, code)), "application/json");
    } else {
        worker_error(res, status, code, message);
    }
}

std::string_view status_code_name(int status) {
    switch (status) {
        case 400:
            return "BAD_REQUEST";
        case 401:
            return "UNAUTHORIZED";
        case 404:
            return "NOT_FOUND";
        case 405:
            return "METHOD_NOT_ALLOWED";
        case 408:
            return "REQUEST_TIMEOUT";
        case 409:
            return "CONFLICT";
        case 411:
            return "LENGTH_REQUIRED";
        case 413:
            return "PAYLOAD_TOO_LARGE";
        case 414:
            return "URI_TOO_LONG";
        case 415:
            return "UNSUPPORTED_MEDIA_TYPE";
        case 416:
            return "RANGE_NOT_SATISFIABLE";
        case 431:
            return "HEADERS_TOO_LARGE";
        case 503:
            return "UNAVAILABLE";
        default:
            return status >= 500 ? "INTERNAL" : "BAD_REQUEST";
    }
}

// HTTP status of an error event when the response is not a stream (OpenAI without stream: true).
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

struct HttpServer::Impl {
    InferenceService& service;
    ServerOptions opt;
    Metrics metrics;
    std::unique_ptr<ResidencyMonitor> residency;
    std::unique_ptr<Scheduler> scheduler;
    httplib::Server http;
    std::thread listener;
    int port = 0;
    const int64_t created_unix = unix_seconds();

    std::mutex mu;
    std::condition_variable cv;
    bool shutdown_requested = false;
    std::string shutdown_reason;
    bool shut_down = false;
    std::atomic<int> open_responses{0};  // streams and blocking responses still writing to a client

    Impl(InferenceService& s, ServerOptions o) : service(s), opt(std::move(o)) {
        scheduler = std::make_unique<Scheduler>(service, metrics, opt.max_queue);
        residency =
            std::make_unique<ResidencyMonitor>([this] { return service.residency_problem(); }, opt.residency_interval);
        setup();
    }

    // --- request helpers ---------------------------------------------------------------------------------------
    bool authorized(const httplib::Request& req, httplib::Response& res) {
        if (!opt.api_key) return true;
        const std::string h = req.get_header_value("Authorization");
        static constexpr std::string_view kBearer = "Bearer ";
        if (h.size() > kBearer.size() && std::string_view(h).substr(0, kBearer.size()) == kBearer &&
            same_secret(std::string_view(h).substr(kBearer.size()), *opt.api_key)) {
            return true;
        }
        res.set_header("WWW-Authenticate", "Bearer");
        api_error(req, res, 401, is_openai_path(req.path) ? "invalid_api_key" : "UNAUTHORIZED",
                  h.empty() ? "missing Authorization header: expected 'Authorization: Bearer <api key>'"
                            : "invalid API key in the Authorization header",
                  "invalid_request_error");
        return false;
    }

    // Parses a JSON body; on failure writes 415/400 and returns nullopt. Inference endpoints count it as invalid.
    std::optional<json> json_body(const httplib::Request& req, const std::string& body, httplib::Response& res,
                                  bool count) {
        std::string ct = req.get_header_value("Content-Type");
        const std::string media = ct.substr(0, ct.find(';'));
        std::string lower;
        for (char c : media) {
            if (c != ' ' && c != '\t') lower += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
        }
        if (lower != "application/json") {
            if (count) metrics.count_request(Outcome::Invalid);
            api_error(req, res, 415, is_openai_path(req.path) ? "unsupported_media_type" : "UNSUPPORTED_MEDIA_TYPE",
                      fmt::format("expected Content-Type: application/json, found {}",
                                  ct.empty() ? "no Content-Type" : "'" + ct + "'"));
            return std::nullopt;
        }
        try {
            return json::parse(body);
        } catch (const json::parse_error& e) {
            if (count) metrics.count_request(Outcome::Invalid);
            api_error(req, res, 400, is_openai_path(req.path) ? "invalid_json" : "INVALID_JSON",
                      fmt::format("the request body is not valid JSON: {}", e.what()));
            return std::nullopt;
        }
    }

    void unavailable(const httplib::Request& req, httplib::Response& res, std::string_view why) {
        metrics.count_request(Outcome::Rejected);
        res.set_header("Retry-After", "1");
        api_error(req, res, 503, is_openai_path(req.path) ? "unavailable" : "UNAVAILABLE", why, "server_error");
    }

    // Submits; on refusal writes the response and returns nullptr.
    std::shared_ptr<Job> submit(const httplib::Request& req, httplib::Response& res, std::string job_id,
                                engine::GenerateRequest gen) {
        auto s = scheduler->submit(std::move(job_id), std::move(gen));
        switch (s.status) {
            case SubmitStatus::Accepted:
                return s.job;
            case SubmitStatus::QueueFull:
                unavailable(req, res,
                            fmt::format("the job queue is full ({} waiting, --max-queue {}); retry later",
                                        scheduler->queued(), opt.max_queue));
                return nullptr;
            case SubmitStatus::Draining:
                unavailable(req, res, "the worker is shutting down");
                return nullptr;
            case SubmitStatus::DuplicateId:
                metrics.count_request(Outcome::Invalid);
                api_error(req, res, 409, "DUPLICATE_JOB_ID", "a job with this job_id is already queued or running",
                          "invalid_request_error", "job_id");
                return nullptr;
        }
        return nullptr;
    }

    // Streams a job's events through `format` (which returns the bytes for one event, possibly none). A failed
    // write means the client is gone: the job is cancelled.
    template <class Format>
    void stream(httplib::Response& res, const std::shared_ptr<Job>& job, Format format) {
        res.set_header("Cache-Control", "no-cache");
        res.set_header("X-Accel-Buffering", "no");
        open_responses.fetch_add(1);
        res.set_chunked_content_provider(
            "text/event-stream",
            [this, job, format = std::move(format)](size_t, httplib::DataSink& sink) mutable {
                auto last_write = Clock::now();
                for (;;) {
                    std::optional<JobEvent> ev = job->pop(kPollInterval);
                    std::string bytes;
                    if (ev) {
                        bytes = format(*ev);
                    } else if (Clock::now() - last_write >= kHeartbeatInterval) {
                        bytes = ": keep-alive\n\n";  // an SSE comment: clients ignore it
                    }
                    if (!bytes.empty()) {
                        if (!sink.write(bytes.data(), bytes.size())) {
                            client_gone(*job);
                            return false;
                        }
                        last_write = Clock::now();
                    }
                    if (ev && ev->terminal()) {
                        sink.done();
                        return true;
                    }
                }
            },
            [this, job](bool) {
                // Runs when the response is destroyed: whatever happened to the connection, the job must not run on
                // for nobody.
                if (!job->finished() && !job->cancelled()) client_gone(*job);
                open_responses.fetch_sub(1);
            });
    }

    void client_gone(Job& job) {
        if (scheduler->cancel(job.id(), CancelReason::ClientGone) != CancelStatus::NotFound) {
            log(fmt::format("job {}: the client disconnected; cancelling", job.id()));
        }
    }

    // --- routes ------------------------------------------------------------------------------------------------
    void handle_execute(const httplib::Request& req, const std::string& body, httplib::Response& res) {
        if (scheduler->draining()) return unavailable(req, res, "the worker is shutting down");
        auto doc = json_body(req, body, res, true);
        if (!doc) return;
        std::vector<FieldError> errors;
        ExecuteRequest r = parse_execute(*doc, service.info().context_length, errors);
        if (!errors.empty()) {
            metrics.count_request(Outcome::Invalid);
            json fields = json::object();
            std::string names;
            for (const auto& e : errors) {
                fields[e.field] = e.message;
                names += (names.empty() ? "" : ", ") + e.field;
            }
            return worker_error(
                res, 400, "INVALID_REQUEST",
                fmt::format("{} invalid field{}: {}", errors.size(), errors.size() == 1 ? "" : "s", names), fields);
        }
        auto job = submit(req, res, r.job_id, std::move(r.generate));
        if (!job) return;
        log(fmt::format("job {}: accepted ({} waiting)", job->id(), scheduler->queued()));
        const std::string model = service.info().model_id;
        stream(res, job, [this, job, model](const JobEvent& ev) {
            if (ev.terminal()) log_end(*job, ev);
            return worker_sse(ev, job->id(), model);
        });
    }

    void log_end(const Job& job, const JobEvent& ev) {
        if (ev.kind == JobEvent::Kind::End) {
            log(fmt::format("job {}: end ({} tokens, {})", job.id(), ev.tokens_out,
                            engine::stop_reason_name(ev.stop_reason)));
        } else {
            log(fmt::format("job {}: error {}: {}", job.id(), job_error_code_name(ev.error_code), ev.message));
        }
    }

    void handle_cancel(const httplib::Request& req, const std::string& body, httplib::Response& res) {
        auto doc = json_body(req, body, res, false);
        if (!doc) return;
        const json* id = doc->is_object() && doc->contains("job_id") ? &(*doc)["job_id"] : nullptr;
        if (!id || !id->is_string() || id->get<std::string>().empty()) {
            return worker_error(res, 400, "INVALID_REQUEST", "1 invalid field: job_id",
                                {{"job_id", "required: expected a non-empty string"}});
        }
        const std::string job_id = id->get<std::string>();
        const CancelStatus s = scheduler->cancel(job_id, CancelReason::Request);
        const char* state = s == CancelStatus::Running ? "running" : s == CancelStatus::Queued ? "queued" : "not_found";
        if (s != CancelStatus::NotFound) log(fmt::format("job {}: cancel requested ({})", job_id, state));
        // 202 whatever the state: cancelling is idempotent, and a job that already ended needs nothing more.
        res.status = 202;
        res.set_content(dump_json({{"job_id", job_id}, {"state", state}}), "application/json");
    }

    void handle_health(const httplib::Request&, const std::string&, httplib::Response& res) {
        const ServiceInfo& i = service.info();
        const bool resident = residency->healthy();
        const backend::DeviceMemoryReport vram = service.device_memory();
        json j = {{"status", resident ? "healthy" : "unhealthy"},
                  {"model", i.model_id},
                  {"model_path", i.model_path},
                  {"arch", i.arch},
                  {"resident", resident},
                  {"quant_kind", i.quant_kind},
                  {"vram_bytes_used", vram.total()},
                  {"vram", {{"weights", vram.weights}, {"kv_cache", vram.kv_cache}, {"workspace", vram.workspace}}},
                  {"tokenizer_kind", i.tokenizer_kind},
                  {"vocab_size", i.vocab_size},
                  {"context_length", i.context_length},
                  {"uptime_seconds", metrics.uptime_seconds()},
                  {"device", i.device},
                  {"worker_id", opt.worker_id},
                  {"accepting_jobs", !scheduler->draining()},
                  {"busy", scheduler->busy()},
                  {"queue_depth", scheduler->queued()}};
        if (!resident) j["problem"] = residency->problem();
        res.status = resident ? 200 : 503;
        res.set_content(dump_json(j), "application/json");
    }

    void handle_metrics(const httplib::Request&, const std::string&, httplib::Response& res) {
        metrics.set_vram_bytes(service.device_memory().total());  // read now: the KV cache comes with the first job
        res.set_content(metrics.render(), "text/plain; version=0.0.4; charset=utf-8");
    }

    void handle_shutdown(const httplib::Request&, const std::string&, httplib::Response& res) {
        res.status = 202;
        res.set_content(dump_json({{"status", "shutting_down"}}), "application/json");
        request_shutdown("POST /shutdown");
    }

    json model_object() const {
        return {{"id", service.info().model_id}, {"object", "model"}, {"created", created_unix}, {"owned_by", "orcd"}};
    }

    void handle_openai(const httplib::Request& req, const std::string& body_text, httplib::Response& res, bool chat) {
        if (scheduler->draining()) return unavailable(req, res, "the worker is shutting down");
        auto body = json_body(req, body_text, res, true);
        if (!body) return;
        std::vector<FieldError> errors;
        OpenAiRequest r = parse_openai(*body, chat, service.info().context_length, errors);
        auto invalid = [&](std::string_view code, const std::string& msg, const std::string& param, int status = 400) {
            metrics.count_request(Outcome::Invalid);
            api_error(req, res, status, code, msg, "invalid_request_error", param);
        };
        if (!errors.empty()) {
            std::string msg;
            for (const auto& e : errors) msg += (msg.empty() ? "" : "; ") + e.field + ": " + e.message;
            return invalid("invalid_value", msg, errors.front().field);
        }
        const ServiceInfo& info = service.info();
        if (r.model != info.model_id) {
            return invalid(
                "model_not_found",
                fmt::format("the model '{}' does not exist: this worker serves '{}'", r.model, info.model_id), "model",
                404);
        }
        size_t prompt_tokens = 0;
        try {
            if (chat) r.generate.prompt = service.format_chat(r.messages);
            prompt_tokens = service.count_prompt_tokens(r.generate);
        } catch (const Error& e) {
            return invalid(e.code() == ErrorCode::ChatTemplate ? "chat_template" : "invalid_value", e.what(),
                           chat ? "messages" : "prompt");
        }
        const uint32_t ctx = info.context_length;
        const bool explicit_max = body->contains("max_tokens") || body->contains("max_completion_tokens");
        if (prompt_tokens >= ctx || (explicit_max && prompt_tokens + r.generate.max_tokens > ctx)) {
            return invalid("context_length_exceeded",
                           fmt::format("this model's context is {} tokens; the prompt has {} and {} more were "
                                       "requested",
                                       ctx, prompt_tokens, r.generate.max_tokens),
                           chat ? "messages" : "prompt");
        }
        // Without an explicit limit, generate as much as fits.
        if (!explicit_max) r.generate.max_tokens = std::min<uint32_t>(r.generate.max_tokens, ctx - prompt_tokens);

        OpenAiContext c{chat, (chat ? "chatcmpl-" : "cmpl-") + random_hex(24), info.model_id, unix_seconds()};
        auto job = submit(req, res, c.id, std::move(r.generate));
        if (!job) return;
        log(fmt::format("job {}: accepted ({} waiting)", job->id(), scheduler->queued()));

        if (r.stream) {
            struct State {
                bool first = true;
                uint64_t completion_tokens = 0;
            };
            auto st = std::make_shared<State>();
            stream(res, job, [this, job, c, st, include_usage = r.include_usage](const JobEvent& ev) {
                switch (ev.kind) {
                    case JobEvent::Kind::Started:
                        return std::string();
                    case JobEvent::Kind::Token: {
                        std::string s = sse_data(openai_chunk(c, ev.text, st->first));
                        st->first = false;
                        return s;
                    }
                    case JobEvent::Kind::End: {
                        log_end(*job, ev);
                        std::string s;
                        // Chat clients expect the role in the first delta even when no text was generated.
                        if (st->first && c.chat) s += sse_data(openai_chunk(c, "", true));
                        s += sse_data(openai_final_chunk(c, ev.stop_reason));
                        if (include_usage) s += sse_data(openai_usage_chunk(c, ev.prompt_tokens, ev.tokens_out));
                        return s + "data: [DONE]\n\n";
                    }
                    case JobEvent::Kind::Error:
                        log_end(*job, ev);
                        return sse_data(
                                   openai_error(ev.message, "server_error", {}, job_error_code_name(ev.error_code))) +
                               "data: [DONE]\n\n";
                }
                return std::string();
            });
            return;
        }

        // Not streaming: wait for the end here. A client that leaves cannot be noticed without writing, so the job
        // runs to its end (bounded by max_tokens) unless cancelled through /cancel with its id.
        open_responses.fetch_add(1);
        std::string text;
        std::optional<JobEvent> end;
        while (!end) {
            std::optional<JobEvent> ev = job->pop(kPollInterval);
            if (!ev) continue;
            if (ev->kind == JobEvent::Kind::Token) text += ev->text;
            if (ev->terminal()) end = std::move(ev);
        }
        log_end(*job, *end);
        if (end->kind == JobEvent::Kind::End) {
            res.set_content(dump_json(openai_response(c, text, end->stop_reason, end->prompt_tokens, end->tokens_out)),
                            "application/json");
        } else {
            const int status = http_status_for(end->error_code);
            if (status == 503) res.set_header("Retry-After", "1");
            api_error(req, res, status, job_error_code_name(end->error_code), end->message,
                      status >= 500 ? "server_error" : "invalid_request_error");
        }
        open_responses.fetch_sub(1);
    }

    // --- wiring ------------------------------------------------------------------------------------------------
    using Route = void (Impl::*)(const httplib::Request&, const std::string&, httplib::Response&);

    // Every route goes through here: the body (read here, within the size limit), then authentication (all but
    // /health). POST routes take the body themselves because httplib, given a POST with neither Content-Length nor
    // chunked encoding, would wait for the connection to close (RFC 9112 says such a request has no body).
    httplib::Server::HandlerWithContentReader post_route(bool needs_auth, bool needs_body, Route fn) {
        return [this, needs_auth, needs_body, fn](const httplib::Request& req, httplib::Response& res,
                                                  const httplib::ContentReader& reader) {
            std::string body;
            const bool chunked = req.get_header_value("Transfer-Encoding").find("chunked") != std::string::npos;
            if (req.has_header("Content-Length") || chunked) {
                const bool ok = reader([&](const char* data, size_t n) {
                    body.append(data, n);
                    return true;
                });
                if (!ok) {
                    // The reader has set 413 when the body exceeds the limit; anything else is a broken body.
                    if (res.status < 400) res.status = 400;
                    return;
                }
            } else if (needs_body) {
                return api_error(req, res, 411, "LENGTH_REQUIRED",
                                 "a JSON body with a Content-Length (or chunked encoding) is required");
            }
            if (needs_auth && !authorized(req, res)) return;
            (this->*fn)(req, body, res);
        };
    }

    httplib::Server::Handler get_route(bool needs_auth, Route fn) {
        return [this, needs_auth, fn](const httplib::Request& req, httplib::Response& res) {
            if (needs_auth && !authorized(req, res)) return;
            (this->*fn)(req, std::string(), res);
        };
    }

    void setup() {
        // Every handler thread may block on a job's stream: enough threads for every queued and running job plus
        // the control endpoints (/cancel must get through while the queue is full), and idle keep-alive clients.
        const size_t threads = opt.max_queue + 1 + 32;
        http.new_task_queue = [threads] { return new httplib::ThreadPool(threads); };
        http.set_payload_max_length(opt.max_body_bytes);
        http.set_tcp_nodelay(true);  // tokens are small writes that should leave at once

        struct RouteSpec {
            const char* path;
            bool post;
            bool auth;
            bool needs_body;
            Route fn;
        };
        static const RouteSpec kRoutes[] = {
            {"/execute", true, true, true, &Impl::handle_execute},
            {"/cancel", true, true, true, &Impl::handle_cancel},
            {"/shutdown", true, true, false, &Impl::handle_shutdown},
            {"/health", false, false, false, &Impl::handle_health},
            {"/metrics", false, true, false, &Impl::handle_metrics},
            {"/v1/models", false, true, false, &Impl::handle_models},
            {"/v1/models/(.+)", false, true, false, &Impl::handle_model},
            {"/v1/completions", true, true, true, &Impl::handle_completions},
            {"/v1/chat/completions", true, true, true, &Impl::handle_chat},
        };
        for (const RouteSpec& r : kRoutes) {
            const std::string allow = r.post ? "POST" : "GET, HEAD";
            // A known path with another method is 405 with Allow, not 404.
            auto not_allowed = [allow](const httplib::Request& req, httplib::Response& res) {
                res.set_header("Allow", allow);
                api_error(req, res, 405, "METHOD_NOT_ALLOWED",
                          fmt::format("{} does not accept {}: expected {}", req.path, req.method, allow));
            };
            if (r.post) {
                http.Post(r.path, post_route(r.auth, r.needs_body, r.fn));
                http.Get(r.path, not_allowed);
            } else {
                http.Get(r.path, get_route(r.auth, r.fn));
                http.Post(r.path, not_allowed);
            }
            http.Put(r.path, not_allowed);
            http.Patch(r.path, not_allowed);
            http.Delete(r.path, not_allowed);
        }

        // Responses with an error status but no body (unknown paths, 413 from the body limit, malformed requests)
        // get a JSON body in the endpoint's error shape.
        http.set_error_handler([](const httplib::Request& req, httplib::Response& res) {
            if (!res.body.empty()) return;
            std::string msg;
            if (res.status == 404) {
                msg = fmt::format("no route for {} {}", req.method, req.path);
            } else if (res.status == 413) {
                msg = "the request body exceeds the size limit";
            } else if (res.status == 400) {
                msg = "malformed HTTP request: the request line, a header or the body could not be parsed";
            } else if (res.status == 414) {
                msg = "the request URI is too long";
            } else {
                msg = fmt::format("the request was rejected with HTTP {}", res.status);
            }
            api_error(req, res, res.status, status_code_name(res.status), msg,
                      res.status >= 500 ? "server_error" : "invalid_request_error");
        });
        http.set_exception_handler([](const httplib::Request& req, httplib::Response& res, std::exception_ptr ep) {
            std::string what = "unknown exception";
            try {
                std::rethrow_exception(ep);
            } catch (const std::exception& e) {
                what = e.what();
            } catch (...) {
            }
            log(fmt::format("internal error on {} {}: {}", req.method, req.path, what));
            api_error(req, res, 500, "INTERNAL", what, "server_error");
        });
    }

    void handle_models(const httplib::Request&, const std::string&, httplib::Response& res) {
        res.set_content(dump_json({{"object", "list"}, {"data", json::array({model_object()})}}), "application/json");
    }
    void handle_model(const httplib::Request& req, const std::string&, httplib::Response& res) {
        const std::string id = req.matches[1];
        if (id != service.info().model_id) {
            return api_error(
                req, res, 404, "model_not_found",
                fmt::format("the model '{}' does not exist: this worker serves '{}'", id, service.info().model_id),
                "invalid_request_error", "model");
        }
        res.set_content(dump_json(model_object()), "application/json");
    }
    void handle_completions(const httplib::Request& req, const std::string& body, httplib::Response& res) {
        handle_openai(req, body, res, false);
    }
    void handle_chat(const httplib::Request& req, const std::string& body, httplib::Response& res) {
        handle_openai(req, body, res, true);
    }

    void request_shutdown(std::string reason) {
        {
            std::lock_guard lock(mu);
            if (shutdown_requested) return;
            shutdown_requested = true;
            shutdown_reason = std::move(reason);
        }
        // From here on new work gets 503; queued jobs end with CANCELLED.
        scheduler->begin_drain();
        cv.notify_all();
    }
};

HttpServer::HttpServer(InferenceService& service, ServerOptions options)
    : impl_(std::make_unique<Impl>(service, std::move(options))) {}

HttpServer::~HttpServer() {
    shutdown();
}

int HttpServer::bind() {
    Impl& s = *impl_;
    if (s.opt.port == 0) {
        s.port = s.http.bind_to_any_port(s.opt.host);
    } else {
        s.port = s.http.bind_to_port(s.opt.host, s.opt.port) ? s.opt.port : -1;
    }
    if (s.port <= 0) {
        throw Error(ErrorCode::InvalidArgument,
                    fmt::format("cannot listen on {}:{}: {} (is the port in use or the address not local?)", s.opt.host,
                                s.opt.port, std::strerror(errno)));
    }
    return s.port;
}

void HttpServer::start() {
    impl_->listener = std::thread([this] { impl_->http.listen_after_bind(); });
}

std::string HttpServer::wait_for_shutdown_request() {
    std::unique_lock lock(impl_->mu);
    impl_->cv.wait(lock, [&] { return impl_->shutdown_requested; });
    return impl_->shutdown_reason;
}

void HttpServer::request_shutdown(std::string reason) {
    impl_->request_shutdown(std::move(reason));
}

void HttpServer::shutdown() {
    Impl& s = *impl_;
    {
        std::lock_guard lock(s.mu);
        if (s.shut_down) return;
        s.shut_down = true;
    }
    s.request_shutdown("shutdown");
    const auto t0 = Clock::now();
    const bool finished = s.scheduler->drain(s.opt.shutdown_grace);
    log(finished ? "shutdown: no job running"
                 : fmt::format("shutdown: the running job did not finish within {} ms and was cancelled",
                               s.opt.shutdown_grace.count()));
    // Give the handlers a moment to write the final events of the jobs that just ended.
    while (s.open_responses.load() > 0 && Clock::now() - t0 < s.opt.shutdown_grace + kFlushTimeout) {
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    s.http.stop();
    if (s.listener.joinable()) s.listener.join();
    s.residency.reset();
    s.scheduler.reset();
}

}  // namespace orcd::server
