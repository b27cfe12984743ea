// The façade: the transport, the two APIs and the scheduler wired together, the route table with its access rules,
// and the shutdown sequence.
#include "server/http_server.h"
#include "server/webui/assets.h"

#include <fmt/format.h>

#include <condition_variable>
#include <mutex>
#include <thread>

#include "common/error.h"
#include "server/api_common.h"
#include "server/openai_api.h"
#include "server/tokenize_api.h"
#include "server/worker_api.h"

namespace orcd::server {

using json = nlohmann::json;
using std::chrono::milliseconds;

namespace {

// After the running job ends at shutdown, how long the last events get to reach their clients.
constexpr milliseconds kFlushTimeout{2000};

std::string_view refusal_code(Refusal r) {
    switch (r) {
        case Refusal::MalformedRequest: return "BAD_REQUEST";
        case Refusal::HeadersTooLarge: return "HEADERS_TOO_LARGE";
        case Refusal::TargetTooLong: return "URI_TOO_LONG";
        case Refusal::BodyTooLarge: return "PAYLOAD_TOO_LARGE";
        case Refusal::RequestTimeout: return "REQUEST_TIMEOUT";
        case Refusal::TooManyConnections: return "UNAVAILABLE";
    }
    return "BAD_REQUEST";
}

// CORS for the origins --allowed-origins admits (the same list check_access applies to POSTs): their pages may read
// the answers, so every answer to such a request names the origin. Requests from other origins get no CORS headers
// (and their POSTs are refused before any work).
class CorsExchange final : public Exchange {
public:
    CorsExchange(std::shared_ptr<Exchange> inner, std::string origin)
        : inner_(std::move(inner)), origin_(std::move(origin)) {}
    void reply(HttpResponse response) override { inner_->reply(with_headers(std::move(response))); }
    void begin_stream(HttpResponse head) override { inner_->begin_stream(with_headers(std::move(head))); }
    void write(std::string bytes) override { inner_->write(std::move(bytes)); }
    void end_stream() override { inner_->end_stream(); }
    void on_disconnect(std::function<void()> fn) override { inner_->on_disconnect(std::move(fn)); }

private:
    HttpResponse with_headers(HttpResponse r) const {
        r.headers.emplace_back("Access-Control-Allow-Origin", origin_);
        r.headers.emplace_back("Vary", "Origin");
        return r;
    }
    std::shared_ptr<Exchange> inner_;
    std::string origin_;
};

int refusal_status(Refusal r) {
    switch (r) {
        case Refusal::MalformedRequest: return 400;
        case Refusal::HeadersTooLarge: return 431;
        case Refusal::TargetTooLong: return 414;
        case Refusal::BodyTooLarge: return 413;
        case Refusal::RequestTimeout: return 408;
        case Refusal::TooManyConnections: return 503;
    }
    return 400;
}

}  // namespace

struct HttpServer::Impl {
    using Fn = void (*)(Impl&, const HttpRequest&, const std::shared_ptr<Exchange>&);
    struct Route {
        std::string_view path;
        bool prefix;  // the path and anything below it ("/v1/models/{id}")
        bool post;
        bool auth;
        bool needs_body;
        Fn fn;
    };

    InferenceService& service;
    ServerOptions opt;
    Metrics metrics;
    // Declared before the scheduler: destroyed after it, so that no job outlives the connections it writes to.
    std::unique_ptr<Transport> transport;
    std::unique_ptr<ResidencyMonitor> residency;
    std::unique_ptr<Scheduler> scheduler;
    std::unique_ptr<ServerContext> ctx;
    std::unique_ptr<WorkerApi> worker;
    std::unique_ptr<OpenAiApi> openai;
    std::unique_ptr<TokenizeApi> tokenizer;
    int port = 0;

    std::mutex mu;
    std::condition_variable cv;
    bool shutdown_requested = false;
    std::string shutdown_reason;
    bool shut_down = false;

    Impl(InferenceService& s, ServerOptions o) : service(s), opt(std::move(o)), metrics(s.info().model_id) {
        scheduler = std::make_unique<Scheduler>(service, metrics, opt.max_queue);
        residency =
            std::make_unique<ResidencyMonitor>([this] { return service.residency_problem(); }, opt.residency_interval);
        ctx = std::make_unique<ServerContext>(ServerContext{
            service, opt, metrics, *scheduler, *residency, unix_seconds(),
            [this](std::string why) { request_shutdown(std::move(why)); }, [this] { return limits_report(); }});
        worker = std::make_unique<WorkerApi>(*ctx);
        openai = std::make_unique<OpenAiApi>(*ctx);
        tokenizer = std::make_unique<TokenizeApi>(*ctx);
        transport = std::make_unique<Transport>(
            transport_limits(opt),
            [this](const HttpRequest& req, std::shared_ptr<Exchange> ex) { dispatch(req, std::move(ex)); },
            [this](Refusal r, const std::string& path, const std::string& detail) { return refuse(r, path, detail); });
    }

    json limits_report() const {
        return {{"max_body_bytes", opt.max_body_bytes},
                {"max_header_bytes", opt.max_header_bytes},
                {"request_timeout_ms", opt.request_timeout.count()},
                {"max_connections", opt.max_connections},
                {"max_queue", opt.max_queue},
                {"shutdown_timeout_ms", opt.shutdown_grace.count()},
                {"allowed_origins", opt.allowed_origins},
                {"allowed_hosts", opt.allowed_hosts},
                {"open_connections", transport ? transport->open_connections() : 0}};
    }

    HttpResponse refuse(Refusal r, const std::string& path, const std::string& detail) {
        if (r == Refusal::MalformedRequest || r == Refusal::BodyTooLarge || r == Refusal::HeadersTooLarge ||
            r == Refusal::TargetTooLong) {
            server_log(fmt::format("refused a request{}: {}", path.empty() ? "" : " to " + log_escape(path, 100),
                                   log_escape(detail, 300)));
        }
        const int status = refusal_status(r);
        HttpResponse resp =
            api_error(path, status, refusal_code(r), detail, status >= 500 ? "server_error" : "invalid_request_error");
        if (status == 503) resp.headers.emplace_back("Retry-After", "1");
        return resp;
    }

    static const std::vector<Route>& routes() {
        static const std::vector<Route> kRoutes = {
            {"/execute", false, true, true, true, [](Impl& s, auto& q, auto& e) { s.worker->execute(q, e); }},
            {"/cancel", false, true, true, true, [](Impl& s, auto& q, auto& e) { s.worker->cancel(q, e); }},
            {"/shutdown", false, true, true, false, [](Impl& s, auto& q, auto& e) { s.worker->shutdown(q, e); }},
            {"/health", false, false, false, false, [](Impl& s, auto& q, auto& e) { s.worker->health(q, e); }},
            {"/metrics", false, false, true, false, [](Impl& s, auto& q, auto& e) { s.worker->metrics(q, e); }},
            {"/v1/models", false, false, true, false, [](Impl& s, auto& q, auto& e) { s.openai->models(q, e); }},
            {"/v1/models/", true, false, true, false, [](Impl& s, auto& q, auto& e) { s.openai->model(q, e); }},
            {"/v1/completions", false, true, true, true,
             [](Impl& s, auto& q, auto& e) { s.openai->completions(q, e); }},
            {"/v1/chat/completions", false, true, true, true, [](Impl& s, auto& q, auto& e) { s.openai->chat(q, e); }},
            {"/tokenize", false, true, true, true, [](Impl& s, auto& q, auto& e) { s.tokenizer->tokenize(q, e); }},
            {"/detokenize", false, true, true, true, [](Impl& s, auto& q, auto& e) { s.tokenizer->detokenize(q, e); }},
        };
        return kRoutes;
    }

    void dispatch(const HttpRequest& req, std::shared_ptr<Exchange> ex) {
        if (req.has_header("origin") && origin_allowed(req.header("origin"), req.header("host"), opt)) {
            ex = std::make_shared<CorsExchange>(std::move(ex), req.header("origin"));
        }
        try {
            route(req, ex);
        } catch (const std::exception& e) {
            server_log(fmt::format("internal error on {} {}: {}", log_escape(req.method, 20), log_escape(req.path, 100),
                                   e.what()));
            ex->reply(api_error(req.path, 500, "INTERNAL", e.what(), "server_error"));
        }
    }

    void route(const HttpRequest& req, const std::shared_ptr<Exchange>& ex) {
        const Route* found = nullptr;
        for (const Route& r : routes()) {
            if (r.prefix ? req.path.size() > r.path.size() && req.path.rfind(r.path, 0) == 0 : req.path == r.path) {
                found = &r;
                break;
            }
        }
        if (!found && opt.webui && (req.method == "GET" || req.method == "HEAD")) {
            if (const auto asset = webui::find_asset(req.path)) return serve_asset(req, ex, *asset);
        }
        if (!found) {
            return ex->reply(
                api_error(req.path, 404, "NOT_FOUND",
                          fmt::format("no route for {} {}", log_escape(req.method, 20), log_escape(req.path, 100))));
        }
        if (req.method == "OPTIONS" && req.has_header("access-control-request-method"))
            return preflight(req, ex, *found);
        const std::string allow = found->post ? "POST" : "GET, HEAD";
        const bool method_ok = found->post ? req.method == "POST" : (req.method == "GET" || req.method == "HEAD");
        if (!method_ok) {
            HttpResponse r = api_error(
                req.path, 405, "METHOD_NOT_ALLOWED",
                fmt::format("{} does not accept {}: expected {}", req.path, log_escape(req.method, 20), allow));
            r.headers.emplace_back("Allow", allow);
            return ex->reply(std::move(r));
        }
        if (auto refused = check_access(opt, req, found->auth, found->post)) return ex->reply(std::move(*refused));
        // A POST that needs a body must say how long it is (RFC 9112: without Content-Length or chunked, it has
        // none).
        if (found->needs_body && !req.has_header("content-length") && !req.has_header("transfer-encoding")) {
            return ex->reply(api_error(req.path, 411, "LENGTH_REQUIRED",
                                       "a JSON body with a Content-Length (or chunked encoding) is required"));
        }
        found->fn(*this, req, ex);
    }

    // A CORS preflight: an allowed origin learns what it may send (the route's method, the API key and a JSON body);
    // any other origin is refused as its request would be.
    void preflight(const HttpRequest& req, const std::shared_ptr<Exchange>& ex, const Route& route) {
        if (auto refused = check_access(opt, req, /*needs_auth=*/false, /*state_changing=*/true)) {
            return ex->reply(std::move(*refused));
        }
        HttpResponse r;
        r.status = 204;
        r.content_type.clear();
        r.headers.emplace_back("Access-Control-Allow-Methods", route.post ? "POST" : "GET, HEAD");
        r.headers.emplace_back("Access-Control-Allow-Headers", "Authorization, Content-Type");
        r.headers.emplace_back("Access-Control-Max-Age", "600");
        ex->reply(std::move(r));
    }

    // A file of the chat page: no API key (the page asks for one and sends it with its API calls), but the Host
    // check applies, and the policy headers keep the page to its own files and origin.
    void serve_asset(const HttpRequest& req, const std::shared_ptr<Exchange>& ex, const webui::Asset& asset) {
        if (auto refused = check_access(opt, req, /*needs_auth=*/false, /*state_changing=*/false)) {
            return ex->reply(std::move(*refused));
        }
        HttpResponse r;
        r.content_type = std::string(asset.content_type);
        r.body = std::string(asset.body);
        r.headers.emplace_back("Content-Security-Policy", std::string(webui::kContentSecurityPolicy));
        r.headers.emplace_back("X-Content-Type-Options", "nosniff");
        r.headers.emplace_back("Referrer-Policy", "no-referrer");
        r.headers.emplace_back("Cache-Control", "no-cache");
        ex->reply(std::move(r));
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

TransportLimits transport_limits(const ServerOptions& opt) {
    TransportLimits limits;
    limits.max_body_bytes = opt.max_body_bytes;
    limits.max_header_bytes = opt.max_header_bytes;
    limits.request_timeout = opt.request_timeout;
    limits.max_connections = opt.max_connections;
    return limits;
}

HttpServer::HttpServer(InferenceService& service, ServerOptions options)
    : impl_(std::make_unique<Impl>(service, std::move(options))) {}

HttpServer::~HttpServer() { shutdown(); }

int HttpServer::bind() {
    impl_->port = impl_->transport->bind(impl_->opt.host, impl_->opt.port);
    return impl_->port;
}

int HttpServer::adopt_listener(int fd) {
    impl_->port = impl_->transport->adopt_listener(fd);
    return impl_->port;
}

void HttpServer::start() { impl_->transport->start(); }

std::string HttpServer::wait_for_shutdown_request() {
    std::unique_lock lock(impl_->mu);
    impl_->cv.wait(lock, [&] { return impl_->shutdown_requested; });
    return impl_->shutdown_reason;
}

void HttpServer::request_shutdown(std::string reason) { impl_->request_shutdown(std::move(reason)); }

void HttpServer::shutdown() {
    Impl& s = *impl_;
    {
        std::lock_guard lock(s.mu);
        if (s.shut_down) return;
        s.shut_down = true;
    }
    s.request_shutdown("shutdown");
    // Idle and half-read connections close now; the others after their answer.
    s.transport->begin_drain();
    const auto t0 = Clock::now();
    const bool finished = s.scheduler->drain(s.opt.shutdown_grace);
    server_log(finished ? "shutdown: no job running"
                        : fmt::format("shutdown: the running job did not finish within {} ms and was cancelled",
                                      s.opt.shutdown_grace.count()));
    // The last events of the jobs that just ended get a moment to reach their clients.
    while (s.transport->open_exchanges() > 0 && Clock::now() - t0 < s.opt.shutdown_grace + kFlushTimeout) {
        std::this_thread::sleep_for(milliseconds(10));
    }
    s.transport->stop();
    s.residency.reset();
    s.scheduler.reset();
}

}  // namespace orcd::server
