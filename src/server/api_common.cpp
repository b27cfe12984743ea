#include "server/api_common.h"

#include <arpa/inet.h>
#include <fmt/chrono.h>
#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <mutex>
#include <random>

#include "common/error.h"
#include "engine/grammar_constraint.h"
#include "server/json_guard.h"
#include "server/requests.h"
#include "server/wire.h"

namespace orcd::server {

using json = nlohmann::json;

void server_log(std::string_view msg) {
    const auto now = std::chrono::floor<std::chrono::milliseconds>(std::chrono::system_clock::now());
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

bool is_openai_path(std::string_view path) { return path.rfind("/v1/", 0) == 0; }

HttpResponse json_response(int status, const json& body) {
    HttpResponse r;
    r.status = status;
    r.body = dump_json(body);
    return r;
}

HttpResponse api_error(std::string_view path, int status, std::string_view code, std::string_view message,
                       std::string_view openai_type, std::string_view param, const json& fields) {
    if (is_openai_path(path)) {
        std::string lower(code);
        for (char& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
        return json_response(status, openai_error(message, openai_type, param, lower));
    }
    json err = {{"code", code}, {"message", message}};
    if (!fields.is_null()) err["fields"] = fields;
    return json_response(status, {{"error", err}});
}

std::string_view status_code_name(int status) {
    switch (status) {
        case 400: return "BAD_REQUEST";
        case 401: return "UNAUTHORIZED";
        case 403: return "FORBIDDEN";
        case 404: return "NOT_FOUND";
        case 405: return "METHOD_NOT_ALLOWED";
        case 408: return "REQUEST_TIMEOUT";
        case 409: return "CONFLICT";
        case 411: return "LENGTH_REQUIRED";
        case 413: return "PAYLOAD_TOO_LARGE";
        case 414: return "URI_TOO_LONG";
        case 415: return "UNSUPPORTED_MEDIA_TYPE";
        case 431: return "HEADERS_TOO_LARGE";
        case 503: return "UNAVAILABLE";
        default: return status >= 500 ? "INTERNAL" : "BAD_REQUEST";
    }
}

namespace {

std::string lowercase(std::string_view s) {
    std::string out(s);
    for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return out;
}

bool is_ip_literal(std::string_view host) {
    unsigned char buf[16];
    if (host.size() > 2 && host.front() == '[' && host.back() == ']') {
        const std::string v6(host.substr(1, host.size() - 2));
        return inet_pton(AF_INET6, v6.c_str(), buf) == 1;
    }
    const std::string v4(host);
    return inet_pton(AF_INET, v4.c_str(), buf) == 1;
}

// Constant-time comparison, so that response timing does not reveal how much of a guessed key was right.
bool same_secret(std::string_view a, std::string_view b) {
    unsigned diff = a.size() != b.size();
    for (size_t i = 0; i < a.size(); ++i) diff |= static_cast<unsigned char>(a[i]) ^ (i < b.size() ? b[i] : 0);
    return diff == 0;
}

}  // namespace

bool host_allowed(std::string_view host_header, const ServerOptions& opt) {
    // Strip the port: "[::1]:8080" -> "[::1]", "localhost:8080" -> "localhost".
    std::string_view host = host_header;
    if (!host.empty() && host.front() == '[') {
        host = host.substr(0, host.find(']') == std::string_view::npos ? host.size() : host.find(']') + 1);
    } else if (const size_t colon = host.rfind(':'); colon != std::string_view::npos) {
        host = host.substr(0, colon);
    }
    if (!host.empty() && host.back() == '.') host.remove_suffix(1);  // "localhost." is localhost
    const std::string h = lowercase(host);
    if (h.empty()) return false;
    // An IP literal cannot be rebound: a page that reaches the worker by its address is not another site's page.
    if (is_ip_literal(h) || h == "localhost" || h == lowercase(opt.host)) return true;
    return std::any_of(opt.allowed_hosts.begin(), opt.allowed_hosts.end(),
                       [&](const std::string& a) { return a == "*" || lowercase(a) == h; });
}

bool origin_allowed(std::string_view origin, std::string_view host, const ServerOptions& opt) {
    // The worker's own pages (the chat page at /) are same-origin: the Origin names the Host the request was sent
    // to, which host_allowed() has already checked names this server.
    if (!host.empty() && (origin == fmt::format("http://{}", host) || origin == fmt::format("https://{}", host))) {
        return true;
    }
    return std::any_of(opt.allowed_origins.begin(), opt.allowed_origins.end(),
                       [&](const std::string& a) { return a == "*" || a == origin; });
}

std::optional<HttpResponse> check_access(const ServerOptions& opt, const HttpRequest& req, bool needs_auth,
                                         bool state_changing) {
    const std::string& host = req.header("host");
    if (!host_allowed(host, opt)) {
        return api_error(req.path, 403, "HOST_NOT_ALLOWED",
                         fmt::format("the Host header {} does not name this server (a defence against DNS "
                                     "rebinding): use its address or localhost, or add the name with --allowed-hosts",
                                     host.empty() ? "is missing and" : "'" + log_escape(host, 100) + "'"),
                         "invalid_request_error");
    }
    if (state_changing && req.has_header("origin")) {
        // Browsers send Origin with every cross-origin POST; a page on another site must not drive the worker
        // (a text/plain POST needs no preflight, so CORS alone would not stop it).
        const std::string& origin = req.header("origin");
        if (!origin_allowed(origin, host, opt)) {
            return api_error(req.path, 403, "ORIGIN_NOT_ALLOWED",
                             fmt::format("cross-origin request from '{}' refused: add the origin with "
                                         "--allowed-origins to allow it",
                                         log_escape(origin, 100)),
                             "invalid_request_error");
        }
    }
    if (needs_auth && opt.api_key) {
        const std::string& h = req.header("authorization");
        static constexpr std::string_view kBearer = "Bearer ";
        if (h.size() > kBearer.size() && std::string_view(h).substr(0, kBearer.size()) == kBearer &&
            same_secret(std::string_view(h).substr(kBearer.size()), *opt.api_key)) {
            return std::nullopt;
        }
        HttpResponse r = api_error(req.path, 401, is_openai_path(req.path) ? "INVALID_API_KEY" : "UNAUTHORIZED",
                                   h.empty() ? "missing Authorization header: expected 'Authorization: Bearer <api "
                                               "key>'"
                                             : "invalid API key in the Authorization header",
                                   "invalid_request_error");
        r.headers.emplace_back("WWW-Authenticate", "Bearer");
        return r;
    }
    return std::nullopt;
}

std::variant<json, HttpResponse> read_json_body(const HttpRequest& req, Metrics* metrics) {
    auto fail = [&](HttpResponse r) {
        if (metrics) metrics->count_request(Outcome::Invalid);
        return r;
    };
    const bool openai = is_openai_path(req.path);
    const std::string& ct = req.header("content-type");
    std::string media;
    for (char c : ct.substr(0, ct.find(';'))) {
        if (c != ' ' && c != '\t') media += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    }
    if (media != "application/json") {
        return fail(api_error(req.path, 415, "UNSUPPORTED_MEDIA_TYPE",
                              fmt::format("expected Content-Type: application/json, found {}",
                                          ct.empty() ? "no Content-Type" : "'" + log_escape(ct, 100) + "'")));
    }
    // Compressed bodies are refused rather than inflated: a 254 KB gzip body can inflate to gigabytes, and no
    // client of a local worker needs request compression.
    const std::string enc = lowercase(req.header("content-encoding"));
    if (!enc.empty() && enc != "identity") {
        return fail(api_error(
            req.path, 415, "UNSUPPORTED_MEDIA_TYPE",
            fmt::format("Content-Encoding '{}' is not accepted: send the body uncompressed", log_escape(enc, 60))));
    }
    if (auto bad = prescan_json(req.body)) {
        return fail(api_error(req.path, 400, openai ? "INVALID_VALUE" : "INVALID_REQUEST",
                              fmt::format("{}: {}", bad->field, bad->message), "invalid_request_error", bad->field,
                              json{{bad->field, bad->message}}));
    }
    try {
        return json::parse(req.body);
    } catch (const json::exception& e) {
        return fail(
            api_error(req.path, 400, "INVALID_JSON", fmt::format("the request body is not valid JSON: {}", e.what())));
    }
}

namespace {

// The consumer side of one request's jobs (its choices) for one exchange. The listeners run on the scheduler's thread
// (and once on the caller's when events were already waiting): one mutex over every choice keeps the events in order.
struct Delivery {
    std::mutex mu;
    bool done = false;
};

// `on_event(choice, event)` returns true when the exchange is finished: nothing more is delivered, the jobs still
// running are cancelled (a request whose choice failed has failed) and the listeners let go of the exchange.
void attach(const std::shared_ptr<Exchange>& ex, const std::vector<std::shared_ptr<Job>>& jobs, Scheduler& scheduler,
            std::function<bool(size_t, const JobEvent&)> on_event) {
    auto d = std::make_shared<Delivery>();
    std::vector<std::weak_ptr<Job>> weak(jobs.begin(), jobs.end());
    ex->on_disconnect([&scheduler, weak] {
        for (const auto& w : weak) {
            auto j = w.lock();
            if (j && scheduler.cancel(j->id(), CancelReason::ClientGone) != CancelStatus::NotFound) {
                server_log(fmt::format("job {}: the client disconnected; cancelling", log_escape(j->id())));
            }
        }
    });
    auto on = std::make_shared<std::function<bool(size_t, const JobEvent&)>>(std::move(on_event));
    for (size_t choice = 0; choice < jobs.size(); ++choice) {
        jobs[choice]->set_listener([d, weak, choice, on] {
            auto j = weak[choice].lock();
            if (!j) return;
            std::lock_guard lock(d->mu);
            while (!d->done) {
                std::optional<JobEvent> ev = j->try_pop();
                if (!ev) break;
                if ((*on)(choice, *ev)) d->done = true;
            }
            if (!d->done) return;
            // The last event is out: cancel what still runs (only when a choice failed) and drop the exchange now
            // (every listener captures it).
            for (const auto& w : weak) {
                if (auto other = w.lock()) {
                    if (!other->finished()) other->cancel(CancelReason::Request);
                    other->set_listener(nullptr);
                }
            }
        });
    }
}

}  // namespace

void stream_jobs(const std::shared_ptr<Exchange>& ex, const std::vector<std::shared_ptr<Job>>& jobs,
                 Scheduler& scheduler, HttpResponse head, std::function<std::string(size_t, const JobEvent&)> format,
                 std::function<std::string(bool)> tail) {
    head.content_type = "text/event-stream";
    head.headers.emplace_back("Cache-Control", "no-cache");
    head.headers.emplace_back("X-Accel-Buffering", "no");
    ex->begin_stream(std::move(head));
    auto open = std::make_shared<size_t>(jobs.size());  // guarded by the delivery's mutex
    attach(ex, jobs, scheduler,
           [ex, open, format = std::move(format), tail = std::move(tail)](size_t choice, const JobEvent& ev) {
               std::string bytes = format(choice, ev);
               const bool failed = ev.kind == JobEvent::Kind::Error;
               const bool last = failed || (ev.terminal() && --*open == 0);
               if (last && tail) bytes += tail(!failed);
               if (!bytes.empty()) ex->write(std::move(bytes));
               if (last) ex->end_stream();
               return last;
           });
}

void stream_job(const std::shared_ptr<Exchange>& ex, const std::shared_ptr<Job>& job, Scheduler& scheduler,
                HttpResponse head, std::function<std::string(const JobEvent&)> format) {
    stream_jobs(ex, {job}, scheduler, std::move(head),
                [format = std::move(format)](size_t, const JobEvent& ev) { return format(ev); }, {});
}

void collect_jobs(const std::shared_ptr<Exchange>& ex, const std::vector<std::shared_ptr<Job>>& jobs,
                  Scheduler& scheduler,
                  std::function<HttpResponse(const std::vector<std::string>&, const std::vector<JobEvent>&)> finish) {
    struct Collected {
        std::vector<std::string> texts;
        std::vector<JobEvent> ends;
        size_t open = 0;
    };
    auto c = std::make_shared<Collected>();  // guarded by the delivery's mutex
    c->texts.resize(jobs.size());
    c->ends.resize(jobs.size());
    c->open = jobs.size();
    attach(ex, jobs, scheduler, [ex, c, finish = std::move(finish)](size_t choice, const JobEvent& ev) {
        if (ev.kind == JobEvent::Kind::Token) c->texts[choice] += ev.text;
        if (!ev.terminal()) return false;
        c->ends[choice] = ev;
        const bool last = ev.kind == JobEvent::Kind::Error || --c->open == 0;
        if (last) ex->reply(finish(c->texts, c->ends));
        return last;
    });
}

void collect_job(const std::shared_ptr<Exchange>& ex, const std::shared_ptr<Job>& job, Scheduler& scheduler,
                 std::function<HttpResponse(const std::string&, const JobEvent&)> finish) {
    collect_jobs(ex, {job}, scheduler,
                 [finish = std::move(finish)](const std::vector<std::string>& texts,
                                              const std::vector<JobEvent>& ends) { return finish(texts[0], ends[0]); });
}

void log_job_end(const Job& job, const JobEvent& ev) {
    if (ev.kind == JobEvent::Kind::End) {
        server_log(fmt::format("job {}: end ({} tokens, {})", log_escape(job.id()), ev.tokens_out,
                               engine::stop_reason_name(ev.stop_reason)));
    } else {
        server_log(fmt::format("job {}: error {}: {}", log_escape(job.id()), job_error_code_name(ev.error_code),
                               log_escape(ev.message, 400)));
    }
}

std::optional<std::string> apply_constraint(const InferenceService& service, const ServerOptions& opt,
                                            const ConstraintSpec& spec, engine::GenerateRequest& gen) {
    if (spec.kind == ConstraintSpec::Kind::None) return std::nullopt;
    auto vocab = service.grammar_vocabulary();
    if (!vocab) return fmt::format("{}: this worker cannot constrain output", spec.param);
    try {
        gen.constraint =
            spec.kind == ConstraintSpec::Kind::Gbnf
                ? engine::constraint_from_gbnf(spec.text, vocab)
                : engine::constraint_from_json_schema(spec.text, vocab, {.max_string_chars = opt.schema_max_string});
    } catch (const Error& e) {
        return fmt::format("{}: {}", spec.param, e.what());
    }
    return std::nullopt;
}

}  // namespace orcd::server
