#pragma once
// The worker while its model loads. The port is bound before the load starts: GET /health answers 503 with state
// "loading" and how far the load has got, and every other request gets 503 LOADING with Retry-After, so that an
// orchestrator or a load balancer sees a worker coming up (and how far along) instead of a refused connection. When
// the load is done the listening socket passes to the HttpServer (hand_over_listener, HttpServer::adopt_listener):
// connections made in between wait in its backlog and are answered by the real server. Every answer while loading
// closes its connection, so that no client is left holding a connection to the loading server; the few made just
// before the hand-over still get their answer (finish()).
#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>

#include "server/http_server.h"

namespace orcd::server {

// How far the load has got; written by the loading thread, read by /health. Thread-safe.
class LoadState {
public:
    LoadState();
    // `stage`: what the load is doing ("read": the file into memory, "upload": the weights to the GPU, "init": the
    // tokenizer, the backend and its KV pool). `fraction` of the whole load in [0, 1] (clamped; a lower value than
    // the last one is ignored, so the percentage never goes back); the stage's own bytes.
    void set(std::string stage, double fraction, uint64_t bytes_done = 0, uint64_t bytes_total = 0);
    // {"stage", "percent", "bytes_done", "bytes_total", "elapsed_seconds"}: /health's "loading" field.
    nlohmann::json to_json() const;

private:
    mutable std::mutex mu_;
    std::string stage_ = "start";
    double fraction_ = 0.0;
    uint64_t bytes_done_ = 0, bytes_total_ = 0;
    std::chrono::steady_clock::time_point started_;
};

// What /health says about the worker before its model is open.
struct LoadingInfo {
    std::string model_path;
    std::string device;  // "cpu" | "cuda"
};

class LoadingServer {
public:
    // `options`: the server's (host, port, worker id, limits, allowed hosts); `state` outlives this server.
    LoadingServer(const ServerOptions& options, const LoadState& state, LoadingInfo info);
    ~LoadingServer();
    LoadingServer(const LoadingServer&) = delete;
    LoadingServer& operator=(const LoadingServer&) = delete;

    // Binds and listens on host:port and starts answering; returns the port. Errors: InvalidArgument naming the
    // address.
    int start();
    // Stops accepting and returns the listening socket, still listening, for HttpServer::adopt_listener (connections
    // already made still get their answer). Errors: InvalidArgument when not started.
    int hand_over_listener();
    // After the hand-over: waits for the connections made before it to get their answer (at most the request timeout,
    // bounded by 2 s: a client that connected and sends nothing is cut off), then stops. The destructor stops at once.
    void finish();

private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
};

}  // namespace orcd::server
