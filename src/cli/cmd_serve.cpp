// orcd serve: one process, one model, loaded once and resident until exit, served over HTTP (worker API + OpenAI).
// Order matters: arguments are checked before the (slow) load; then the port is bound and answers /health with the
// load's progress (state "loading", 503) while the model loads, and the real server takes the same listening socket
// over once the model is ready.
#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cctype>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fmt/format.h>
#include <fmt/ranges.h>
#include <fstream>
#include <mutex>
#include <random>
#include <thread>
#include <vector>

#include "cli/commands.h"
#include "cli/options.h"
#include "cli/load_progress.h"
#include "common/error.h"
#include "engine/create_backend.h"
#include "device/cuda_device.h"
#include "server/engine_service.h"
#include "server/http_server.h"
#include "server/loading_server.h"

namespace orcd::cli {

namespace {

struct ServeArgs {
    std::string model;
    int gpu = 0;
    bool gpu_given = false;
    int port = 8080;
    std::string host = "127.0.0.1";
    std::string worker_id;
    uint32_t ctx = 0;
    std::string device = "cuda";
    std::string api_key;
    size_t max_queue = 16;
    uint32_t parallel = 0;
    std::string kv_memory;
    uint32_t kv_page_size = 16;
    bool no_prefix_cache = false;
    uint32_t max_batch_tokens = 512;
    size_t max_body_bytes = 1 << 20;
    size_t max_header_bytes = 64 * 1024;
    double request_timeout_s = 30;
    size_t max_connections = 4096;
    std::vector<std::string> allowed_origins;
    std::vector<std::string> allowed_hosts;
    unsigned threads = 0;
    int64_t shutdown_grace_ms = 10000;
    double residency_interval_s = 60;
    std::string chat_template_file;
    bool no_webui = false;
    std::string alias;
    uint32_t schema_max_string = 0;
};

// Shutdown must finish within 30 s of the request: the grace for the running job, plus cancelling it (< 100 ms),
// flushing the last events and freeing the model.
constexpr int64_t kMaxShutdownGraceMs = 25000;

void say(std::string_view msg) { fmt::print(stderr, "orcd serve: {}\n", msg); }

Error bad_arg(const std::string& msg) { return Error(ErrorCode::InvalidArgument, msg); }

std::string new_uuid_v4() {
    std::random_device rd;
    std::mt19937_64 rng((static_cast<uint64_t>(rd()) << 32) ^ rd());
    uint64_t hi = rng(), lo = rng();
    hi = (hi & ~0xF000ull) | 0x4000ull;              // version 4
    lo = (lo & ~(0xC0ull << 56)) | (0x80ull << 56);  // RFC 4122 variant
    return fmt::format("{:08x}-{:04x}-{:04x}-{:04x}-{:012x}", hi >> 32, (hi >> 16) & 0xFFFF, hi & 0xFFFF, lo >> 48,
                       lo & 0xFFFFFFFFFFFFull);
}

// 8-4-4-4-12 hex digits (any version and variant: the orchestrator chooses the ids).
bool is_uuid(std::string_view s) {
    if (s.size() != 36) return false;
    for (size_t i = 0; i < s.size(); ++i) {
        const bool dash = i == 8 || i == 13 || i == 18 || i == 23;
        if (dash ? s[i] != '-' : !std::isxdigit(static_cast<unsigned char>(s[i]))) return false;
    }
    return true;
}

// Everything that can be checked without loading the model, so that a typo fails in milliseconds, not after a load.
void validate(ServeArgs& a) {
    if (a.worker_id.empty()) {
        a.worker_id = new_uuid_v4();
    } else if (!is_uuid(a.worker_id)) {
        throw bad_arg(
            fmt::format("--worker-id '{}': expected a UUID (8-4-4-4-12 hex digits, e.g. "
                        "123e4567-e89b-12d3-a456-426614174000)",
                        a.worker_id));
    }

    std::error_code ec;
    const std::filesystem::path p(a.model);
    if (!std::filesystem::exists(p, ec)) {
        throw Error(ErrorCode::FileNotFound, fmt::format("-m {}: no such file", a.model));
    }
    if (!std::filesystem::is_regular_file(p, ec)) {
        throw Error(ErrorCode::FileUnreadable, fmt::format("-m {}: expected a regular file (a .gguf model)", a.model));
    }
    if (std::ifstream f(p, std::ios::binary); !f.good()) {
        throw Error(ErrorCode::FileUnreadable,
                    fmt::format("-m {}: cannot open for reading: {}", a.model, std::strerror(errno)));
    }

    engine::parse_device(a.device);  // InvalidArgument naming the device
    if (a.gpu < 0) throw bad_arg(fmt::format("--gpu {}: expected a GPU index >= 0", a.gpu));
    if (a.device == "cuda") {
        const int n = device::cuda_device_count();
        if (n == 0) {
            throw Error(ErrorCode::NoDevice, fmt::format("--device cuda: {}; run on the CPU with --device cpu",
                                                         device::cuda_unavailable_reason()));
        }
        if (a.gpu >= n) {
            throw Error(ErrorCode::NoDevice, fmt::format("--gpu {}: this machine has {} CUDA device{} (indices 0..{})",
                                                         a.gpu, n, n == 1 ? "" : "s", n - 1));
        }
    } else if (a.gpu_given) {
        throw bad_arg(fmt::format("--gpu {}: a GPU index applies to --device cuda, not --device {}", a.gpu, a.device));
    }

    if (a.port < 0 || a.port > 65535)
        throw bad_arg(fmt::format("--port {}: expected 0..65535 (0: any free port)", a.port));
    if (a.shutdown_grace_ms < 0 || a.shutdown_grace_ms > kMaxShutdownGraceMs) {
        throw bad_arg(fmt::format("--shutdown-grace-ms {}: expected 0..{} (shutdown must finish within 30 s)",
                                  a.shutdown_grace_ms, kMaxShutdownGraceMs));
    }
    if (!(a.residency_interval_s >= 0.01)) {
        throw bad_arg(
            fmt::format("--residency-interval {}: expected a number of seconds >= 0.01", a.residency_interval_s));
    }
    if (a.max_header_bytes < 1024 || a.max_header_bytes > (64u << 20)) {
        throw bad_arg(fmt::format("--max-header-bytes {}: expected 1024 .. 67108864", a.max_header_bytes));
    }
    if (!(a.request_timeout_s >= 0.1 && a.request_timeout_s <= 3600)) {
        throw bad_arg(fmt::format("--request-timeout {}: expected 0.1 .. 3600 seconds", a.request_timeout_s));
    }
    if (a.max_connections < 1 || a.max_connections > 1000000) {
        throw bad_arg(fmt::format("--max-connections {}: expected 1 .. 1000000", a.max_connections));
    }
    if (a.max_body_bytes < 1024) {
        throw bad_arg(fmt::format("--max-body-bytes {}: expected at least 1024", a.max_body_bytes));
    }

    // The address must resolve, and the port must be free now (it is bound for real after the load; a process that
    // takes it in between makes the later bind fail with the same message).
    addrinfo hints{};
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
    addrinfo* res = nullptr;
    const std::string port_s = std::to_string(a.port);
    if (int rc = getaddrinfo(a.host.c_str(), port_s.c_str(), &hints, &res); rc != 0) {
        throw bad_arg(fmt::format("--host {}: cannot resolve: {}", a.host, gai_strerror(rc)));
    }
    std::unique_ptr<addrinfo, decltype(&freeaddrinfo)> guard(res, freeaddrinfo);
    if (a.port != 0) {
        const int fd = socket(res->ai_family, res->ai_socktype, res->ai_protocol);
        if (fd < 0) throw bad_arg(fmt::format("--host {}: socket(): {}", a.host, std::strerror(errno)));
        int one = 1;
        // The same option the server sets: a port in TIME_WAIT is free, a port with a listener is not.
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
        const int rc = ::bind(fd, res->ai_addr, res->ai_addrlen);
        const int err = errno;
        close(fd);
        if (rc != 0) {
            throw bad_arg(fmt::format("--port {}: cannot bind {}:{}: {}", a.port, a.host, a.port, std::strerror(err)));
        }
    }
}

// SIGINT/SIGTERM are blocked in every thread and taken by one thread with sigtimedwait, so that the shutdown runs as
// ordinary code (locks, logging) instead of inside a signal handler.
class SignalWatcher {
public:
    SignalWatcher() {
        sigemptyset(&set_);
        sigaddset(&set_, SIGINT);
        sigaddset(&set_, SIGTERM);
        pthread_sigmask(SIG_BLOCK, &set_, nullptr);  // before any other thread exists: they inherit the mask
        thread_ = std::thread([this] { loop(); });
    }
    ~SignalWatcher() {
        stop_.store(true);
        thread_.join();
        pthread_sigmask(SIG_UNBLOCK, &set_, nullptr);
    }
    // The server to notify; nullptr while there is none. A signal that came earlier is delivered at once.
    void attach(server::HttpServer* s) {
        std::lock_guard lock(mu_);
        server_ = s;
        if (server_ && !received_.empty()) server_->request_shutdown(received_);
    }
    std::string received() const {
        std::lock_guard lock(mu_);
        return received_;
    }

private:
    void loop() {
        const timespec tick{0, 100'000'000};
        while (!stop_.load()) {
            const int sig = sigtimedwait(&set_, nullptr, &tick);
            if (sig <= 0) continue;
            std::lock_guard lock(mu_);
            const char* name = sig == SIGINT ? "SIGINT" : "SIGTERM";
            if (!received_.empty()) {
                // A person pressing Ctrl-C again does not want to wait for the drain (or a long load) to finish, as
                // in the other commands; a supervisor repeating SIGTERM keeps the graceful path.
                if (sig == SIGINT) {
                    say("SIGINT received again: interrupted twice: exiting now");
                    std::_Exit(130);
                }
                say(fmt::format("{} received; already shutting down", name));
                continue;
            }
            received_ = name;
            say(fmt::format("{} received; shutting down", name));
            if (server_) server_->request_shutdown(received_);
        }
    }
    sigset_t set_;
    std::atomic<bool> stop_{false};
    mutable std::mutex mu_;
    server::HttpServer* server_ = nullptr;
    std::string received_;
    std::thread thread_;
};

// Test seam (tests/cli/test_serve_loading.py: /health while loading): with ORCD_TEST_LOAD_GATE naming a FIFO, the load waits, with the
// port already answering, until a test has opened the FIFO for writing and closed it. Unset in production.
void wait_for_test_gate() {
    const char* gate = std::getenv("ORCD_TEST_LOAD_GATE");
    if (!gate || !*gate) return;
    std::ifstream fifo(gate);  // blocks until a writer opens it
    std::string ignored;
    while (std::getline(fifo, ignored)) {}
}

int run_serve(ServeArgs a) {
    using clock = std::chrono::steady_clock;
    // Signals are blocked before anything else runs: validate() checks the GPU index, which starts the CUDA runtime
    // and its threads, and a thread created with SIGTERM unblocked would take the signal's default action (seen on the
    // GPU machine: the worker died with status 143 instead of shutting down).
    SignalWatcher signals;
    // A client that disconnects mid-stream must cost a failed write, not the process.
    std::signal(SIGPIPE, SIG_IGN);
    validate(a);

    server::ServerOptions so;
    so.host = a.host;
    so.port = a.port;
    so.worker_id = a.worker_id;
    if (!a.api_key.empty()) so.api_key = a.api_key;
    so.max_queue = a.max_queue;
    so.max_body_bytes = a.max_body_bytes;
    so.shutdown_grace = std::chrono::milliseconds(a.shutdown_grace_ms);
    so.max_header_bytes = a.max_header_bytes;
    so.request_timeout = std::chrono::milliseconds(static_cast<int64_t>(a.request_timeout_s * 1000));
    so.max_connections = a.max_connections;
    so.allowed_origins = a.allowed_origins;
    so.allowed_hosts = a.allowed_hosts;
    so.residency_interval = std::chrono::milliseconds(static_cast<int64_t>(a.residency_interval_s * 1000));
    so.webui = !a.no_webui;
    so.schema_max_string = a.schema_max_string;
    const bool v6 = a.host.find(':') != std::string::npos;
    const std::string host = v6 ? "[" + a.host + "]" : a.host;

    // The port answers from here on: /health says "loading" with the load's progress until the model is ready.
    server::LoadState load_state;
    auto loading = std::make_unique<server::LoadingServer>(
        so, load_state, server::LoadingInfo{.model_path = a.model, .device = a.device});
    const int port = loading->start();
    say(fmt::format("loading {} on {}; listening on http://{}:{} (GET /health reports the load's progress)", a.model,
                    a.device, host, port));
    wait_for_test_gate();
    const auto t0 = clock::now();
    server::EngineServiceOptions eo;
    eo.model_path = a.model;
    eo.device = engine::parse_device(a.device);
    // Once every byte is read (and on CUDA uploaded), what is left is "init": the tokenizer, the backend, the KV pool.
    LoadProgress progress(
        eo.device == engine::Device::Cuda, "orcd serve: ", /*quiet=*/false, [&load_state](const LoadStatus& s) {
            load_state.set(s.fraction >= 1.0 ? "init" : std::string(s.stage), s.fraction, s.bytes_done, s.bytes_total);
        });
    eo.n_ctx = a.ctx;
    eo.n_threads = a.threads;
    eo.chat_template_file = a.chat_template_file;
    eo.alias = a.alias;
    eo.gpu = a.gpu;
    eo.parallel = a.parallel;
    if (!a.kv_memory.empty()) eo.kv_memory = parse_bytes(a.kv_memory, "--kv-memory");
    eo.kv_page_size = a.kv_page_size;
    eo.prefix_cache = !a.no_prefix_cache;
    eo.max_batch_tokens = a.max_batch_tokens;
    eo.load_progress = progress.upload_callback();
    progress.read_file(a.model);
    auto service = std::make_unique<server::EngineService>(eo);
    const server::ServiceInfo& info = service->info();
    say(fmt::format("loaded {} ({}, {}, {} tokenizer, context {}) in {:.2f} s", info.model_id, info.arch,
                    info.quant_kind, info.tokenizer_kind, info.context_length,
                    std::chrono::duration<double>(clock::now() - t0).count()));
    {
        const server::BatchState b = service->batch_state();
        say(fmt::format("batch: --parallel {}, KV pool of {} pages x {} positions ({} bytes), prefix cache {}",
                        info.parallel, b.kv.pages_total, b.kv_page_size, b.kv_pool_bytes,
                        a.no_prefix_cache ? "off" : "on"));
    }
    if (!signals.received().empty()) {
        say("interrupted during the load; exiting");
        return 0;
    }

    // The listening socket passes to the real server; connections made meanwhile wait in its backlog.
    const int listener = loading->hand_over_listener();
    auto http = std::make_unique<server::HttpServer>(*service, so);
    http->adopt_listener(listener);
    http->start();
    loading->finish();  // the loading server's last answers (those asked just before the hand-over)
    loading.reset();
    say(fmt::format("ready worker_id={} model={} device={} vram_bytes={} address=http://{}:{}", a.worker_id,
                    info.model_id, info.device, service->device_memory().total(), host, port));
    if (a.api_key.empty() && a.host != "127.0.0.1" && a.host != "::1" && a.host != "localhost") {
        say(
            fmt::format("warning: listening on {} without --api-key: anyone who can reach it can run jobs and shut "
                        "the worker down",
                        a.host));
    }
    say(
        fmt::format("limits: --max-body-bytes {} --max-header-bytes {} --request-timeout {} --max-connections {} "
                    "--max-queue {} --shutdown-timeout {} --allowed-origins {} --allowed-hosts {}",
                    a.max_body_bytes, a.max_header_bytes, a.request_timeout_s, a.max_connections, a.max_queue,
                    a.shutdown_grace_ms / 1000.0,
                    a.allowed_origins.empty() ? "(none)" : fmt::format("{}", fmt::join(a.allowed_origins, ",")),
                    a.allowed_hosts.empty() ? "(none)" : fmt::format("{}", fmt::join(a.allowed_hosts, ","))));
    signals.attach(http.get());

    const std::string why = http->wait_for_shutdown_request();
    const auto t_stop = clock::now();
    say(fmt::format("shutting down ({}): refusing new jobs", why));
    http->shutdown();
    signals.attach(nullptr);
    http.reset();
    service.reset();  // the backend, its KV cache and the model mapping
    say(fmt::format("stopped in {:.2f} s; model released",
                    std::chrono::duration<double>(clock::now() - t_stop).count()));
    return 0;
}

}  // namespace

void add_serve(CLI::App& app) {
    auto a = std::make_shared<ServeArgs>();
    auto* cmd = app.add_subcommand("serve", "Serve a model over HTTP (worker API with SSE, OpenAI-compatible API)");
    add_model_option(cmd, a->model)->required();
    auto* gpu = add_device_options(cmd, a->device, a->gpu);
    cmd->add_option("--host", a->host, "address to listen on")->capture_default_str();
    cmd->add_option("--port", a->port, "port to listen on (0: any free port, printed in the ready line)")
        ->capture_default_str();
    cmd->add_option("--worker-id", a->worker_id, "this worker's UUID (default: a random one)");
    add_ctx_option(cmd, a->ctx, "context length served (default: min(model's, 4096))");
    cmd->add_option("--api-key", a->api_key,
                    "require 'Authorization: Bearer KEY' on every endpoint but /health (env ORCD_API_KEY)")
        ->envname("ORCD_API_KEY");
    cmd->add_option("--max-queue", a->max_queue, "jobs that may wait beyond the --parallel running ones; more get 503")
        ->capture_default_str();
    cmd->add_option("--parallel", a->parallel,
                    "most requests running at once in one batch (llama-server -np; default 16 on cuda, 4 on cpu)");
    cmd->add_option("--kv-memory", a->kv_memory,
                    "bytes of the KV page pool, allocated at start, e.g. 512M, 2G (default: --parallel full contexts)");
    cmd->add_option("--kv-page-size", a->kv_page_size, "positions per KV page")
        ->capture_default_str()
        ->check(CLI::Range(1u, 4096u));
    cmd->add_flag("--no-prefix-cache", a->no_prefix_cache, "do not reuse the KV pages of identical prompt prefixes");
    cmd->add_option("--max-batch-tokens", a->max_batch_tokens,
                    "tokens per batched step: every running decode, then prompt chunks (at least one a step)")
        ->capture_default_str();
    add_threads_option(cmd, a->threads);
    cmd->add_option("--max-body-bytes", a->max_body_bytes, "largest request body accepted (413 above)")
        ->capture_default_str();
    cmd->add_option("--max-header-bytes", a->max_header_bytes,
                    "budget for a request's line and headers together (431 above)")
        ->capture_default_str();
    cmd->add_option("--request-timeout", a->request_timeout_s,
                    "seconds to receive one whole request (headers and body); also the keep-alive idle limit")
        ->capture_default_str();
    cmd->add_option("--max-connections", a->max_connections, "connections open at once; more get 503 and close")
        ->capture_default_str();
    cmd->add_option("--allowed-origins", a->allowed_origins,
                    "browser origins allowed to POST (e.g. http://localhost:3000; '*' any); default none")
        ->delimiter(',');
    cmd->add_option("--allowed-hosts", a->allowed_hosts,
                    "Host header names accepted besides IP addresses, localhost and --host ('*' any)")
        ->delimiter(',');
    cmd->add_option_function<double>(
        "--shutdown-timeout", [a](double s) { a->shutdown_grace_ms = static_cast<int64_t>(s * 1000); },
        "seconds the running job may go on at shutdown before it is cancelled (default 10; same as "
        "--shutdown-grace-ms)");
    cmd->add_option("--shutdown-grace-ms", a->shutdown_grace_ms,
                    "at shutdown, how long the running job may go on before it is cancelled")
        ->capture_default_str();
    cmd->add_option("--chat-template-file", a->chat_template_file,
                    "Jinja chat template file for /v1/chat/completions instead of the model's tokenizer.chat_template");
    cmd->add_option("--residency-interval", a->residency_interval_s, "seconds between residency checks")
        ->capture_default_str();
    cmd->add_flag("--no-webui", a->no_webui, "do not serve the chat page at /");
    cmd->add_option("--schema-max-string", a->schema_max_string,
                    "JSON Schema constraints (response_format, json_schema, forced tool calls): at most N characters "
                    "in strings without maxLength (default 0: unbounded)");
    cmd->add_option("--alias", a->alias,
                    "the model's name for clients (the id on /v1/models and the OpenAI \"model\" field); default: the "
                    "file name without .gguf")
        ->check(
            [](const std::string& s) { return s.empty() ? std::string("expected a non-empty name") : std::string(); });
    cmd->callback([a, gpu] {
        a->gpu_given = gpu->count() > 0;
        const int rc = run_serve(*a);
        if (rc != 0) throw CLI::RuntimeError(rc);
    });
}

}  // namespace orcd::cli
