#include "server/loading_server.h"

#include <fmt/format.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <thread>

#include "server/api_common.h"
#include "server/transport.h"

namespace orcd::server {

using json = nlohmann::json;

LoadState::LoadState() : started_(std::chrono::steady_clock::now()) {}

void LoadState::set(std::string stage, double fraction, uint64_t bytes_done, uint64_t bytes_total) {
    std::lock_guard lock(mu_);
    stage_ = std::move(stage);
    fraction_ = std::max(fraction_, std::clamp(std::isfinite(fraction) ? fraction : 0.0, 0.0, 1.0));
    bytes_done_ = bytes_done;
    bytes_total_ = bytes_total;
}

json LoadState::to_json() const {
    std::lock_guard lock(mu_);
    return {{"stage", stage_},
            {"percent", std::round(fraction_ * 1000.0) / 10.0},  // one decimal: 42.5
            {"bytes_done", bytes_done_},
            {"bytes_total", bytes_total_},
            {"elapsed_seconds", std::chrono::duration<double>(std::chrono::steady_clock::now() - started_).count()}};
}

struct LoadingServer::Impl {
    ServerOptions opt;
    const LoadState& state;
    LoadingInfo info;
    std::unique_ptr<Transport> transport;
    bool started = false;

    Impl(const ServerOptions& o, const LoadState& s, LoadingInfo i) : opt(o), state(s), info(std::move(i)) {
        TransportLimits limits = transport_limits(opt);
        limits.keep_alive = false;
        transport = std::make_unique<Transport>(
            limits, [this](const HttpRequest& req, const std::shared_ptr<Exchange>& ex) { answer(req, *ex); },
            [](Refusal, const std::string& path, const std::string& detail) {
                return api_error(path, 503, "LOADING", "the model is still loading; " + detail, "server_error");
            });
    }

    void answer(const HttpRequest& req, Exchange& ex) {
        // The Host check as the real server makes it (no API key: /health never needs one, and nothing else is
        // served yet).
        if (auto refused = check_access(opt, req, /*needs_auth=*/false, /*state_changing=*/false)) {
            return ex.reply(std::move(*refused));
        }
        const json loading = state.to_json();
        HttpResponse r;
        if (req.path == "/health" && (req.method == "GET" || req.method == "HEAD")) {
            r = json_response(503, {{"status", "loading"},
                                    {"state", "loading"},
                                    {"loading", loading},
                                    {"model_path", info.model_path},
                                    {"device", info.device},
                                    {"worker_id", opt.worker_id},
                                    {"resident", false},
                                    {"accepting_jobs", false}});
        } else {
            r = api_error(req.path, 503, "LOADING",
                          fmt::format("the model is still loading ({}, {:.1f} %); retry when GET /health says "
                                      "\"ready\"",
                                      loading["stage"].get<std::string>(), loading["percent"].get<double>()),
                          "server_error");
        }
        r.headers.emplace_back("Retry-After", "1");
        ex.reply(std::move(r));
    }
};

LoadingServer::LoadingServer(const ServerOptions& options, const LoadState& state, LoadingInfo info)
    : impl_(std::make_unique<Impl>(options, state, std::move(info))) {}

LoadingServer::~LoadingServer() = default;  // the transport stops and closes its socket

int LoadingServer::start() {
    const int port = impl_->transport->bind(impl_->opt.host, impl_->opt.port);
    impl_->transport->start();
    impl_->started = true;
    return port;
}

int LoadingServer::hand_over_listener() {
    if (!impl_->started) throw Error(ErrorCode::InvalidArgument, "the loading server was not started");
    const int fd = impl_->transport->duplicate_listener();
    impl_->transport->stop_accepting();  // closes its own descriptor; the duplicate keeps the socket listening
    return fd;
}

void LoadingServer::finish() {
    using Clock = std::chrono::steady_clock;
    const auto deadline = Clock::now() + std::min<Clock::duration>(impl_->opt.request_timeout, std::chrono::seconds(2));
    while (impl_->transport->open_connections() > 0 && Clock::now() < deadline) {
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    impl_->transport->stop();
}

}  // namespace orcd::server
