// Prefill tokens/s of the CUDA backend on a synth model of a real shape (random weights, llama.cpp's type mix), as
// llama-bench measures it: pp512 (512 prompt tokens into an empty cache) and pp4096 at depth 4096 (4096 more tokens
// after 4096 already in the cache), each a full prefill call (logits of the last token to the host). Also the
// token-by-token prefill it replaces ("before"), and the `--weights f16` mode: decode tok/s and the VRAM it takes.
// With ORCD_PREFILL_PROFILE=1 it prints the device time per phase (dequant / GEMM / attention / other).
// Not a test. Usage: cuda_prefill_speed [PRESET [TYPE]]   (default qwen2.5-0.5b Q4_K_M)
#include <cuda_runtime_api.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include "backend/cuda/cuda_backend.h"
#include "backend/cuda/prefill_step.h"
#include "device/cuda_device.h"
#include "model/model.h"
#include "synth/synth.h"

using namespace orcd;
using Clock = std::chrono::steady_clock;

namespace {

double seconds_since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

std::vector<backend::TokenId> tokens(size_t n, uint32_t n_vocab, uint32_t salt) {
    std::vector<backend::TokenId> t(n);
    for (size_t i = 0; i < n; ++i) t[i] = static_cast<backend::TokenId>((i * 7919 + salt * 104729 + 13) % n_vocab);
    return t;
}

uint64_t used_vram() {
    size_t free_b = 0, total = 0;
    cudaMemGetInfo(&free_b, &total);
    return total - free_b;
}

void print_phases(const char* what, int runs) {
    const backend::cuda::PrefillPhaseTimes p = backend::cuda::prefill_phase_times();
    if (p.tokens == 0) return;
    const double total = p.dequant + p.gemm + p.attention + p.other;
    std::printf(
        "  phases %-22s per run: dequant %7.2f ms  gemm %7.2f ms  attention %7.2f ms  other %6.2f ms  "
        "(sum %7.2f ms)\n",
        what, p.dequant / runs, p.gemm / runs, p.attention / runs, p.other / runs, total / runs);
    backend::cuda::reset_prefill_phase_times();
}

// Best of `reps` timed prefills of n tokens after `depth` untimed ones, in tokens/s.
double prefill_rate(backend::Backend& be, size_t depth, size_t n, int reps, const char* label) {
    const uint32_t V = be.n_vocab();
    auto seq = be.new_sequence({.n_ctx = static_cast<uint32_t>(depth + n + 16), .kv_type = backend::KvCacheType::F16});
    const uint64_t before = used_vram();
    seq->prefill(tokens(std::min<size_t>(n, 512), V, 99));  // warm-up: workspace, cuBLAS heuristics
    std::printf("  %-22s prefill workspace + cuBLAS: %6.0f MiB\n", label, (used_vram() - before) / 1048576.0);
    double best = 1e30;
    backend::cuda::reset_prefill_phase_times();
    for (int r = 0; r < reps; ++r) {
        seq->reset();
        if (depth) seq->prefill(tokens(depth, V, 1000 + r));
        if (r == 0) backend::cuda::reset_prefill_phase_times();
        const auto t = Clock::now();
        seq->prefill(tokens(n, V, static_cast<uint32_t>(r)));
        best = std::min(best, seconds_since(t));
        if (r == 0) print_phases(label, 1);  // (only the first run's timed call: depth prefills excluded)
    }
    backend::cuda::reset_prefill_phase_times();
    return static_cast<double>(n) / best;
}

double decode_rate(backend::Backend& be, int n) {
    auto seq = be.new_sequence({.n_ctx = static_cast<uint32_t>(n + 16), .kv_type = backend::KvCacheType::F16});
    seq->decode(1);
    seq->decode(2);
    const auto t = Clock::now();
    for (int i = 0; i < n; ++i) seq->decode(static_cast<backend::TokenId>(3 + i % 100));
    return n / seconds_since(t);
}

}  // namespace

int main(int argc, char** argv) {
    if (device::cuda_device_count() == 0) {
        std::printf("SKIP: no CUDA device\n");
        return 0;
    }
    const std::string preset = argc > 1 ? argv[1] : "qwen2.5-0.5b";
    const std::string type = argc > 2 ? argv[2] : "Q4_K_M";
    const bool quick = std::getenv("ORCD_BENCH_QUICK") != nullptr;  // prefill numbers only
    const auto path = std::filesystem::temp_directory_path() / ("orcd-prefill-" + preset + "-" + type + ".gguf");
    synth::Options o;
    o.preset = preset;
    o.type = synth::parse_file_type(type);
    o.n_vocab = preset.starts_with("qwen") ? 151936u : preset.starts_with("phi3") ? 32064u : 32000u;
    o.context_length = 8192 + 64;  // room for pp4096 at depth 4096 (llama-bench ignores the trained context too)
    if (!std::filesystem::exists(path)) synth::write_model(o, path);
    std::printf("%s %s (micro-batch %u)\n", preset.c_str(), type.c_str(), backend::cuda::prefill_ubatch());

    const uint64_t vram0 = used_vram();
    auto be = backend::cuda::make_cuda_backend(model::open_model(path));
    const uint64_t vram_q = used_vram() - vram0;
    const double pp512 = prefill_rate(*be, 0, 512, 5, "pp512");
    const double pp4096_d = prefill_rate(*be, 4096, 4096, 2, "pp4096@d4096");
    std::printf("  quantized: pp512 %9.0f tok/s   pp4096@d4096 %9.0f tok/s\n", pp512, pp4096_d);
    if (quick) return 0;
    const double pp4096 = prefill_rate(*be, 0, 4096, 2, "pp4096");
    std::printf("  quantized: pp4096 (empty cache) %9.0f tok/s\n", pp4096);
    const double dec_q = decode_rate(*be, 128);
    be.reset();
    {
        auto before = backend::cuda::make_cuda_backend(model::open_model(path), {.batched_prefill = false});
        auto seq = before->new_sequence({.n_ctx = 256, .kv_type = backend::KvCacheType::F16});
        seq->prefill(tokens(8, before->n_vocab(), 5));
        seq->reset();
        const auto t = Clock::now();
        seq->prefill(tokens(128, before->n_vocab(), 6));
        std::printf("  before (token-by-token prefill): pp128 %9.0f tok/s\n", 128 / seconds_since(t));
    }
    const uint64_t vram1 = used_vram();
    auto f16 = backend::cuda::make_cuda_backend(model::open_model(path), {.weights = backend::cuda::WeightsMode::F16});
    const uint64_t vram_f = used_vram() - vram1;
    const double dec_f = decode_rate(*f16, 128);
    const double pp512_f = prefill_rate(*f16, 0, 512, 5, "pp512 (--weights f16)");
    std::printf(
        "  --weights f16: VRAM after load %7.0f MiB (quantized: %7.0f MiB); decode %7.1f tok/s (quantized "
        "%7.1f); pp512 %9.0f tok/s\n",
        vram_f / 1048576.0, vram_q / 1048576.0, dec_f, dec_q, pp512_f);
    return 0;
}
