#pragma once
// Test harness for the real `orcd serve` binary: child processes with deadlines (the server, curl, node, python),
// the server's life cycle (start on a free loopback port, wait for the ready line, stop), SSE parsing, and a raw
// socket for requests no well-behaved client would send. Everything started here is stopped by a destructor.
#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

namespace orcd::test {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

struct RunResult {
    int exit_code = -1;  // -1: killed at the deadline (or by a signal)
    bool timed_out = false;
    std::string out, err;
};

// Runs argv to completion (killed at `timeout`), feeding `input` on stdin.
RunResult run(const std::vector<std::string>& argv, std::chrono::milliseconds timeout, const std::string& input = {},
              const std::filesystem::path& cwd = {});

// A child whose stdout is a pipe the test reads line by line (a streaming curl).
class Child {
public:
    explicit Child(const std::vector<std::string>& argv);
    ~Child();  // SIGKILL + reap if still running
    Child(const Child&) = delete;
    Child& operator=(const Child&) = delete;

    // The next line of stdout (without "\n"); nullopt at EOF or when `deadline` passes.
    std::optional<std::string> read_line(Clock::time_point deadline);
    void kill_now();
    // Exit code after waiting up to `timeout`; nullopt if it is still running.
    std::optional<int> wait(std::chrono::milliseconds timeout);
    pid_t pid() const { return pid_; }

private:
    pid_t pid_ = -1;
    int out_fd_ = -1;
    std::string buf_;
    std::optional<int> status_;
};

// The model every test serves: $ORCD_TEST_MODEL when set (the device script points it at reference-shaped models),
// else a small synth model made once per test process under the build tree.
const std::filesystem::path& test_model();
bool model_overridden();    // $ORCD_TEST_MODEL is set: model-specific expectations are not checked
std::string test_device();  // $ORCD_TEST_DEVICE, default "cpu"
std::string test_python();
// The context the server serves the test model with by default: min(the model's context_length, 4096).
uint32_t served_context();    // $ORCD_TEST_PYTHON, default /usr/bin/python3 (Debian's, with prometheus_client)
std::string test_model_id();  // the file name without .gguf (what the server calls the model)
std::filesystem::path scratch_dir();

class Server {
public:
    // Starts `orcd serve -m <test model> --device <test device> --port 0 <extra>` and waits for the ready line.
    explicit Server(std::vector<std::string> extra = {}, const std::filesystem::path& model = {});
    ~Server();  // SIGKILL if still running (a test that wants a clean stop calls stop_* itself)
    Server(const Server&) = delete;
    Server& operator=(const Server&) = delete;

    int port() const { return port_; }
    std::string url(std::string_view path = "") const;
    pid_t pid() const { return pid_; }
    std::string log() const;  // the server's stderr so far
    // Sends `sig`; returns the exit code once it exits within `timeout` (nullopt if not).
    std::optional<int> signal_and_wait(int sig, std::chrono::milliseconds timeout);
    std::optional<int> wait(std::chrono::milliseconds timeout);
    bool running();

private:
    pid_t pid_ = -1;
    int port_ = 0;
    std::filesystem::path log_path_;
    std::optional<int> status_;
};

// curl -s with a deadline; appends "-w \n%{http_code}" and splits the status off the body.
struct HttpResult {
    int status = 0;
    std::string body;
    std::string headers;  // with -i style capture when asked (-D)
    nlohmann::json json() const;
};
HttpResult curl(const std::vector<std::string>& args, std::chrono::milliseconds timeout = 30s);
HttpResult post_json(const std::string& url, const std::string& body, const std::vector<std::string>& extra = {},
                     std::chrono::milliseconds timeout = 30s);

// One SSE event.
struct SseEvent {
    std::string event;
    nlohmann::json data;
};
// Parses a whole SSE body; ADD_FAILURE()s on a malformed frame.
std::vector<SseEvent> parse_sse(const std::string& body);

// Raw TCP to 127.0.0.1:port: sends `bytes` and returns whatever came back before the server closed or `timeout`
// passed. (No half-close: the server reads a half-closed connection as a client that left.)
std::string raw_request(int port, const std::string& bytes, std::chrono::milliseconds timeout = 5s);
int raw_status(const std::string& response);  // the status code of "HTTP/1.1 NNN ...", 0 if none

// ---- What the end-to-end suites share: requests, the worker API's stream, /metrics through prometheus_client ----

// prefix + number (appended in place: GCC 12 warns falsely (-Wrestrict) about "literal" + std::to_string(k)).
std::string numbered(const char* prefix, int k);
// An /execute body for the prompt "Hello there" (`extra`: more fields, starting with a comma).
std::string execute_body(const std::string& job_id, int max_tokens, const std::string& extra = "");
// Checks the worker API's stream invariants and returns its events: started first, tokens numbered 0.., exactly one
// terminal event, last.
std::vector<SseEvent> check_stream(const std::string& body, const std::string& job_id);
// The streamed text (the token events' "t", concatenated).
std::string text_of(const std::vector<SseEvent>& ev);
// /metrics parsed by Debian's prometheus_client (parse_metrics.py): {family: {"samples": [[name, labels, value]]}}.
nlohmann::json metrics_families(const Server& s, const std::vector<std::string>& auth = {});
// One sample's value (ADD_FAILURE and -1 when absent).
double sample(const nlohmann::json& fams, const std::string& family, const std::string& name,
              const nlohmann::json& labels = nlohmann::json::object());

}  // namespace orcd::test
