// The real EngineService (CPU backend, tiny synth model) behind the real HttpServer, with the backend wrapped through
// the service's test seam: /health's `resident` and the background residency check come from the backend's
// residency hook (an unhealthy answer makes /health 503), and vram_bytes_used / worker_vram_bytes from its memory
// report. Plain sockets on loopback; no GPU needed.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <thread>

#include "server/engine_service.h"
#include "server/http_server.h"
#include "shared_files.h"
#include "synth/synth.h"

namespace orcd::server {
namespace {

using json = nlohmann::json;
using namespace std::chrono_literals;
namespace fs = std::filesystem;

const fs::path kQwenVocab = orcd::test::shared_path("models/vocab/ggml-vocab-qwen2.5.gguf");

const fs::path& tiny_model() {
    static const fs::path p = [] {
        const fs::path path = fs::temp_directory_path() / ("orcd-engine-service-" + std::to_string(getpid()) + ".gguf");
        synth::Options o;
        o.preset = "qwen2.5-tiny";
        o.type = synth::FileType::Q8_0;
        o.vocab = kQwenVocab;
        synth::write_model(o, path);
        return path;
    }();
    return p;
}
struct Cleanup {
    ~Cleanup() {
        std::error_code ec;
        fs::remove(fs::temp_directory_path() / ("orcd-engine-service-" + std::to_string(getpid()) + ".gguf"), ec);
    }
} cleanup;

// Forwards to the real backend, except the two hooks the server reads, which the test scripts.
class ScriptedBackend final : public backend::Backend {
public:
    explicit ScriptedBackend(std::unique_ptr<backend::Backend> inner) : inner_(std::move(inner)) {}
    std::string_view name() const override { return inner_->name(); }
    const model::Config& config() const override { return inner_->config(); }
    std::unique_ptr<backend::Sequence> new_sequence(const backend::SequenceOptions& o) override {
        return inner_->new_sequence(o);
    }
    uint64_t kv_page_bytes(uint32_t page_size, backend::KvCacheType t) const override {
        return inner_->kv_page_bytes(page_size, t);
    }
    std::unique_ptr<backend::KvPool> new_kv_pool(const backend::KvPoolOptions& o) override {
        return inner_->new_kv_pool(o);
    }
    void step(backend::KvPool& pool, std::span<const backend::BatchEntry> batch,
              std::span<backend::BatchResult> results) override {
        inner_->step(pool, batch, results);
    }
    backend::DeviceMemoryReport device_memory() const override { return {weights.load(), 2048, 64}; }
    std::optional<std::string> residency_problem() const override {
        ++residency_calls;
        if (!resident) return "weights arena reported as host memory (scripted)";
        return inner_->residency_problem();
    }

    std::atomic<uint64_t> weights{1 << 20};
    std::atomic<bool> resident{true};
    mutable std::atomic<int> residency_calls{0};

private:
    std::unique_ptr<backend::Backend> inner_;
};

struct Response {
    int status = 0;
    std::string body;
};

Response http_get(int port, const std::string& path) {
    const int fd = socket(AF_INET, SOCK_STREAM, 0);
    EXPECT_GE(fd, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(static_cast<uint16_t>(port));
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    Response r;
    if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
        ADD_FAILURE() << "connect to port " << port << " failed";
        close(fd);
        return r;
    }
    const std::string req = "GET " + path + " HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n";
    EXPECT_EQ(send(fd, req.data(), req.size(), 0), static_cast<ssize_t>(req.size()));
    std::string all;
    char buf[4096];
    for (ssize_t n; (n = recv(fd, buf, sizeof buf, 0)) > 0;) all.append(buf, static_cast<size_t>(n));
    close(fd);
    if (all.rfind("HTTP/1.1 ", 0) == 0) r.status = std::stoi(all.substr(9, 3));
    if (const size_t at = all.find("\r\n\r\n"); at != std::string::npos) r.body = all.substr(at + 4);
    return r;
}

TEST(EngineServiceHealth, ResidencyHookAndMemoryReportDriveHealthAndMetrics) {
    ORCD_SKIP_WITHOUT_SHARED(kQwenVocab);
    ScriptedBackend* scripted = nullptr;
    EngineServiceOptions eo;
    eo.model_path = tiny_model();
    eo.device = engine::Device::Cpu;
    eo.n_threads = 2;
    eo.wrap_backend_for_test = [&](std::unique_ptr<backend::Backend> b) -> std::unique_ptr<backend::Backend> {
        auto s = std::make_unique<ScriptedBackend>(std::move(b));
        scripted = s.get();
        return s;
    };
    EngineService service(eo);
    ASSERT_NE(scripted, nullptr);
    EXPECT_EQ(service.device_memory().total(), (1u << 20) + 2048 + 64);

    ServerOptions so;
    so.port = 0;
    so.worker_id = "0f8fad5b-d9cb-469f-a165-70867728950e";
    so.residency_interval = 10ms;
    HttpServer http(service, so);
    const int port = http.bind();
    http.start();
    EXPECT_GE(scripted->residency_calls.load(), 1);  // the first check runs before the port serves anything

    Response r = http_get(port, "/health");
    ASSERT_EQ(r.status, 200) << r.body;
    json j = json::parse(r.body);
    EXPECT_EQ(j["status"], "healthy");
    EXPECT_EQ(j["resident"], true);
    EXPECT_EQ(j["vram_bytes_used"], (1u << 20) + 2048 + 64);
    EXPECT_EQ(j["vram"], (json{{"weights", 1u << 20}, {"kv_cache", 2048}, {"workspace", 64}}));

    // The background check keeps calling the hook.
    const int before = scripted->residency_calls.load();
    for (int i = 0; i < 500 && scripted->residency_calls.load() < before + 3; ++i) std::this_thread::sleep_for(2ms);
    EXPECT_GE(scripted->residency_calls.load(), before + 3);

    // The hook reports a problem: the next check marks the worker unhealthy.
    scripted->resident = false;
    for (int i = 0; i < 500; ++i) {
        r = http_get(port, "/health");
        if (r.status != 200) break;
        std::this_thread::sleep_for(2ms);
    }
    ASSERT_EQ(r.status, 503) << r.body;
    j = json::parse(r.body);
    EXPECT_EQ(j["status"], "unhealthy");
    EXPECT_EQ(j["resident"], false);
    EXPECT_EQ(j["problem"], "weights arena reported as host memory (scripted)");

    // The memory figure is read at each request, not fixed at start.
    scripted->weights = 5000;
    EXPECT_EQ(json::parse(http_get(port, "/health").body)["vram_bytes_used"], 5000 + 2048 + 64);
    const Response m = http_get(port, "/metrics");
    ASSERT_EQ(m.status, 200);
    EXPECT_NE(m.body.find("\nworker_vram_bytes{model=\"" + service.info().model_id + "\"} 7112\n"), std::string::npos)
        << m.body;

    // And recovers when the hook does.
    scripted->resident = true;
    for (int i = 0; i < 500; ++i) {
        r = http_get(port, "/health");
        if (r.status == 200) break;
        std::this_thread::sleep_for(2ms);
    }
    EXPECT_EQ(r.status, 200);
    http.shutdown();
}

TEST(EngineServiceHealth, CpuBackendReportsNoDeviceMemoryAndIsResident) {
    ORCD_SKIP_WITHOUT_SHARED(kQwenVocab);
    EngineServiceOptions eo;
    eo.model_path = tiny_model();
    eo.device = engine::Device::Cpu;
    eo.n_threads = 2;
    EngineService service(eo);
    EXPECT_EQ(service.device_memory().total(), 0u);
    EXPECT_EQ(service.residency_problem(), std::nullopt);
}

}  // namespace
}  // namespace orcd::server
