// `orcd serve` end to end: the real binary on a loopback port with a small synth model, driven by real clients
// (curl, a raw socket, the `openai` npm package, Debian's Prometheus parser). Every test bounds its waits and stops
// what it started (the harness's destructors kill what is left).
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <fstream>
#include <map>
#include <optional>
#include <set>
#include <thread>

#include "harness.h"
#include "shared_files.h"

namespace orcd::test {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;

// The default test model declares a context of 8192 tokens; the server serves min(that, 4096) unless -c says
// otherwise (a model given by the device script may declare less).
constexpr uint32_t kModelContext = 8192;

// --- start-up
// ---------------------------------------------------------------------------------------------------------

TEST(ServeStartup, RejectsBadArgumentsBeforeLoading) {
    const std::string model = test_model().string();
    // A listening socket makes its port busy.
    const int busy = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ASSERT_EQ(bind(busy, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
    ASSERT_EQ(listen(busy, 1), 0);
    socklen_t len = sizeof a;
    getsockname(busy, reinterpret_cast<sockaddr*>(&a), &len);
    const std::string busy_port = std::to_string(ntohs(a.sin_port));
    const fs::path not_gguf = scratch_dir() / "not-a-model.gguf";
    std::ofstream(not_gguf) << "this is not a GGUF file";

    struct Case {
        std::vector<std::string> args;
        std::string expect;  // in stderr
    };
    const std::vector<Case> cases = {
        {{"-m", model, "--device", "cpu", "--worker-id", "not-a-uuid"}, "--worker-id 'not-a-uuid': expected a UUID"},
        {{"-m", model, "--device", "cpu", "--worker-id", "123e4567-e89b-12d3-a456-42661417400"}, "expected a UUID"},
        {{"-m", (scratch_dir() / "missing.gguf").string(), "--device", "cpu"}, "no such file"},
        {{"-m", scratch_dir().string(), "--device", "cpu"}, "expected a regular file"},
        {{"-m", model, "--device", "cpu", "--gpu", "1"}, "--gpu 1: a GPU index applies to --device cuda"},
        {{"-m", model, "--device", "tpu"}, "unknown device 'tpu'"},
        {{"-m", model, "--device", "cpu", "--port", busy_port}, "--port " + busy_port + ": cannot bind"},
        {{"-m", model, "--device", "cpu", "--port", "70000"}, "--port 70000: expected 0..65535"},
        {{"-m", model, "--device", "cpu", "--shutdown-grace-ms", "60000"}, "shutdown must finish within 30 s"},
        // Load failures come from the loader, with exit code 1.
        {{"-m", not_gguf.string(), "--device", "cpu", "--port", "0"}, "NOT_GGUF"},
        {{"-m", model, "--device", "cpu", "--port", "0", "-c", "999999"}, "exceeds the model's context length"},
    };
    for (const auto& c : cases) {
        std::vector<std::string> argv = {ORCD_BIN, "serve"};
        argv.insert(argv.end(), c.args.begin(), c.args.end());
        const auto t0 = Clock::now();
        RunResult r = run(argv, 30s);
        EXPECT_EQ(r.exit_code, 1) << c.expect << "\n" << r.err;
        EXPECT_NE(r.err.find(c.expect), std::string::npos) << "expected '" << c.expect << "' in:\n" << r.err;
        EXPECT_EQ(r.err.find("orcd serve: ready"), std::string::npos) << r.err;
        // Argument errors fail fast: nothing was loaded.
        if (c.expect != "NOT_GGUF" && c.expect.find("context length") == std::string::npos) {
            EXPECT_LT(Clock::now() - t0, 5s) << c.expect;
            EXPECT_EQ(r.err.find("loading"), std::string::npos) << "validated after loading:\n" << r.err;
        }
    }
    close(busy);
}

TEST(ServeStartup, CudaWithoutGpuNamesCpu) {
    // Only meaningful where there is no GPU (CI); the device script covers --device cuda where there is one.
    if (fs::exists("/dev/nvidia0")) GTEST_SKIP() << "this machine has a GPU";
    RunResult r = run({ORCD_BIN, "serve", "-m", test_model().string(), "--device", "cuda"}, 30s);
    EXPECT_EQ(r.exit_code, 1);
    EXPECT_NE(r.err.find("--device cpu"), std::string::npos) << r.err;
}

TEST(ServeStartup, ReadyLineAndHealth) {
    const std::string id = "0f8fad5b-d9cb-469f-a165-70867728950e";
    Server s({"--worker-id", id});
    const std::string log = s.log();
    EXPECT_NE(log.find("ready worker_id=" + id + " model=" + test_model_id() + " device=" + test_device()),
              std::string::npos)
        << log;
    EXPECT_LT(log.find("loading"), log.find("ready"));

    HttpResult h = curl({s.url("/health")});
    ASSERT_EQ(h.status, 200);
    json j = h.json();
    EXPECT_EQ(j["status"], "healthy");
    EXPECT_EQ(j["model"], test_model_id());
    EXPECT_EQ(j["resident"], true);
    EXPECT_EQ(j["context_length"], served_context());
    EXPECT_TRUE(j["uptime_seconds"].is_number());
    EXPECT_GE(j["uptime_seconds"].get<double>(), 0.0);
    EXPECT_EQ(j["device"], test_device());
    EXPECT_TRUE(j["vram_bytes_used"].is_number_unsigned());
    if (!model_overridden()) {
        EXPECT_EQ(j["quant_kind"], "Q8_0");
        EXPECT_EQ(j["vram_bytes_used"], 0);  // the CPU backend holds no device memory
        EXPECT_EQ(j["tokenizer_kind"], "bpe/qwen2");
        EXPECT_EQ(j["vocab_size"], 151936);  // the Qwen2.5 vocabulary the model was made with
    } else {
        EXPECT_FALSE(j["quant_kind"].get<std::string>().empty());
        EXPECT_FALSE(j["tokenizer_kind"].get<std::string>().empty());
        EXPECT_GT(j["vocab_size"].get<uint64_t>(), 0u);
    }
    EXPECT_EQ(j["worker_id"], id);
    EXPECT_EQ(s.signal_and_wait(SIGTERM, 30s), 0);
}

// --- /execute -------------------------------------------------------------------------------------------------------

TEST(ServeExecute, StreamsEventsInOrderWithOneTerminalEvent) {
    Server s;
    HttpResult r =
        post_json(s.url("/execute"), execute_body("job-1", 24, R"(,"seed":42,"temperature":0.7)"), {"-D", "-"});
    ASSERT_EQ(r.status, 200);
    EXPECT_NE(r.body.find("Content-Type: text/event-stream"), std::string::npos) << r.body.substr(0, 300);
    const std::string sse = r.body.substr(r.body.find("\r\n\r\n") + 4);
    auto ev = check_stream(sse, "job-1");
    ASSERT_EQ(ev.back().event, "end");
    const json& end = ev.back().data;
    EXPECT_EQ(end["stop_reason"], "length");
    EXPECT_EQ(end["tokens_out"], 24);
    EXPECT_EQ(end["seed"], 42);
    EXPECT_GT(end["decode_time_ms"].get<double>(), 0.0);

    // The same seed gives the same text; without a seed, one is generated and reported.
    HttpResult again = post_json(s.url("/execute"), execute_body("job-2", 24, R"(,"seed":42,"temperature":0.7)"));
    EXPECT_EQ(text_of(check_stream(again.body, "job-2")), text_of(ev));
    HttpResult unseeded = post_json(s.url("/execute"), execute_body("job-3", 4));
    auto ev3 = check_stream(unseeded.body, "job-3");
    ASSERT_EQ(ev3.back().event, "end");
    EXPECT_TRUE(ev3.back().data["seed"].is_number_unsigned());

    // Stop strings end generation and are not emitted.
    const std::string full = text_of(ev);
    ASSERT_GT(full.size(), 4u);
    // Two whole characters from the middle: a cut inside a multi-byte character would not be valid UTF-8 (random
    // weights over the Phi-3 vocabulary produce plenty of those).
    auto is_continuation = [&](size_t i) {
        return i < full.size() && (static_cast<unsigned char>(full[i]) & 0xC0) == 0x80;
    };
    size_t a = full.size() / 2;
    while (a > 0 && is_continuation(a)) --a;
    size_t b = a;
    for (int chars = 0; chars < 2 && b < full.size(); ++chars) {
        ++b;
        while (is_continuation(b)) ++b;
    }
    const std::string stop = full.substr(a, b - a);
    HttpResult stopped =
        post_json(s.url("/execute"),
                  execute_body("job-4", 24, R"(,"seed":42,"temperature":0.7,"stop":[)" + json(stop).dump() + "]"));
    auto ev4 = check_stream(stopped.body, "job-4");
    ASSERT_EQ(ev4.back().event, "end");
    EXPECT_EQ(ev4.back().data["stop_reason"], "stop");
    EXPECT_EQ(text_of(ev4), full.substr(0, full.find(stop)));

    // A prompt that does not fit with max_tokens ends with CONTEXT_OVERFLOW, as an error event.
    HttpResult overflow = post_json(s.url("/execute"), execute_body("job-5", served_context()));
    auto ev5 = check_stream(overflow.body, "job-5");
    ASSERT_EQ(ev5.back().event, "error");
    EXPECT_EQ(ev5.back().data["code"], "CONTEXT_OVERFLOW");
    EXPECT_NE(ev5.back().data["message"].get<std::string>().find("exceed the context"), std::string::npos);
}

TEST(ServeExecute, ValidatesEveryField) {
    Server s;
    struct Case {
        std::string body;
        std::set<std::string> fields;
    };
    const std::string long_prompt(32769, 'a');
    const std::vector<Case> cases = {
        {R"({"prompt":"x"})", {"job_id"}},
        {R"({"job_id":"","prompt":"x"})", {"job_id"}},
        {R"({"job_id":7,"prompt":"x"})", {"job_id"}},
        {R"({"job_id":"j"})", {"prompt"}},
        {R"({"job_id":"j","prompt":""})", {"prompt"}},
        {R"({"job_id":"j","prompt":")" + long_prompt + R"("})", {"prompt"}},
        {R"({"job_id":"j","prompt":"x","max_tokens":0})", {"max_tokens"}},
        {R"({"job_id":"j","prompt":"x","max_tokens":)" + std::to_string(served_context() + 1) + "}", {"max_tokens"}},
        {R"({"job_id":"j","prompt":"x","max_tokens":"5"})", {"max_tokens"}},
        {R"({"job_id":"j","prompt":"x","max_tokens":1.5})", {"max_tokens"}},
        {R"({"job_id":"j","prompt":"x","temperature":-0.1})", {"temperature"}},
        {R"({"job_id":"j","prompt":"x","temperature":2.01})", {"temperature"}},
        {R"({"job_id":"j","prompt":"x","top_p":1.5})", {"top_p"}},
        {R"({"job_id":"j","prompt":"x","top_p":-0.5})", {"top_p"}},
        {R"({"job_id":"j","prompt":"x","top_k":-1})", {"top_k"}},
        {R"({"job_id":"j","prompt":"x","min_p":2})", {"min_p"}},
        {R"({"job_id":"j","prompt":"x","repetition_penalty":0})", {"repetition_penalty"}},
        {R"({"job_id":"j","prompt":"x","stop":["a","b","c","d","e"]})", {"stop"}},
        {R"({"job_id":"j","prompt":"x","stop":"a"})", {"stop"}},
        {R"({"job_id":"j","prompt":"x","stop":["a",1]})", {"stop[1]"}},
        {R"({"job_id":"j","prompt":"x","seed":-1})", {"seed"}},
        {R"({"job_id":"j","prompt":"x","seed":18446744073709551616})", {"seed"}},
        {R"({"job_id":"j","prompt":"x","seed":1.5})", {"seed"}},
        {R"({"job_id":"j","prompt":"x","temprature":1})", {"temprature"}},
        {R"([1,2])", {"(body)"}},
        // Several at once: each is named.
        {R"({"job_id":"","prompt":"","max_tokens":0,"temperature":9,"top_p":2,"top_k":-2,"min_p":-1,)"
         R"("repetition_penalty":-1,"stop":[1,2,3,4,5],"seed":"x"})",
         {"job_id", "prompt", "max_tokens", "temperature", "top_p", "top_k", "min_p", "repetition_penalty", "stop",
          "seed"}},
    };
    for (const auto& c : cases) {
        HttpResult r = post_json(s.url("/execute"), c.body);
        EXPECT_EQ(r.status, 400) << c.body.substr(0, 200) << "\n" << r.body;
        json j = r.json();
        ASSERT_TRUE(j.contains("error")) << r.body;
        EXPECT_EQ(j["error"]["code"], "INVALID_REQUEST");
        std::set<std::string> named;
        for (auto it = j["error"]["fields"].begin(); it != j["error"]["fields"].end(); ++it) {
            named.insert(it.key());
            EXPECT_FALSE(it.value().get<std::string>().empty());
        }
        EXPECT_EQ(named, c.fields) << c.body.substr(0, 200) << "\n" << r.body;
    }
    // The server counted every rejected request as invalid.
    json fams = metrics_families(s);
    EXPECT_EQ(sample(fams, "worker_requests", "worker_requests_total", {{"outcome", "invalid"}}),
              static_cast<double>(cases.size()));
}

TEST(ServeExecute, AcceptsEveryLimit) {
    // The longest prompt is 4096 tokens with the default test model's vocabulary: it needs that model's whole
    // context, which a model given by the device script may not have.
    if (model_overridden()) GTEST_SKIP() << "needs the default test model's 8192-token context";
    const std::string max_prompt(32768, 'a');
    Server big({"-c", std::to_string(kModelContext)});
    HttpResult ok = post_json(big.url("/execute"),
                              R"({"job_id":"edge","prompt":")" + max_prompt +
                                  R"(","max_tokens":1,"temperature":2,"top_p":0,"top_k":0,"min_p":1,)"
                                  R"("repetition_penalty":0.5,"stop":["a","b","c","d"],"seed":18446744073709551615})",
                              {}, 120s);
    EXPECT_EQ(ok.status, 200) << ok.body.substr(0, 300);
    auto ev = check_stream(ok.body, "edge");
    ASSERT_EQ(ev.back().event, "end") << ok.body.substr(0, 300);
    EXPECT_EQ(ev.back().data["seed"], 18446744073709551615ull);
}

// --- cancellation -------------------------------------------------------------------------------------------------

// Reads SSE lines from a streaming curl until an "event: NAME" line; returns the JSON text of its data line.
std::optional<std::string> next_event(Child& c, const std::string& name, Clock::time_point deadline) {
    while (auto line = c.read_line(deadline)) {
        if (*line != "event: " + name) continue;
        auto data = c.read_line(deadline);
        if (!data || data->rfind("data: ", 0) != 0) return std::nullopt;
        return data->substr(6);
    }
    return std::nullopt;
}

std::unique_ptr<Child> stream_job(const Server& s, const std::string& job_id, int max_tokens) {
    return std::make_unique<Child>(std::vector<std::string>{"curl", "-sN", "--max-time", "120", "-H",
                                                            "Content-Type: application/json", "--data-binary",
                                                            execute_body(job_id, max_tokens), s.url("/execute")});
}

std::string cancel_request(const std::string& job_id) {
    const std::string body = R"({"job_id":")" + job_id + R"("})";
    return "POST /cancel HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nConnection: close\r\n"
           "Content-Length: " +
           std::to_string(body.size()) + "\r\n\r\n" + body;
}

// Cancels one running job and returns the time from sending /cancel to reading the error event, in ms.
double cancel_running_job(const Server& s, const std::string& job_id) {
    auto c = stream_job(s, job_id, 2000);  // far longer than the test
    const auto deadline = Clock::now() + 60s;
    EXPECT_TRUE(next_event(*c, "started", deadline));
    for (int k = 0; k < 5; ++k) EXPECT_TRUE(next_event(*c, "token", deadline)) << "no tokens streamed";

    // The cancel goes out on a raw socket, so the measurement has no process start-up in it; it ends when the
    // client reads the error event.
    const auto t0 = Clock::now();
    std::thread canceller([&] {
        std::string resp = raw_request(s.port(), cancel_request(job_id), 5s);
        EXPECT_EQ(raw_status(resp), 202) << resp;
        EXPECT_NE(resp.find(R"("state":"running")"), std::string::npos) << resp;
    });
    auto data = next_event(*c, "error", deadline);
    const auto latency = Clock::now() - t0;
    canceller.join();
    EXPECT_TRUE(data);
    if (!data) return 1e9;
    json err = json::parse(*data);
    EXPECT_EQ(err["code"], "CANCELLED");
    EXPECT_NE(err["message"].get<std::string>().find("cancelled by request"), std::string::npos);
    // The stream ends after the error event (exactly one terminal event).
    EXPECT_EQ(c->wait(10s), 0);
    return std::chrono::duration<double, std::milli>(latency).count();
}

TEST(ServeCancel, RunningJobStopsWithin100ms) {
    Server s;
    // The bound is the server's; the 2-core CI machine is shared, and a descheduled client or server thread can
    // add its own delay to one measurement. The best of three attempts is the server's latency: a server that
    // checked cancellation less often than every token would miss the bound on every attempt.
    double best = 1e9;
    for (int attempt = 0; attempt < 3 && best >= 100.0; ++attempt) {
        const double ms = cancel_running_job(s, numbered("long-", attempt));
        std::printf("cancel latency: %.1f ms\n", ms);
        best = std::min(best, ms);
    }
    RecordProperty("cancel_latency_ms", std::to_string(best));
    EXPECT_LT(best, 100.0) << "the running job took " << best << " ms to stop after /cancel (best of 3)";

    // Idempotent: cancelling again (the job is gone) is still 202.
    std::string again = raw_request(s.port(), cancel_request("long-0"), 5s);
    EXPECT_EQ(raw_status(again), 202);
    EXPECT_NE(again.find(R"("state":"not_found")"), std::string::npos) << again;
    HttpResult bad = post_json(s.url("/cancel"), R"({"id":"x"})");
    EXPECT_EQ(bad.status, 400);
    EXPECT_TRUE(bad.json()["error"]["fields"].contains("job_id")) << bad.body;
}

TEST(ServeCancel, QueuedJobIsRemovedAndEndsCancelled) {
    Server s({"--parallel", "1"});  // one running job, so the second waits
    auto running = stream_job(s, "first", 2000);
    const auto deadline = Clock::now() + 60s;
    ASSERT_TRUE(next_event(*running, "token", deadline));
    auto queued = stream_job(s, "second", 8);
    // Wait until the second job is in the queue.
    for (int k = 0; k < 200 && curl({s.url("/health")}).json()["queue_depth"] != 1; ++k)
        std::this_thread::sleep_for(10ms);
    ASSERT_EQ(curl({s.url("/health")}).json()["queue_depth"], 1);

    HttpResult c = post_json(s.url("/cancel"), R"({"job_id":"second"})");
    EXPECT_EQ(c.status, 202);
    EXPECT_EQ(c.json()["state"], "queued");
    // It never started: its only event is the error.
    auto line = queued->read_line(deadline);
    ASSERT_TRUE(line);
    EXPECT_EQ(*line, "event: error");
    auto data = queued->read_line(deadline);
    ASSERT_TRUE(data && data->rfind("data: ", 0) == 0);
    EXPECT_EQ(json::parse(data->substr(6))["code"], "CANCELLED");
    EXPECT_EQ(queued->wait(10s), 0);

    EXPECT_EQ(post_json(s.url("/cancel"), R"({"job_id":"first"})").status, 202);
    EXPECT_TRUE(next_event(*running, "error", deadline));
}

TEST(ServeCancel, ClientDisconnectCancelsItsJob) {
    Server s;
    auto c = stream_job(s, "leaver", 2000);
    const auto deadline = Clock::now() + 60s;
    ASSERT_TRUE(next_event(*c, "token", deadline));
    c->kill_now();  // the client vanishes mid-stream
    // The job stops: the engine becomes free, and the metrics count one cancelled request.
    bool stopped = false;
    for (int k = 0; k < 300 && !stopped; ++k) {
        stopped = curl({s.url("/health")}).json()["busy"] == false;
        if (!stopped) std::this_thread::sleep_for(10ms);
    }
    EXPECT_TRUE(stopped) << "the job kept running after its client disconnected\n" << s.log();
    EXPECT_EQ(sample(metrics_families(s), "worker_requests", "worker_requests_total", {{"outcome", "cancelled"}}), 1);
    EXPECT_NE(s.log().find("job leaver: the client disconnected"), std::string::npos) << s.log();
    // And the worker serves the next job.
    HttpResult next = post_json(s.url("/execute"), execute_body("after", 4));
    EXPECT_EQ(check_stream(next.body, "after").back().event, "end");
}

// --- shutdown
// ---------------------------------------------------------------------------------------------------------

TEST(ServeShutdown, PostShutdownFinishesTheRunningJobAndExitsZero) {
    Server s;
    auto c = stream_job(s, "finishing", 150);  // long enough to be running at /shutdown, well within the grace
    const auto deadline = Clock::now() + 60s;
    ASSERT_TRUE(next_event(*c, "token", deadline));
    const auto t0 = Clock::now();
    // A bodiless POST (no Content-Length) is accepted at once.
    HttpResult r = curl({"-X", "POST", s.url("/shutdown")}, 10s);
    EXPECT_EQ(r.status, 202) << r.body;
    EXPECT_LT(Clock::now() - t0, 2s);
    // New work is refused while the running job finishes.
    HttpResult refused = post_json(s.url("/execute"), execute_body("late", 4), {"-D", "-"});
    EXPECT_EQ(refused.status, 503) << refused.body;
    EXPECT_NE(refused.body.find("Retry-After: 1"), std::string::npos) << refused.body;
    // The running job ends normally with all its tokens.
    auto end = next_event(*c, "end", deadline);
    ASSERT_TRUE(end) << s.log();
    EXPECT_EQ(json::parse(*end)["tokens_out"], 150);
    EXPECT_EQ(s.wait(30s), 0) << s.log();
    EXPECT_LT(Clock::now() - t0, 30s);
    EXPECT_NE(s.log().find("model released"), std::string::npos) << s.log();
    // The port is closed.
    EXPECT_EQ(raw_request(s.port(), "GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n", 1s), "");
}

TEST(ServeShutdown, SigtermCancelsAJobBeyondTheGraceAndExitsZero) {
    Server s({"--shutdown-grace-ms", "300"});
    auto c = stream_job(s, "endless", 2000);
    const auto deadline = Clock::now() + 60s;
    ASSERT_TRUE(next_event(*c, "token", deadline));
    const auto t0 = Clock::now();
    kill(s.pid(), SIGTERM);
    auto err = next_event(*c, "error", deadline);
    ASSERT_TRUE(err) << s.log();
    json e = json::parse(*err);
    EXPECT_EQ(e["code"], "CANCELLED");
    EXPECT_NE(e["message"].get<std::string>().find("shutting down"), std::string::npos) << *err;
    EXPECT_EQ(s.wait(30s), 0) << s.log();
    EXPECT_LT(Clock::now() - t0, 5s);
    const std::string log = s.log();
    EXPECT_NE(log.find("SIGTERM received"), std::string::npos) << log;
    EXPECT_NE(log.find("model released"), std::string::npos) << log;
}

TEST(ServeShutdown, SigintWhenIdleExitsZero) {
    Server s;
    EXPECT_EQ(s.signal_and_wait(SIGINT, 30s), 0) << s.log();
    EXPECT_NE(s.log().find("SIGINT received"), std::string::npos);
}

// --- metrics
// ----------------------------------------------------------------------------------------------------------

TEST(ServeMetrics, ParseWithPrometheusClientAndCount) {
    Server s;
    uint64_t tokens = 0;
    for (int k = 0; k < 3; ++k) {
        auto ev =
            check_stream(post_json(s.url("/execute"), execute_body(numbered("m", k), 5 + k)).body, numbered("m", k));
        tokens += ev.back().data["tokens_out"].get<uint64_t>();
    }
    EXPECT_EQ(post_json(s.url("/execute"), R"({"job_id":"bad"})").status, 400);
    json f = metrics_families(s);
    EXPECT_EQ(f["worker_vram_bytes"]["type"], "gauge");
    // The same figure /health reports: 0 on the CPU backend, the resident weights' bytes on CUDA.
    EXPECT_EQ(sample(f, "worker_vram_bytes", "worker_vram_bytes"),
              curl({s.url("/health")}).json()["vram_bytes_used"].get<double>());
    EXPECT_EQ(f["worker_requests"]["type"], "counter");
    EXPECT_EQ(sample(f, "worker_requests", "worker_requests_total", {{"outcome", "success"}}), 3);
    EXPECT_EQ(sample(f, "worker_requests", "worker_requests_total", {{"outcome", "invalid"}}), 1);
    EXPECT_EQ(sample(f, "worker_requests", "worker_requests_total", {{"outcome", "cancelled"}}), 0);
    EXPECT_EQ(sample(f, "worker_generation_tokens", "worker_generation_tokens_total"), static_cast<double>(tokens));
    EXPECT_EQ(tokens, 5u + 6u + 7u);
    for (const char* h : {"worker_inference_duration_seconds", "worker_time_to_first_token_seconds"}) {
        EXPECT_EQ(f[h]["type"], "histogram") << h;
        EXPECT_EQ(sample(f, h, std::string(h) + "_count"), 3) << h;
        EXPECT_EQ(sample(f, h, std::string(h) + "_bucket", {{"le", "+Inf"}}), 3) << h;
        EXPECT_GT(sample(f, h, std::string(h) + "_sum"), 0) << h;
    }
    EXPECT_EQ(f["worker_queue_depth"]["type"], "gauge");
    EXPECT_EQ(sample(f, "worker_queue_depth", "worker_queue_depth"), 0);
    EXPECT_GT(sample(f, "worker_uptime_seconds", "worker_uptime_seconds"), 0);
}

// --- authentication -----------------------------------------------------------------------------------------------

TEST(ServeAuth, ApiKeyGuardsEverythingButHealth) {
    Server s({"--api-key", "s3cret"});
    const std::vector<std::string> good = {"-H", "Authorization: Bearer s3cret"};
    const std::vector<std::string> wrong = {"-H", "Authorization: Bearer nope"};
    EXPECT_EQ(curl({s.url("/health")}).status, 200);
    for (const char* path : {"/metrics", "/v1/models"}) {
        HttpResult none = curl({"-D", "-", s.url(path)});
        EXPECT_EQ(none.status, 401) << path;
        EXPECT_NE(none.body.find("WWW-Authenticate: Bearer"), std::string::npos) << none.body;
        std::vector<std::string> a = wrong;
        a.push_back(s.url(path));
        EXPECT_EQ(curl(a).status, 401) << path;
        a = good;
        a.push_back(s.url(path));
        EXPECT_EQ(curl(a).status, 200) << path;
    }
    HttpResult oa = curl({s.url("/v1/models")});
    EXPECT_EQ(oa.json()["error"]["code"], "invalid_api_key") << oa.body;  // OpenAI's error shape under /v1
    for (const char* path : {"/execute", "/cancel", "/shutdown", "/v1/completions", "/v1/chat/completions"}) {
        EXPECT_EQ(post_json(s.url(path), execute_body("auth", 2)).status, 401) << path;
        EXPECT_EQ(post_json(s.url(path), execute_body("auth", 2), wrong).status, 401) << path;
    }
    HttpResult ok = post_json(s.url("/execute"), execute_body("auth", 2), good);
    EXPECT_EQ(ok.status, 200);
    EXPECT_EQ(check_stream(ok.body, "auth").back().event, "end");
    EXPECT_EQ(s.signal_and_wait(SIGTERM, 30s), 0);  // the unauthenticated /shutdown above did nothing
}

// --- malformed requests ---------------------------------------------------------------------------------------------

TEST(ServeMalformed, RightStatusAndNeverACrash) {
    Server s({"--max-body-bytes", "4096"});
    const std::string big(5000, 'x');
    // curl-made requests.
    EXPECT_EQ(post_json(s.url("/execute"), "{not json").status, 400);
    HttpResult bad_json = post_json(s.url("/execute"), R"({"job_id":"a",)");
    EXPECT_EQ(bad_json.json()["error"]["code"], "INVALID_JSON");
    EXPECT_EQ(post_json(s.url("/execute"), R"({"job_id":"a","prompt":")" + big + R"("})").status, 413);
    EXPECT_EQ(
        curl({"-H", "Content-Type: text/plain", "--data-binary", execute_body("ct", 2), s.url("/execute")}).status,
        415);
    EXPECT_EQ(curl({"--data-binary", execute_body("ct", 2), s.url("/execute")}).status, 415);  // form-urlencoded
    EXPECT_EQ(curl({s.url("/no/such/path")}).status, 404);
    EXPECT_EQ(curl({s.url("/v1/nothing")}).json()["error"]["type"], "invalid_request_error");
    HttpResult method = curl({"-D", "-", s.url("/execute")});
    EXPECT_EQ(method.status, 405);
    EXPECT_NE(method.body.find("Allow: POST"), std::string::npos);
    EXPECT_EQ(curl({"-X", "DELETE", s.url("/health")}).status, 405);
    EXPECT_EQ(post_json(s.url("/health"), "{}").status, 405);
    EXPECT_EQ(curl({"-X", "POST", s.url("/execute")}).status, 411);

    // Raw bytes no client library would send.
    struct Raw {
        std::string bytes;
        int status;
    };
    const std::vector<Raw> raws = {
        {"THIS IS NOT HTTP\r\n\r\n", 400},
        {"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Big: " + std::string(70000, 'h') + "\r\n\r\n", 431},
        {"GET /" + std::string(10000, 'a') + " HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n", 414},
        {"POST /execute HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: 999999\r\n\r\n{",
         413},
        {"POST /execute HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: 5\r\n\r\n\xff\xfe{}x",
         400},
        {"POST /execute HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
         "zz\r\n",
         400},
    };
    for (const auto& r : raws) {
        const std::string resp = raw_request(s.port(), r.bytes, 10s);
        EXPECT_EQ(raw_status(resp), r.status) << r.bytes.substr(0, 80) << "\n---\n" << resp;
    }
    // A body shorter than its Content-Length, then the client leaves: nothing to answer, nothing to break.
    raw_request(
        s.port(),
        "POST /execute HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{",
        500ms);
    // Still healthy, still serving.
    EXPECT_TRUE(s.running());
    EXPECT_EQ(curl({s.url("/health")}).json()["status"], "healthy");
    EXPECT_EQ(check_stream(post_json(s.url("/execute"), execute_body("fine", 3)).body, "fine").back().event, "end");
}

// --- load -----------------------------------------------------------------------------------------------------------

TEST(ServeLoad, TwoHundredRequestsFromSixteenClients) {
    Server s({"--max-queue", "4"});
    // One curl process runs 200 transfers, 16 at a time; each transfer's body and status go to its own files.
    const fs::path dir = scratch_dir() / "load";
    fs::create_directories(dir);
    const fs::path cfg = dir / "curl.cfg";
    {
        std::ofstream f(cfg);
        for (int k = 0; k < 200; ++k) {
            f << "url = \"" << s.url("/execute") << "\"\n"
              << "header = \"Content-Type: application/json\"\n"
              << "data-binary = " << json(execute_body(numbered("load-", k), 3)).dump() << "\n"
              << "output = \"" << (dir / (numbered("r", k) + ".txt")).string() << "\"\n"
              << "write-out = \"%{http_code} " << k << "\\n\"\n";
            if (k + 1 < 200) f << "next\n";  // separates transfers; a trailing one would start an empty transfer
        }
    }
    RunResult r =
        run({"curl", "-sS", "--parallel", "--parallel-max", "16", "--max-time", "120", "-K", cfg.string()}, 180s);
    ASSERT_EQ(r.exit_code, 0) << r.err;
    int completed = 0, refused = 0;
    std::istringstream lines(r.out);
    int status = 0, k = 0, n = 0;
    while (lines >> status >> k) {
        ++n;
        std::ifstream f(dir / (numbered("r", k) + ".txt"));
        std::string body((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
        if (status == 200) {
            auto ev = check_stream(body, numbered("load-", k));
            ASSERT_FALSE(ev.empty());
            EXPECT_EQ(ev.back().event, "end") << body;
            ++completed;
        } else {
            EXPECT_EQ(status, 503) << body;
            EXPECT_EQ(json::parse(body)["error"]["code"], "UNAVAILABLE") << body;
            ++refused;
        }
    }
    EXPECT_EQ(n, 200);
    EXPECT_EQ(completed + refused, 200);
    EXPECT_GT(completed, 0);
    std::printf("200 requests, 16 clients, --max-queue 4: %d completed, %d refused with 503\n", completed, refused);
    HttpResult h = curl({s.url("/health")});
    EXPECT_EQ(h.status, 200);
    EXPECT_EQ(h.json()["status"], "healthy");
    EXPECT_EQ(h.json()["queue_depth"], 0);
    json f = metrics_families(s);
    EXPECT_EQ(sample(f, "worker_requests", "worker_requests_total", {{"outcome", "success"}}), completed);
    EXPECT_EQ(sample(f, "worker_requests", "worker_requests_total", {{"outcome", "rejected"}}), refused);
    EXPECT_EQ(s.signal_and_wait(SIGTERM, 30s), 0);
}

// Streams on a kept-alive connection are what pooled clients (the openai SDKs) send. Without TCP_NODELAY on the
// server's sockets, the first SSE chunk after the response head waited for the client to acknowledge the head, which
// a client in delayed-ACK mode (any connection past its first exchanges) does after ~40 ms: every request but a
// connection's first reached its first token ~40 ms late. The same requests on fresh connections (quick ACKs) are
// the reference, so a slow build's step cost cancels out.
TEST(ServeStream, KeptAliveConnectionsAreNotHeldByNagle) {
    Server s;
    const std::string body =
        json{{"model", test_model_id()}, {"prompt", "Hello"}, {"max_tokens", 1}, {"stream", true}, {"temperature", 0}}
            .dump();
    const std::string request =
        "POST /v1/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        "Content-Length: " +
        std::to_string(body.size()) + "\r\n\r\n" + body;
    auto open_socket = [&] {
        const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        sockaddr_in a{};
        a.sin_family = AF_INET;
        a.sin_port = htons(static_cast<uint16_t>(s.port()));
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        EXPECT_EQ(connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
        timeval tv{10, 0};
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
        return fd;
    };
    // Milliseconds from the response head's arrival to the first SSE event's; the whole stream is read.
    auto head_to_first_event = [&](int fd) -> double {
        EXPECT_EQ(send(fd, request.data(), request.size(), MSG_NOSIGNAL), static_cast<ssize_t>(request.size()));
        std::string got;
        std::optional<Clock::time_point> head_at, event_at;
        while (!got.ends_with("0\r\n\r\n")) {
            char buf[4096];
            const ssize_t n = recv(fd, buf, sizeof buf, 0);
            if (n <= 0) {
                ADD_FAILURE() << "the stream ended early: " << got;
                return 0;
            }
            got.append(buf, static_cast<size_t>(n));
            const size_t head_end = got.find("\r\n\r\n");
            if (!head_at && head_end != std::string::npos) head_at = Clock::now();
            if (!event_at && got.find("data:") != std::string::npos) event_at = Clock::now();
        }
        EXPECT_EQ(raw_status(got), 200) << got;
        return std::chrono::duration<double, std::milli>(*event_at - *head_at).count();
    };
    auto median = [](std::vector<double> v) {
        std::sort(v.begin(), v.end());
        return v[v.size() / 2];
    };
    std::vector<double> fresh, kept;
    for (int k = 0; k < 5; ++k) {
        const int fd = open_socket();
        fresh.push_back(head_to_first_event(fd));
        close(fd);
    }
    const int fd = open_socket();
    for (int k = 0; k < 8; ++k) {
        const double ms = head_to_first_event(fd);
        if (k >= 3) kept.push_back(ms);  // past the connection's first exchanges, where Linux still ACKs at once
    }
    close(fd);
    std::printf("head to first event: fresh connections %.2f ms, kept alive %.2f ms (medians)\n", median(fresh),
                median(kept));
    EXPECT_LT(median(kept), median(fresh) + 20.0);
}

// --- OpenAI ---------------------------------------------------------------------------------------------------------

TEST(ServeOpenAi, OfficialNpmClient) {
    // The client comes from npm at the version package-lock.json pins; without npm this test fails (it never skips).
    const fs::path dir = ORCD_SERVER_TEST_DIR;
    auto version_in = [](const fs::path& file, const std::vector<std::string>& keys) -> std::string {
        std::ifstream f(file);
        if (!f) return {};
        try {
            json j = json::parse(f);
            for (const auto& k : keys) j = j.at(k);
            return j.get<std::string>();
        } catch (const std::exception&) {
            return {};
        }
    };
    const std::string pinned = version_in(dir / "package-lock.json", {"packages", "node_modules/openai", "version"});
    ASSERT_FALSE(pinned.empty()) << "package-lock.json does not pin openai";
    // Installed by scripts/setup.sh (`npm ci` in tests/server): nothing is downloaded at test time.
    ASSERT_EQ(version_in(dir / "node_modules/openai/package.json", {"version"}), pinned)
        << "the openai npm package " << pinned << " is not installed in " << dir / "node_modules"
        << ": run scripts/setup.sh";
    Server s({"--api-key", "sk-test"});
    RunResult r = run({"node", (dir / "openai_client.mjs").string(), "http://127.0.0.1:" + std::to_string(s.port()),
                       test_model_id(), "sk-test", std::to_string(served_context())},
                      180s);
    EXPECT_EQ(r.exit_code, 0) << r.out << r.err << "\nserver log:\n" << s.log();
    std::printf("%s", r.out.c_str());
    EXPECT_EQ(s.signal_and_wait(SIGTERM, 30s), 0);
}

// Every field the worker does not implement is a 400 in OpenAI's shape naming it; --alias names the model; the
// llama-server tokenizer endpoints agree with the prompt count a completion reports.
TEST(ServeOpenAiSurface, UnsupportedParametersAliasAndTokenize) {
    Server s({"--alias", "my-model"});
    const std::string chat = s.url("/v1/chat/completions");
    for (const std::string field : {"functions", "audio", "prediction", "store", "no_such_field"}) {
        HttpResult r =
            post_json(chat, R"({"model":"my-model","messages":[{"role":"user","content":"hi"}],")" + field + R"(":1})");
        ASSERT_EQ(r.status, 400) << r.body;
        EXPECT_EQ(r.json()["error"]["message"], "unsupported parameter: " + field);
        EXPECT_EQ(r.json()["error"]["type"], "invalid_request_error");
        EXPECT_EQ(r.json()["error"]["param"], field);
    }
    HttpResult r = post_json(s.url("/v1/completions"), R"({"model":"my-model","prompt":"hi","suffix":"x"})");
    EXPECT_EQ(r.status, 400);
    EXPECT_EQ(r.json()["error"]["message"], "unsupported parameter: suffix");
    for (const char* n : {"0", "17", "1.5", "\"2\""}) {  // n is bounded: at most 16 choices
        r = post_json(chat,
                      std::string(R"({"model":"my-model","messages":[{"role":"user","content":"hi"}],"n":)") + n + "}");
        EXPECT_EQ(r.status, 400) << n;
        EXPECT_EQ(r.json()["error"]["param"], "n") << n;
    }
    r = post_json(s.url("/v1/completions"), R"({"model":"my-model","prompt":"hi","logit_bias":{"99999999":1}})");
    EXPECT_EQ(r.status, 400);
    EXPECT_EQ(r.json()["error"]["param"], "logit_bias");

    // /v1/models: the alias, with the context length.
    r = curl({s.url("/v1/models")});
    ASSERT_EQ(r.status, 200);
    const json m = r.json()["data"][0];
    EXPECT_EQ(m["id"], "my-model");
    EXPECT_EQ(m["owned_by"], "orcd");
    EXPECT_TRUE(m["created"].is_number_integer());
    EXPECT_EQ(m["max_model_len"], served_context());
    EXPECT_EQ(curl({s.url("/v1/models/my-model")}).status, 200);

    // /tokenize with add_special counts what a completion's usage reports for the same prompt.
    const std::string prompt = "Tokenize me, then count me.";
    r = post_json(s.url("/tokenize"), json{{"content", prompt}, {"add_special", true}, {"with_pieces", true}}.dump());
    ASSERT_EQ(r.status, 200) << r.body;
    const json pieces = r.json()["tokens"];
    std::string joined;
    std::vector<int> ids;
    for (const auto& p : pieces) {
        joined += p["piece"].get<std::string>();
        ids.push_back(p["id"].get<int>());
    }
    HttpResult c =
        post_json(s.url("/v1/completions"), json{{"model", "my-model"}, {"prompt", prompt}, {"max_tokens", 1}}.dump());
    ASSERT_EQ(c.status, 200) << c.body;
    EXPECT_EQ(c.json()["usage"]["prompt_tokens"], ids.size());
    r = post_json(s.url("/detokenize"), json{{"tokens", ids}}.dump());
    ASSERT_EQ(r.status, 200);
    EXPECT_EQ(r.json()["content"], prompt);
    EXPECT_EQ(post_json(s.url("/detokenize"), R"({"tokens":[-1]})").status, 400);
    EXPECT_EQ(post_json(s.url("/tokenize"), R"({"content":"x","add_specials":true})").status, 400);
}

// n choices: each is its own sequence, sampled with seed + i, so choice i is the n = 1 answer for seed + i (choice 0
// the n = 1 answer for the seed itself); the usage counts the prompt once and the completion tokens of every choice.
// Streamed, each choice's chunks carry its index, each choice ends with its own finish_reason, and the text per index
// is the non-streamed answer's.
TEST(ServeOpenAi, NChoicesAreSeededSequencesOfOneRequest) {
    Server s({"--parallel", "2"});  // fewer slots than choices: the third waits in the queue
    const std::string model = test_model_id();
    auto completion = [&](int n, uint64_t seed) {
        HttpResult r = post_json(s.url("/v1/completions"),
                                 json{{"model", model},
                                      {"prompt", "Once upon a time"},
                                      {"max_tokens", 6},
                                      {"temperature", 1.0},
                                      {"seed", seed},
                                      {"n", n}}
                                     .dump(),
                                 {}, 120s);
        EXPECT_EQ(r.status, 200) << r.body;
        return r.json();
    };
    const json three = completion(3, 42);
    ASSERT_EQ(three["choices"].size(), 3u) << three.dump();
    uint64_t completion_sum = 0;
    std::set<std::string> distinct;
    for (int i = 0; i < 3; ++i) {
        const json& choice = three["choices"][i];
        EXPECT_EQ(choice["index"], i);
        const json alone = completion(1, 42 + i);
        ASSERT_EQ(alone["choices"].size(), 1u);
        EXPECT_EQ(choice["text"], alone["choices"][0]["text"]) << "choice " << i << " is not seed 42+" << i;
        EXPECT_EQ(choice["finish_reason"], alone["choices"][0]["finish_reason"]);
        EXPECT_EQ(three["usage"]["prompt_tokens"], alone["usage"]["prompt_tokens"]);
        completion_sum += alone["usage"]["completion_tokens"].get<uint64_t>();
        distinct.insert(choice["text"].get<std::string>());
    }
    EXPECT_EQ(three["usage"]["completion_tokens"], completion_sum);
    EXPECT_EQ(three["usage"]["total_tokens"], three["usage"]["prompt_tokens"].get<uint64_t>() + completion_sum);
    EXPECT_GT(distinct.size(), 1u) << "three seeds sampled the same text: the seeds do not differ per choice";

    // Chat, streamed with the usage: per index the role first, the text of the non-streamed answer, one finish.
    const json chat_body = {
        {"model", model},  {"messages", json::array({{{"role", "user"}, {"content", "Tell me a story"}}})},
        {"max_tokens", 5}, {"temperature", 1.0},
        {"seed", 7},       {"n", 2}};
    HttpResult whole = post_json(s.url("/v1/chat/completions"), chat_body.dump(), {}, 120s);
    ASSERT_EQ(whole.status, 200) << whole.body;
    json streamed_body = chat_body;
    streamed_body["stream"] = true;
    streamed_body["stream_options"] = {{"include_usage", true}};
    HttpResult streamed = post_json(s.url("/v1/chat/completions"), streamed_body.dump(), {}, 120s);
    ASSERT_EQ(streamed.status, 200) << streamed.body;
    std::vector<std::string> text(2);
    std::vector<int> finishes(2, 0), deltas(2, 0);
    json usage;
    bool done = false;
    for (const auto& ev : parse_sse(streamed.body)) {
        ASSERT_FALSE(done) << "data after [DONE]";
        if (ev.data.is_string() && ev.data == "[DONE]") {
            done = true;
            continue;
        }
        if (ev.data.contains("usage") && !ev.data["usage"].is_null()) {
            EXPECT_TRUE(usage.is_null()) << "two usage chunks";
            EXPECT_TRUE(ev.data["choices"].empty());
            usage = ev.data["usage"];
            continue;
        }
        ASSERT_EQ(ev.data["choices"].size(), 1u) << ev.data.dump();
        const json& c = ev.data["choices"][0];
        const int i = c["index"].get<int>();
        ASSERT_TRUE(i == 0 || i == 1) << ev.data.dump();
        EXPECT_EQ(finishes[i], 0) << "a chunk after choice " << i << "'s finish";
        if (deltas[i]++ == 0) {
            EXPECT_EQ(c["delta"]["role"], "assistant") << ev.data.dump();
        }
        if (c["delta"].contains("content")) text[i] += c["delta"]["content"].get<std::string>();
        if (!c["finish_reason"].is_null()) ++finishes[i];
    }
    EXPECT_TRUE(done);
    const json w = whole.json();
    for (int i = 0; i < 2; ++i) {
        EXPECT_EQ(finishes[i], 1) << "choice " << i;
        EXPECT_EQ(text[i], w["choices"][i]["message"]["content"]) << "choice " << i;
    }
    EXPECT_EQ(usage, w["usage"]);
    EXPECT_EQ(s.signal_and_wait(SIGTERM, 30s), 0);
}

// /execute with llama-server's json_schema and grammar: the output is complete and matches; a bad schema is a 400
// naming the keyword.
TEST(ServeExecute, JsonSchemaAndGrammarConstrainTheOutput) {
    Server s;
    HttpResult r = post_json(s.url("/execute"), R"({"job_id":"js","prompt":"x","max_tokens":200,"temperature":1,
        "seed":3,"json_schema":{"type":"object","properties":{"ok":{"type":"boolean"},"n":{"enum":[1,2,3]}},
        "required":["ok","n"]}})");
    ASSERT_EQ(r.status, 200);
    auto ev = check_stream(r.body, "js");
    ASSERT_EQ(ev.back().event, "end") << r.body;
    std::string text = text_of(ev);
    const json out = json::parse(text);
    EXPECT_TRUE(out["ok"].is_boolean());
    EXPECT_TRUE(out["n"] == 1 || out["n"] == 2 || out["n"] == 3) << text;
    r = post_json(s.url("/execute"),
                  R"({"job_id":"g","prompt":"x","max_tokens":50,"grammar":"root ::= \"yes\" | \"no\""})");
    text = text_of(check_stream(r.body, "g"));
    EXPECT_TRUE(text == "yes" || text == "no") << text;
    r = post_json(s.url("/execute"),
                  R"({"job_id":"bad","prompt":"x","json_schema":{"type":"string","format":"email"}})");
    EXPECT_EQ(r.status, 400);
    EXPECT_NE(r.body.find("format"), std::string::npos) << r.body;
}

// Tool calling and structured output through the official client (openai_tools.mjs), one template per tool-call
// format: the Qwen 2.5 (Hermes <tool_call>), Llama 3.1 and Mistral v0.3 templates of ../shared/templates.
void run_tools_client(const std::string& template_name, const std::string& format) {
    if (model_overridden()) GTEST_SKIP() << "scripts replies with the Qwen vocabulary's token ids";
    const fs::path dir = ORCD_SERVER_TEST_DIR;
    ASSERT_TRUE(fs::exists(dir / "node_modules/openai/package.json")) << "run scripts/setup.sh (npm ci)";
    const std::string tmpl = shared_path("templates/" + template_name + ".jinja").string();
    Server s({"--chat-template-file", tmpl});
    RunResult r = run({"node", (dir / "openai_tools.mjs").string(), "http://127.0.0.1:" + std::to_string(s.port()),
                       test_model_id(), format, test_python()},
                      180s);
    EXPECT_EQ(r.exit_code, 0) << r.out << r.err << "\nserver log:\n" << s.log();
    std::printf("%s", r.out.c_str());
    EXPECT_EQ(s.signal_and_wait(SIGTERM, 30s), 0);
}

// Every schema of the grammar corpus (tests/grammar/schemas) through response_format with the official client, two
// seeds each, under --schema-max-string 24: complete, parsed and validated by python3-jsonschema. About 30 s, so it
// runs as its own ctest entry labelled slow (server_schema_corpus), not with the discovered tests.
TEST(ServeOpenAiSlow, DISABLED_SchemaCorpusThroughTheNpmClient) {
    if (model_overridden()) GTEST_SKIP() << "biases the Qwen vocabulary's token ids";
    const fs::path dir = ORCD_SERVER_TEST_DIR;
    ASSERT_TRUE(fs::exists(dir / "node_modules/openai/package.json")) << "run scripts/setup.sh (npm ci)";
    Server s({"--schema-max-string", "24", "--chat-template-file",
              shared_path("templates/qwen2.5-instruct.jinja").string()});
    RunResult r =
        run({"node", (dir / "openai_schema_corpus.mjs").string(), "http://127.0.0.1:" + std::to_string(s.port()),
             test_model_id(), test_python(), std::string(ORCD_SOURCE_DIR) + "/tests/grammar/schemas", "2"},
            600s);
    EXPECT_EQ(r.exit_code, 0) << r.out << r.err << "\nserver log:\n" << s.log();
    std::printf("%s", r.out.c_str());
    EXPECT_EQ(s.signal_and_wait(SIGTERM, 30s), 0);
}

TEST(ServeOpenAiTools, HermesQwenTemplate) { run_tools_client("qwen2.5-instruct", "hermes"); }
TEST(ServeOpenAiTools, Llama31Template) { run_tools_client("llama-3.1-instruct", "llama3"); }
TEST(ServeOpenAiTools, MistralV03Template) { run_tools_client("mistral-7b-instruct-v0.3", "mistral"); }

}  // namespace
}  // namespace orcd::test
