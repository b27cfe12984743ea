#pragma once
// The worker's HTTP front: routes (/execute, /cancel, /health, /metrics, /shutdown, /v1/*), authentication, body
// limits, SSE streaming, and the shutdown sequence. cpp-httplib stays behind this header (one translation unit).
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "server/service.h"

namespace orcd::server {

struct ServerOptions {
    std::string host = "127.0.0.1";
    int port = 8080;                                      // 0: any free port (the bound one is returned by bind())
    std::string worker_id;                                // UUID, reported by /health and the ready line
    std::optional<std::string> api_key;                   // Bearer token required on every endpoint but /health
    size_t max_queue = 16;                                // jobs waiting behind the running one; more get 503
    size_t max_body_bytes = 1 << 20;                      // larger request bodies get 413
    std::chrono::milliseconds shutdown_grace{10000};      // the running job may finish within this, then is cancelled
    std::chrono::milliseconds residency_interval{60000};  // background residency check period
};

class HttpServer {
public:
    HttpServer(InferenceService& service, ServerOptions options);
    ~HttpServer();  // shuts down if still running
    HttpServer(const HttpServer&) = delete;
    HttpServer& operator=(const HttpServer&) = delete;

    // Binds and listens on host:port; returns the port. Errors: InvalidArgument naming the address.
    int bind();
    // Serves on a background thread.
    void start();
    // Blocks until a shutdown is requested (POST /shutdown or request_shutdown()); returns its reason.
    std::string wait_for_shutdown_request();
    // Safe from any thread (not from a signal handler): new work gets 503 from now on.
    void request_shutdown(std::string reason);
    // Lets the running job finish within the grace period (then cancels it), delivers the last events, stops
    // listening and joins every thread. Idempotent.
    void shutdown();

private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
};

}  // namespace orcd::server
