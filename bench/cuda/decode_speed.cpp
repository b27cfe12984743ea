// Decode tokens/s of the CUDA backend on a synth model of a real shape (random weights, llama.cpp's type mix), next
// to the weight bytes read per token: effective bandwidth = bytes x tokens/s. Each step is a full decode (graph
// replay + the logits copied to the host), as `orcd generate` runs it with sampling; then the same through
// decode_greedy (argmax on the device), as greedy generation runs it; then sampling with the chain on the host
// (logits copied back) and on the device (decode_sample). Not a test; prints six lines per model.
// Usage: cuda_decode_speed [PRESET [TYPE [N_TOKENS]]]   (default qwen2.5-0.5b Q4_K_M 128)
// ORCD_BENCH_ACTIVATIONS="int8 f32" (default): one backend per activation mode (CudaOptions::activations).
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <sstream>
#include <vector>
#include <filesystem>
#include <random>
#include <string>

#include "backend/cuda/cuda_backend.h"
#include "device/cuda_device.h"
#include "model/model.h"
#include "synth/synth.h"

int main(int argc, char** argv) {
    using namespace orcd;
    if (device::cuda_device_count() == 0) {
        std::printf("SKIP: no CUDA device\n");
        return 0;
    }
    const std::string preset = argc > 1 ? argv[1] : "qwen2.5-0.5b";
    const std::string type = argc > 2 ? argv[2] : "Q4_K_M";
    const int n = argc > 3 ? std::stoi(argv[3]) : 128;
    const auto path = std::filesystem::temp_directory_path() / ("orcd-decode-" + preset + "-" + type + ".gguf");
    synth::Options o;
    o.preset = preset;
    o.type = synth::parse_file_type(type);
    // The reference models' vocabulary sizes (the LM head is the largest matrix of the small model).
    o.n_vocab = preset.starts_with("qwen") ? 151936u : preset.starts_with("phi3") ? 32064u : 32000u;
    synth::write_model(o, path);
    std::vector<std::string> modes;
    {
        const char* env = std::getenv("ORCD_BENCH_ACTIVATIONS");
        std::istringstream in(env && *env ? env : "int8 f32");
        for (std::string a; in >> a;) modes.push_back(a);
    }
    for (const std::string& mode : modes) {
        model::Model m = model::open_model(path);
        const uint64_t weight_bytes = m.weights.total_bytes();
        const auto t0 = std::chrono::steady_clock::now();
        auto be = backend::cuda::make_cuda_backend(
            std::move(m),
            {.activations = mode == "f32" ? backend::cuda::Activations::F32 : backend::cuda::Activations::Int8});
        const double load_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        // ORCD_BENCH_FUSED_LIMITS="a b ...": one measurement per ORCD_FUSED_MAX_BYTES value (matrices above it take the
        // staged-tile kernel and unfused element-wise ops; "-" = unset), each on a fresh sequence (a fresh graph).
        std::vector<std::string> limits;
        if (const char* env = std::getenv("ORCD_BENCH_FUSED_LIMITS")) {
            std::istringstream in(env);
            for (std::string l; in >> l;) limits.push_back(l);
        }
        if (limits.empty()) limits.push_back("");
        for (const std::string& limit : limits) {
            if (!limit.empty()) {
                if (limit == "-") {
                    unsetenv("ORCD_FUSED_MAX_BYTES");
                } else {
                    setenv("ORCD_FUSED_MAX_BYTES", limit.c_str(), 1);
                }
            }
            const std::string tag = " [" + mode + "]" + (limit.empty() ? "" : " [fused max " + limit + "]");
            auto seq = be->new_sequence({.n_ctx = static_cast<uint32_t>(n + 16), .kv_type = backend::KvCacheType::F16});
            // Warm-up: the first step runs eagerly, the second captures the graph.
            seq->decode(1);
            seq->decode(2);
            const auto t1 = std::chrono::steady_clock::now();
            for (int i = 0; i < n; ++i) seq->decode(static_cast<backend::TokenId>(3 + i % 100));
            const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t1).count();
            std::printf(
                "%-14s %-7s weights %8.1f MiB  load %5.2f s  decode %4d tokens: %8.1f tok/s  %7.1f us/token  "
                "%6.0f GB/s%s\n",
                preset.c_str(), type.c_str(), weight_bytes / 1048576.0, load_s, n, n / s, s / n * 1e6,
                weight_bytes * (n / s) / 1e9, tag.c_str());
            // Greedy decoding as the generator runs it without penalties: argmax on the device, one token copied back.
            auto greedy =
                be->new_sequence({.n_ctx = static_cast<uint32_t>(n + 16), .kv_type = backend::KvCacheType::F16});
            backend::TokenId tok = greedy->decode_greedy(1);
            tok = greedy->decode_greedy(tok);
            const auto t2 = std::chrono::steady_clock::now();
            for (int i = 0; i < n; ++i) tok = greedy->decode_greedy(tok);
            const double g = std::chrono::duration<double>(std::chrono::steady_clock::now() - t2).count();
            std::printf("%-14s %-7s decode_greedy %4d tokens: %8.1f tok/s  %7.1f us/token  %6.0f GB/s%s\n",
                        preset.c_str(), type.c_str(), n, n / g, g / n * 1e6, weight_bytes * (n / g) / 1e9, tag.c_str());
            // Sampling as the generator runs it: the chain on the host after copying the logits (decode + the host
            // chain), then on the device (decode_sample: only the id comes back). Same seeded draws for both.
            struct Config {
                const char* name;
                backend::SampleStep step;
            };
            const Config configs[] = {
                {"t0.8 k40 p0.95 min_p0.05",
                 {.temperature = 0.8f, .top_k = 40, .top_p = 0.95f, .min_p = 0.05f, .penalty_window = {}}},
                {"t0.8 k0 p0.95 min_p0",
                 {.temperature = 0.8f, .top_k = 0, .top_p = 0.95f, .min_p = 0.f, .penalty_window = {}}},
            };
            for (const Config& c : configs) {
                for (bool on_device : {false, true}) {
                    auto seq_s = be->new_sequence(
                        {.n_ctx = static_cast<uint32_t>(n + 16), .kv_type = backend::KvCacheType::F16});
                    std::mt19937_64 rng(1234);
                    backend::SampleStep st = c.step;
                    auto next = [&](backend::TokenId t) {
                        st.u = static_cast<double>(rng() >> 11) * 0x1.0p-53;
                        return on_device ? seq_s->decode_sample(t, st) : backend::sample_on_host(seq_s->decode(t), st);
                    };
                    backend::TokenId t = next(1);
                    t = next(t);
                    const auto t3 = std::chrono::steady_clock::now();
                    for (int i = 0; i < n; ++i) t = next(t);
                    const double d = std::chrono::duration<double>(std::chrono::steady_clock::now() - t3).count();
                    std::printf("%-14s %-7s sample %-26s %-6s %4d tokens: %8.1f tok/s  %7.1f us/token%s\n",
                                preset.c_str(), type.c_str(), c.name, on_device ? "device" : "host", n, n / d,
                                d / n * 1e6, tag.c_str());
                }
            }
        }
    }
    std::filesystem::remove(path);
    return 0;
}
