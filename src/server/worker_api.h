#pragma once
// The worker API (src/server/API.md): POST /execute (SSE), POST /cancel, GET /health, GET /metrics, POST /shutdown.
#include <memory>

#include "server/api_common.h"

namespace orcd::server {

class WorkerApi : public Api {
public:
    using Api::Api;
    void execute(const HttpRequest& req, const Ex& ex);
    void cancel(const HttpRequest& req, const Ex& ex);
    void health(const HttpRequest& req, const Ex& ex);
    void metrics(const HttpRequest& req, const Ex& ex);
    void shutdown(const HttpRequest& req, const Ex& ex);
};

// A 503 with Retry-After, counted as rejected.
HttpResponse unavailable(ServerContext& ctx, std::string_view path, std::string_view why);
// Submits a job; on refusal returns the response to send instead (503, 409).
std::variant<std::shared_ptr<Job>, HttpResponse> submit_job(ServerContext& ctx, std::string_view path,
                                                            std::string job_id, engine::GenerateRequest gen);

}  // namespace orcd::server
