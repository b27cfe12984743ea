#include "harness.h"
#include "shared_files.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cctype>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>
#include <thread>

extern char** environ;

namespace orcd::test {

namespace fs = std::filesystem;

namespace {

std::vector<char*> c_argv(const std::vector<std::string>& argv) {
    std::vector<char*> v;
    for (const auto& a : argv) v.push_back(const_cast<char*>(a.c_str()));
    v.push_back(nullptr);
    return v;
}

// posix_spawn with stdin/stdout/stderr redirected to the given fds (-1: /dev/null), optionally in `cwd`.
pid_t spawn(const std::vector<std::string>& argv, int in_fd, int out_fd, int err_fd, const fs::path& cwd = {}) {
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    auto dup_or_null = [&](int fd, int target, int flags) {
        if (fd >= 0) {
            posix_spawn_file_actions_adddup2(&fa, fd, target);
        } else {
            posix_spawn_file_actions_addopen(&fa, target, "/dev/null", flags, 0);
        }
    };
    dup_or_null(in_fd, 0, O_RDONLY);
    dup_or_null(out_fd, 1, O_WRONLY);
    dup_or_null(err_fd, 2, O_WRONLY);
#if defined(__GLIBC__) && (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 29))
    if (!cwd.empty()) posix_spawn_file_actions_addchdir_np(&fa, cwd.c_str());
#endif
    // The child must not inherit the test's blocked signals (the server relies on receiving SIGTERM).
    posix_spawnattr_t attr;
    posix_spawnattr_init(&attr);
    sigset_t none;
    sigemptyset(&none);
    posix_spawnattr_setsigmask(&attr, &none);
    sigset_t defaults;
    sigemptyset(&defaults);
    sigaddset(&defaults, SIGPIPE);
    posix_spawnattr_setsigdefault(&attr, &defaults);
    posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
    pid_t pid = -1;
    auto args = c_argv(argv);
    const int rc = posix_spawnp(&pid, args[0], &fa, &attr, args.data(), environ);
    posix_spawn_file_actions_destroy(&fa);
    posix_spawnattr_destroy(&attr);
    if (rc != 0) throw std::runtime_error("cannot start " + argv[0] + ": " + std::strerror(rc));
    return pid;
}

// Waits for pid up to `timeout`; returns the decoded exit status (-1 for a signal) or nullopt.
std::optional<int> wait_pid(pid_t pid, std::chrono::milliseconds timeout) {
    const auto deadline = Clock::now() + timeout;
    for (;;) {
        int st = 0;
        const pid_t r = waitpid(pid, &st, WNOHANG);
        if (r == pid) return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
        if (r < 0) return -1;
        if (Clock::now() >= deadline) return std::nullopt;
        std::this_thread::sleep_for(5ms);
    }
}

std::string slurp(const fs::path& p) {
    std::ifstream f(p, std::ios::binary);
    std::stringstream ss;
    ss << f.rdbuf();
    return ss.str();
}

}  // namespace

RunResult run(const std::vector<std::string>& argv, std::chrono::milliseconds timeout, const std::string& input,
              const fs::path& cwd) {
    int in[2], out[2], err[2];
    if (pipe2(in, O_CLOEXEC) || pipe2(out, O_CLOEXEC) || pipe2(err, O_CLOEXEC)) throw std::runtime_error("pipe");
    const pid_t pid = spawn(argv, in[0], out[1], err[1], cwd);
    close(in[0]);
    close(out[1]);
    close(err[1]);
    RunResult r;
    size_t written = 0;
    if (input.empty()) {
        close(in[1]);
        in[1] = -1;
    }
    fcntl(out[0], F_SETFL, O_NONBLOCK);
    fcntl(err[0], F_SETFL, O_NONBLOCK);
    const auto deadline = Clock::now() + timeout;
    bool out_open = true, err_open = true;
    while (out_open || err_open) {
        if (Clock::now() >= deadline) {
            r.timed_out = true;
            kill(pid, SIGKILL);
            break;
        }
        pollfd fds[3] = {{out[0], POLLIN, 0}, {err[0], POLLIN, 0}, {in[1], POLLOUT, 0}};
        poll(fds, in[1] >= 0 ? 3 : 2, 20);
        char buf[65536];
        for (int k = 0; k < 2; ++k) {
            bool& open = k == 0 ? out_open : err_open;
            if (!open) continue;
            const ssize_t n = read(k == 0 ? out[0] : err[0], buf, sizeof buf);
            if (n > 0) (k == 0 ? r.out : r.err).append(buf, static_cast<size_t>(n));
            if (n == 0) open = false;
        }
        if (in[1] >= 0 && (fds[2].revents & (POLLOUT | POLLERR | POLLHUP))) {
            const ssize_t n = write(in[1], input.data() + written, input.size() - written);
            if (n > 0) written += static_cast<size_t>(n);
            if (n < 0 || written == input.size()) {
                close(in[1]);
                in[1] = -1;
            }
        }
    }
    if (in[1] >= 0) close(in[1]);
    close(out[0]);
    close(err[0]);
    auto st = wait_pid(pid, r.timed_out ? 5000ms
                                        : std::chrono::duration_cast<std::chrono::milliseconds>(
                                              std::max(deadline - Clock::now(), Clock::duration(1s))));
    if (!st) {
        kill(pid, SIGKILL);
        st = wait_pid(pid, 5000ms);
        r.timed_out = true;
    }
    r.exit_code = r.timed_out ? -1 : st.value_or(-1);
    return r;
}

// --- Child ----------------------------------------------------------------------------------------------------------
Child::Child(const std::vector<std::string>& argv) {
    int out[2];
    if (pipe2(out, O_CLOEXEC)) throw std::runtime_error("pipe");
    pid_ = spawn(argv, -1, out[1], -1);
    close(out[1]);
    out_fd_ = out[0];
}

Child::~Child() {
    kill_now();
    if (out_fd_ >= 0) close(out_fd_);
}

std::optional<std::string> Child::read_line(Clock::time_point deadline) {
    for (;;) {
        if (auto nl = buf_.find('\n'); nl != std::string::npos) {
            std::string line = buf_.substr(0, nl);
            buf_.erase(0, nl + 1);
            return line;
        }
        const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
        if (left <= 0) return std::nullopt;
        pollfd p{out_fd_, POLLIN, 0};
        if (poll(&p, 1, static_cast<int>(std::min<int64_t>(left, 50))) <= 0) continue;
        char buf[4096];
        const ssize_t n = read(out_fd_, buf, sizeof buf);
        if (n <= 0) return std::nullopt;
        buf_.append(buf, static_cast<size_t>(n));
    }
}

void Child::kill_now() {
    if (pid_ > 0 && !status_) {
        kill(pid_, SIGKILL);
        status_ = wait_pid(pid_, 5000ms);
    }
}

std::optional<int> Child::wait(std::chrono::milliseconds timeout) {
    if (!status_) status_ = wait_pid(pid_, timeout);
    return status_;
}

// --- model & scratch ------------------------------------------------------------------------------------------------
fs::path scratch_dir() {
    static const fs::path dir = [] {
        fs::path d = fs::path(ORCD_TEST_TMP) / ("server-" + std::to_string(getpid()));
        fs::create_directories(d);
        return d;
    }();
    return dir;
}

// Removes the scratch directory when the test program ends.
class ScratchCleanup : public ::testing::Environment {
public:
    void TearDown() override {
        std::error_code ec;
        fs::remove_all(fs::path(ORCD_TEST_TMP) / ("server-" + std::to_string(getpid())), ec);
    }
};
[[maybe_unused]] static auto* const kCleanup = ::testing::AddGlobalTestEnvironment(new ScratchCleanup);

namespace {
std::string env_or(const char* name, const char* fallback) {
    const char* v = std::getenv(name);
    return v && *v ? v : fallback;
}
}  // namespace

bool model_overridden() { return !env_or("ORCD_TEST_MODEL", "").empty(); }
std::string test_device() { return env_or("ORCD_TEST_DEVICE", "cpu"); }
std::string test_python() { return env_or("ORCD_TEST_PYTHON", "/usr/bin/python3"); }

// The test model is synthesized with ../shared's Qwen vocabulary: without it (and without ORCD_TEST_MODEL), every
// test of the binary skips, saying why.
constexpr const char* kQwenVocab = "models/vocab/ggml-vocab-qwen2.5.gguf";
class NeedsSharedVocab : public ::testing::Environment {
public:
    void SetUp() override {
        if (!model_overridden()) ORCD_SKIP_WITHOUT_SHARED(shared_path(kQwenVocab));
    }
};
[[maybe_unused]] const auto* const kNeedsSharedVocab = ::testing::AddGlobalTestEnvironment(new NeedsSharedVocab);

const fs::path& test_model() {
    static const fs::path model = [] {
        if (model_overridden()) return fs::path(env_or("ORCD_TEST_MODEL", ""));
        fs::path p = scratch_dir() / "qwen-tiny-q8.gguf";
        const std::string vocab = shared_path(kQwenVocab).string();
        RunResult r = run({ORCD_BIN, "synth", "--preset", "qwen2.5-tiny", "--type", "Q8_0", "--vocab", vocab, "--seed",
                           "11", "--ctx", "8192", "-o", p.string()},
                          120s);
        if (r.exit_code != 0) {
            throw std::runtime_error("orcd synth failed (exit " + std::to_string(r.exit_code) + "): " + r.err);
        }
        return p;
    }();
    return model;
}

std::string test_model_id() { return test_model().stem().string(); }

uint32_t served_context() {
    static const uint32_t ctx = [] {
        RunResult r = run({ORCD_BIN, "inspect", "--json", test_model().string()}, 60s);
        if (r.exit_code != 0) throw std::runtime_error("orcd inspect --json failed: " + r.err);
        const auto meta = nlohmann::json::parse(r.out).at("metadata");
        const std::string arch = meta.at("general.architecture").get<std::string>();
        return std::min<uint32_t>(meta.at(arch + ".context_length").get<uint32_t>(), 4096);
    }();
    return ctx;
}

// --- Server
// -----------------------------------------------------------------------------------------------------------
Server::Server(std::vector<std::string> extra, const fs::path& model) {
    static int counter = 0;
    log_path_ = scratch_dir() / ("server-" + std::to_string(++counter) + ".log");
    const int log_fd = open(log_path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (log_fd < 0) throw std::runtime_error("cannot create " + log_path_.string());
    std::vector<std::string> argv = {
        ORCD_BIN,   "serve",       "-m",     (model.empty() ? test_model() : model).string(),
        "--device", test_device(), "--port", "0",
        "--host",   "127.0.0.1"};
    if (test_device() == "cpu") {
        argv.push_back("--threads");
        argv.push_back("2");
    }
    argv.insert(argv.end(), extra.begin(), extra.end());
    pid_ = spawn(argv, -1, -1, log_fd);
    close(log_fd);
    // The ready line carries the bound port; the server binds only after loading.
    static constexpr std::string_view kAddress = "address=http://127.0.0.1:";
    const auto deadline = Clock::now() + 60s;
    while (Clock::now() < deadline) {
        const std::string text = slurp(log_path_);
        const size_t ready = text.find("orcd serve: ready ");
        const size_t addr = ready == std::string::npos ? ready : text.find(kAddress, ready);
        if (addr != std::string::npos && text.find('\n', addr) != std::string::npos) {
            port_ = std::atoi(text.c_str() + addr + kAddress.size());
            return;
        }
        if (!running()) throw std::runtime_error("orcd serve exited before it was ready:\n" + text);
        std::this_thread::sleep_for(20ms);
    }
    throw std::runtime_error("orcd serve was not ready within 60 s:\n" + slurp(log_path_));
}

Server::~Server() {
    if (pid_ > 0 && !status_) {
        kill(pid_, SIGKILL);
        wait_pid(pid_, 5000ms);
    }
}

std::string Server::url(std::string_view path) const {
    return "http://127.0.0.1:" + std::to_string(port_) + std::string(path);
}

std::string Server::log() const { return slurp(log_path_); }

bool Server::running() {
    if (status_) return false;
    if (auto st = wait_pid(pid_, 0ms)) {
        status_ = st;
        return false;
    }
    return true;
}

std::optional<int> Server::wait(std::chrono::milliseconds timeout) {
    if (!status_) status_ = wait_pid(pid_, timeout);
    return status_;
}

std::optional<int> Server::signal_and_wait(int sig, std::chrono::milliseconds timeout) {
    if (!status_) kill(pid_, sig);
    return wait(timeout);
}

// --- HTTP helpers --------------------------------------------------------------------------------------------------
nlohmann::json HttpResult::json() const {
    try {
        return nlohmann::json::parse(body);
    } catch (const std::exception& e) {
        ADD_FAILURE() << "response body is not JSON (" << e.what() << "): " << body;
        return nullptr;
    }
}

HttpResult curl(const std::vector<std::string>& args, std::chrono::milliseconds timeout) {
    std::vector<std::string> argv = {"curl", "-sS",           "--max-time", std::to_string(timeout.count() / 1000 + 1),
                                     "-w",   "\n%{http_code}"};
    argv.insert(argv.end(), args.begin(), args.end());
    RunResult r = run(argv, timeout + 5s);
    HttpResult h;
    const auto nl = r.out.rfind('\n');
    if (r.timed_out || nl == std::string::npos) {
        ADD_FAILURE() << "curl failed (exit " << r.exit_code << "): " << r.err;
        return h;
    }
    h.status = std::atoi(r.out.c_str() + nl + 1);
    h.body = r.out.substr(0, nl);
    return h;
}

HttpResult post_json(const std::string& url, const std::string& body, const std::vector<std::string>& extra,
                     std::chrono::milliseconds timeout) {
    std::vector<std::string> args = {"-N", "-H", "Content-Type: application/json", "--data-binary", body};
    args.insert(args.end(), extra.begin(), extra.end());
    args.push_back(url);
    return curl(args, timeout);
}

std::vector<SseEvent> parse_sse(const std::string& body) {
    std::vector<SseEvent> events;
    std::istringstream in(body);
    std::string line;
    SseEvent cur;
    bool have_data = false;
    while (std::getline(in, line)) {
        if (line.empty()) {
            if (have_data) events.push_back(std::move(cur));
            cur = {};
            have_data = false;
        } else if (line[0] == ':') {
            // comment (keep-alive)
        } else if (line.rfind("event: ", 0) == 0) {
            cur.event = line.substr(7);
        } else if (line.rfind("data: ", 0) == 0) {
            const std::string d = line.substr(6);
            try {
                cur.data = d == "[DONE]" ? nlohmann::json("[DONE]") : nlohmann::json::parse(d);
            } catch (const std::exception& e) {
                ADD_FAILURE() << "SSE data is not JSON (" << e.what() << "): " << d;
            }
            have_data = true;
        } else {
            ADD_FAILURE() << "unexpected SSE line: " << line;
        }
    }
    if (have_data) ADD_FAILURE() << "the stream ended inside an event (no blank line after it)";
    return events;
}

std::string raw_request(int port, const std::string& bytes, std::chrono::milliseconds timeout) {
    const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(static_cast<uint16_t>(port));
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    std::string resp;
    if (connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
        close(fd);
        return resp;
    }
    size_t sent = 0;
    while (sent < bytes.size()) {
        const ssize_t n = send(fd, bytes.data() + sent, bytes.size() - sent, MSG_NOSIGNAL);
        if (n <= 0) break;  // the server may close early (413): what it answered is still read below
        sent += static_cast<size_t>(n);
    }
    const auto deadline = Clock::now() + timeout;
    while (Clock::now() < deadline) {
        pollfd p{fd, POLLIN, 0};
        if (poll(&p, 1, 20) <= 0) continue;
        char buf[4096];
        const ssize_t n = recv(fd, buf, sizeof buf, 0);
        if (n <= 0) break;
        resp.append(buf, static_cast<size_t>(n));
        // Stop at the end of one complete response, rather than waiting for the keep-alive timeout.
        const size_t head_end = resp.find("\r\n\r\n");
        if (head_end == std::string::npos) continue;
        std::string head = resp.substr(0, head_end + 2);
        for (auto& ch : head) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
        const size_t cl = head.find("\r\ncontent-length: ");
        if (cl != std::string::npos &&
            resp.size() >= head_end + 4 + std::strtoull(head.c_str() + cl + 18, nullptr, 10)) {
            break;
        }
    }
    close(fd);
    return resp;
}

int raw_status(const std::string& response) {
    // "HTTP/1.x NNN reason"
    if (response.size() < 13 || response.compare(0, 7, "HTTP/1.") != 0 || response[8] != ' ') return 0;
    for (int i = 9; i < 12; ++i) {
        if (!std::isdigit(static_cast<unsigned char>(response[i]))) return 0;
    }
    return std::atoi(response.c_str() + 9);
}

// ---- shared by the end-to-end suites

// prefix + number, appended in place: GCC 12 warns falsely (-Wrestrict) about "literal" + std::to_string(k).
std::string numbered(const char* prefix, int k) {
    std::string s = prefix;
    s += std::to_string(k);
    return s;
}

std::string execute_body(const std::string& job_id, int max_tokens, const std::string& extra) {
    return R"({"job_id":")" + job_id + R"(","prompt":"Hello there","max_tokens":)" + std::to_string(max_tokens) +
           extra + "}";
}

// Checks the worker API's stream invariants and returns its events: started first, tokens numbered 0.., exactly one
// terminal event, last.
std::vector<SseEvent> check_stream(const std::string& body, const std::string& job_id) {
    auto ev = parse_sse(body);
    EXPECT_GE(ev.size(), 2u) << body;
    if (ev.size() < 2) return ev;
    EXPECT_EQ(ev.front().event, "started");
    EXPECT_EQ(ev.front().data["job_id"], job_id);
    EXPECT_EQ(ev.front().data["model"], test_model_id());
    EXPECT_TRUE(ev.front().data["started_at"].is_number_integer());
    int terminals = 0;
    uint64_t next_index = 0;
    for (size_t k = 1; k < ev.size(); ++k) {
        const auto& e = ev[k];
        if (e.event == "token") {
            EXPECT_EQ(terminals, 0) << "token after the terminal event";
            EXPECT_TRUE(e.data["t"].is_string());
            EXPECT_EQ(e.data["i"].get<uint64_t>(), next_index++);
        } else if (e.event == "end" || e.event == "error") {
            ++terminals;
            EXPECT_EQ(k, ev.size() - 1) << "the terminal event is not the last one";
        } else {
            ADD_FAILURE() << "unexpected event '" << e.event << "'";
        }
    }
    EXPECT_EQ(terminals, 1) << body;
    return ev;
}

std::string text_of(const std::vector<SseEvent>& ev) {
    std::string s;
    for (const auto& e : ev) {
        if (e.event == "token") s += e.data["t"].get<std::string>();
    }
    return s;
}

nlohmann::json metrics_families(const Server& s, const std::vector<std::string>& auth) {
    std::vector<std::string> args = auth;
    args.push_back(s.url("/metrics"));
    HttpResult m = curl(args);
    EXPECT_EQ(m.status, 200);
    RunResult p = run({test_python(), ORCD_SERVER_TEST_DIR "/parse_metrics.py"}, 30s, m.body);
    EXPECT_EQ(p.exit_code, 0) << p.err << "\n" << m.body;
    return p.exit_code == 0 ? nlohmann::json::parse(p.out) : nlohmann::json::object();
}

double sample(const nlohmann::json& fams, const std::string& family, const std::string& name,
              const nlohmann::json& labels) {
    // Every sample carries the served model's id: a sample without it is not found.
    nlohmann::json want = labels.is_null() ? nlohmann::json::object() : labels;
    want["model"] = test_model_id();
    if (!fams.contains(family)) {
        ADD_FAILURE() << "no metric family " << family;
        return -1;
    }
    for (const auto& s : fams[family]["samples"]) {
        if (s[0] == name && s[1] == want) return s[2].get<double>();
    }
    ADD_FAILURE() << "no sample " << name << " " << want.dump() << " in " << fams[family].dump();
    return -1;
}

}  // namespace orcd::test
