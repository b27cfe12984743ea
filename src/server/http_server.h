#pragma once
// The worker's HTTP front: the transport (transport.h), the worker API (worker_api.h) and the OpenAI API
// (openai_api.h) over the job scheduler, and the shutdown sequence. docs/HTTP.md explains the limits.
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "server/service.h"

namespace orcd::server {

struct ServerOptions {
    std::string host = "127.0.0.1";
    int port = 8080;                                      // 0: any free port (the bound one is returned by bind())
    std::string worker_id;                                // UUID, reported by /health and the ready line
    std::optional<std::string> api_key;                   // Bearer token required on every endpoint but /health
    size_t max_queue = 16;                                // jobs waiting behind the running one; more get 503
    size_t max_body_bytes = 1 << 20;                      // larger request bodies (after chunked decoding) get 413
    size_t max_header_bytes = 64 * 1024;                  // request line and headers in all; more get 431
    std::chrono::milliseconds request_timeout{30000};     // to read one whole request, and the keep-alive idle limit
    size_t max_connections = 4096;                        // open at once; more get 503 and are closed
    std::vector<std::string> allowed_origins;             // browser origins allowed to POST ("*": any); default none
    std::vector<std::string> allowed_hosts;               // Host names beyond IP literals, localhost and --host
    std::chrono::milliseconds shutdown_grace{10000};      // the running job may finish within this, then is cancelled
    std::chrono::milliseconds residency_interval{60000};  // background residency check period
    bool webui = true;                                    // the chat page at / (--no-webui turns it off)
    // JSON Schema constraints: strings without maxLength get at most this many characters (0: unbounded); a bound an
    // operator may set so that a constrained reply always ends (grammar::SchemaOptions::max_string_chars).
    uint32_t schema_max_string = 0;
};

// The transport's limits that ServerOptions sets.
struct TransportLimits;
TransportLimits transport_limits(const ServerOptions& options);

class HttpServer {
public:
    HttpServer(InferenceService& service, ServerOptions options);
    ~HttpServer();  // shuts down if still running
    HttpServer(const HttpServer&) = delete;
    HttpServer& operator=(const HttpServer&) = delete;

    // Binds and listens on host:port; returns the port. Errors: InvalidArgument naming the address.
    int bind();
    // Instead of bind(): serves on a listening socket handed over (LoadingServer::hand_over_listener); returns its
    // port.
    int adopt_listener(int fd);
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
