// Decode tokens/s of the CUDA backend on a synth model of a real shape (random weights, llama.cpp's type mix), next
// to the weight bytes read per token: effective bandwidth = bytes x tokens/s. Each step is a full decode (graph
// replay + the logits copied to the host), as `orcd generate` runs it with sampling; then the same through
// decode_greedy (argmax on the device), as greedy generation runs it; then sampling with the chain on the host
// (logits copied back) and on the device (decode_sample). Then the device sampler's share of a batched decode step
// (issue 16: at most 5 %): Backend::step at B = 1 and B = 16, each step timed three ways in turn at the same
// positions (Want::Argmax, the step without the sampler; Want::Sample with the OpenAI default, temperature 1 over
// the full vocabulary; Want::Sample with the engine default), one "sampler share" line per B and parameter set.
// Not a test.
// Usage: cuda_decode_speed [PRESET [TYPE [N_TOKENS]]]   (default qwen2.5-0.5b Q4_K_M 128)
// ORCD_BENCH_ACTIVATIONS="int8 f32" (default): one backend per activation mode (CudaOptions::activations).
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "backend/cuda/cuda_backend.h"
#include "device/cuda_device.h"
#include "model/model.h"
#include "synth/synth.h"

namespace {

using namespace orcd;

// The device sampler's share of a decode step at batch size B: B sequences with a prompt of kPrompt tokens in one
// pool, then n decode steps; each step runs three times at the same positions with the same tokens (each run rewrites
// the same KV entries, so all three see the same cache), once per want, in turn, so that clock and thermal drift
// fall on all three alike. Every step() returns only after its picks are on the host. The share is the sampled
// step's extra time over the argmax step, relative to the sampled step (argmax is the cheapest pick the step makes,
// a single reduction kernel per row, so the share slightly understates the sampler's whole cost).
void sampler_share(backend::Backend& be, const std::string& label, int B, int n) {
    constexpr uint32_t kPage = 16;
    constexpr int kPrompt = 32;
    const uint32_t pages_per_seq = (kPrompt + n + kPage - 1) / kPage;
    auto pool = be.new_kv_pool({.num_pages = pages_per_seq * static_cast<uint32_t>(B), .page_size = kPage});
    std::vector<std::vector<uint32_t>> pages(static_cast<size_t>(B));
    for (int b = 0; b < B; ++b) {
        for (uint32_t p = 0; p < pages_per_seq; ++p) pages[b].push_back(static_cast<uint32_t>(b) * pages_per_seq + p);
    }
    std::vector<backend::BatchResult> results(static_cast<size_t>(B));
    std::vector<backend::BatchEntry> batch(static_cast<size_t>(B));
    // The prompts: distinct tokens per sequence.
    std::vector<std::vector<backend::TokenId>> prompts(static_cast<size_t>(B));
    for (int b = 0; b < B; ++b) {
        for (int i = 0; i < kPrompt; ++i)
            prompts[b].push_back(static_cast<backend::TokenId>(5 + (b * 131 + i * 7) % 1000));
        backend::BatchEntry& e = batch[b];
        e.tokens = prompts[b];
        e.first_position = 0;
        e.pages = pages[b];
        e.phase = backend::Phase::Prompt;
        e.want = backend::Want::Nothing;
    }
    be.step(*pool, batch, results);

    struct Mode {
        const char* name;
        backend::Want want;
        backend::SampleStep step;
    };
    const Mode modes[] = {
        {"argmax", backend::Want::Argmax, {}},
        {"openai t1 (full vocab)",
         backend::Want::Sample,
         {.temperature = 1.f, .top_k = 0, .top_p = 1.f, .min_p = 0.f, .penalty_window = {}}},
        {"engine t0.8 k40 p0.95 minp0.05",
         backend::Want::Sample,
         {.temperature = 0.8f, .top_k = 40, .top_p = 0.95f, .min_p = 0.05f, .penalty_window = {}}},
    };
    constexpr size_t kModes = sizeof(modes) / sizeof(modes[0]);
    std::vector<double> seconds(kModes, 0.0);
    std::vector<backend::TokenId> tokens(static_cast<size_t>(B));
    std::mt19937_64 rng(99);
    // Two warm-up steps (the first of a batch size runs eagerly, the second captures its graph), then n timed ones.
    for (int i = -2; i < n; ++i) {
        const int pos = kPrompt + std::max(i, 0);
        for (int b = 0; b < B; ++b) tokens[b] = static_cast<backend::TokenId>(3 + (b * 17 + pos) % 100);
        for (size_t m = 0; m < kModes; ++m) {
            for (int b = 0; b < B; ++b) {
                backend::SampleStep st = modes[m].step;
                st.u = static_cast<double>(rng() >> 11) * 0x1.0p-53;
                backend::BatchEntry& e = batch[b];
                e.tokens = std::span(&tokens[b], 1);
                e.first_position = static_cast<uint32_t>(pos);
                e.phase = backend::Phase::Generated;
                e.want = modes[m].want;
                e.sample = st;
            }
            const auto t0 = std::chrono::steady_clock::now();
            be.step(*pool, batch, results);
            const double d = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
            if (i >= 0) seconds[m] += d;
        }
    }
    const double base = seconds[0] / n * 1e6;
    for (size_t m = 1; m < kModes; ++m) {
        const double us = seconds[m] / n * 1e6;
        std::printf(
            "sampler share %-30s B=%-2d %s: step with device sampling %8.1f us, with argmax %8.1f us -> sampler "
            "%7.1f us = %5.1f %% of the sampled step (goal <= 5 %%)\n",
            modes[m].name, B, label.c_str(), us, base, us - base, 100.0 * (us - base) / us);
    }
}

}  // namespace

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
                {"t1 k0 p1 min_p0 (openai)",
                 {.temperature = 1.f, .top_k = 0, .top_p = 1.f, .min_p = 0.f, .penalty_window = {}}},
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
            const std::string label = preset + " " + type + tag;
            for (int B : {1, 16}) sampler_share(*be, label, B, n);
        }
    }
    std::filesystem::remove(path);
    return 0;
}
