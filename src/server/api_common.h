#pragma once
// What the worker API and the OpenAI API share above the transport: the server's state as the handlers see it,
// errors in each API's own shape, the checks every request passes (Host, Origin, API key), reading a JSON body within
// its limits, and delivering a job's events to a client without holding a thread.
#include <cstdint>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "server/http_server.h"
#include "server/job.h"
#include "server/metrics.h"
#include "server/residency.h"
#include "server/scheduler.h"
#include "server/transport.h"

namespace orcd::server {

struct ConstraintSpec;  // requests.h

// Everything a route handler may use. Owned by HttpServer.
struct ServerContext {
    InferenceService& service;
    const ServerOptions& opt;
    Metrics& metrics;
    Scheduler& scheduler;
    ResidencyMonitor& residency;
    int64_t created_unix = 0;
    std::function<void(std::string)> request_shutdown;
    std::function<nlohmann::json()> limits_report;  // the transport's limits, for /health
};

// What each API (worker, OpenAI, tokenizer) is built on: the server's state. Its handlers answer one request on the
// exchange `ex`.
class Api {
public:
    using Ex = std::shared_ptr<Exchange>;
    explicit Api(ServerContext& ctx) : ctx_(ctx) {}

protected:
    ServerContext& ctx_;
};

void server_log(std::string_view msg);
std::string random_hex(size_t n);
int64_t unix_seconds();

bool is_openai_path(std::string_view path);
HttpResponse json_response(int status, const nlohmann::json& body);
// An error in the shape of the endpoint's API: OpenAI's {"error": {"message", "type", "param", "code"}} under /v1/,
// the worker's {"error": {"code", "message"[, "fields"]}} elsewhere. `code` is the worker's code; OpenAI gets
// `openai_code` when given, else the lowercase of `code`.
HttpResponse api_error(std::string_view path, int status, std::string_view code, std::string_view message,
                       std::string_view openai_type = "invalid_request_error", std::string_view param = {},
                       const nlohmann::json& fields = nullptr);
std::string_view status_code_name(int status);

// Whether a browser Origin may send state-changing requests: the server's own origin (same-origin: the Origin names
// the request's Host), or one of --allowed-origins ("*": any).
bool origin_allowed(std::string_view origin, std::string_view host, const ServerOptions& opt);

// Host (against DNS rebinding), then API key; for state-changing requests also Origin. nullopt: may go on.
std::optional<HttpResponse> check_access(const ServerOptions& opt, const HttpRequest& req, bool needs_auth,
                                         bool state_changing);
// True when `host` (a Host header's value) names this server: an IP literal, localhost, the bound host, or one of
// --allowed-hosts ("*" allows any).
bool host_allowed(std::string_view host, const ServerOptions& opt);

// The body as JSON: Content-Type must be application/json, no Content-Encoding, the pre-scan (depth, numbers) must
// pass, then the parser. On failure, the error response (and `metrics` counts an invalid request when given).
std::variant<nlohmann::json, HttpResponse> read_json_body(const HttpRequest& req, Metrics* metrics);

// Delivers `job`'s events to `ex` as a stream of `format(event)` bytes (empty: nothing to write) after `head`; the
// stream ends with the terminal event. A client that goes away cancels the job.
void stream_job(const std::shared_ptr<Exchange>& ex, const std::shared_ptr<Job>& job, Scheduler& scheduler,
                HttpResponse head, std::function<std::string(const JobEvent&)> format);
// The same for the jobs of one request (OpenAI's n choices, each its own sequence in the batch) on one stream:
// `format(choice, event)` as the events happen, interleaved across choices, then `tail(ok)` once every job has ended
// (ok) or at the first error event (!ok: the jobs still running are cancelled and their events dropped).
void stream_jobs(const std::shared_ptr<Exchange>& ex, const std::vector<std::shared_ptr<Job>>& jobs,
                 Scheduler& scheduler, HttpResponse head, std::function<std::string(size_t, const JobEvent&)> format,
                 std::function<std::string(bool)> tail);
// Collects `job`'s text and answers once with `finish(text, terminal event)`. A client that goes away cancels the job.
void collect_job(const std::shared_ptr<Exchange>& ex, const std::shared_ptr<Job>& job, Scheduler& scheduler,
                 std::function<HttpResponse(const std::string&, const JobEvent&)> finish);
// The same for several jobs: `finish(texts, ends)` once every job has ended, or at the first error event (which is
// then in `ends` at its choice; the jobs still running are cancelled).
void collect_jobs(const std::shared_ptr<Exchange>& ex, const std::vector<std::shared_ptr<Job>>& jobs,
                  Scheduler& scheduler,
                  std::function<HttpResponse(const std::vector<std::string>&, const std::vector<JobEvent>&)> finish);

void log_job_end(const Job& job, const JobEvent& ev);

// Compiles a request's grammar / JSON Schema against the served model's vocabulary into gen.constraint. Returns the
// error message (naming spec.param and the grammar's or schema's own location) when it does not compile or the
// service cannot constrain output.
std::optional<std::string> apply_constraint(const InferenceService& service, const ServerOptions& opt,
                                            const ConstraintSpec& spec, engine::GenerateRequest& gen);

}  // namespace orcd::server
