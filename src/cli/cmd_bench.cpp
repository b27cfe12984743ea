// `orcd bench`: llama-bench style prefill (pp) and decode (tg) throughput of one model on one device, with the load
// time, the device memory the backend holds, and decode's effective bandwidth next to the device's copy bandwidth
// measured in the same run. The measuring itself is engine::run_bench (engine/bench.h); this file parses, loads,
// measures the copy bandwidth and prints. With --batch, the batched decode (engine::run_batch_bench) instead of the
// single-sequence pp/tg.
#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "cli/commands.h"
#include "cli/interrupt.h"
#include "cli/options.h"
#include "common/error.h"
#include "engine/bench.h"
#include "engine/create_backend.h"
#include "gguf/file_type.h"
#include "device/bandwidth.h"
#include "device/cuda_device.h"
#include "loader/plan.h"
#include "model/model.h"

namespace orcd::cli {

namespace {

struct BenchArgs {
    std::string model;
    engine::BenchOptions bench;
    BackendArgs backend;
    bool json = false;
    bool h2d = false;
    std::vector<uint32_t> batch;  // --batch: batch sizes (llama-batched-bench style)
};

// The copy bandwidth decode is compared with: device-to-device on CUDA, memcpy on the CPU.
struct CopyBandwidth {
    std::string kind;  // "device-to-device" | "memcpy"
    std::optional<double> gbps;
    std::string device_name;
    std::string note;  // why there is no figure
};

CopyBandwidth measure_copy_bandwidth(engine::Device device, int gpu) {
    CopyBandwidth b;
    if (device == engine::Device::Cpu) {
        b.kind = "memcpy";
        b.device_name = "host";
        b.gbps = device::measure_memcpy_gbps(256ull << 20, 5);
        return b;
    }
    b.kind = "device-to-device";
    try {
        // A Device of its own: its allocations do not enter the backend's memory report.
        auto dev = device::open_cuda_device(gpu);
        const device::DeviceInfo info = dev->info();
        b.device_name = info.name;
        // Two buffers; at most a quarter of what is free each, so that a model filling the GPU still leaves room.
        const uint64_t bytes = std::min<uint64_t>(256ull << 20, info.free_bytes / 4 / 256 * 256);
        if (bytes < (16ull << 20)) {
            b.note = fmt::format("n/a: only {} free on the device", loader::format_bytes(info.free_bytes));
            return b;
        }
        b.gbps = device::measure_d2d_gbps(*dev, bytes, 5, 4);
    } catch (const Error& e) {
        b.note = fmt::format("n/a: {}", e.what());
    }
    return b;
}

nlohmann::json stat_json(const engine::BenchStat& s) {
    return {{"tokens_per_s_mean", s.mean}, {"tokens_per_s_stddev", s.stddev}, {"samples", s.samples}};
}

uint64_t parameter_count(const model::ModelWeights& w) {
    uint64_t n = 0;
    for (const model::TensorRef& t : w.tensors) {
        uint64_t e = 1;
        for (uint64_t d : t.shape) e *= d;
        n += e;
    }
    return n;
}

// `orcd bench --h2d`: the copy ceilings alone, no model — pinned and pageable host-to-device (what the loader's
// transfer is measured against) and device-to-device (what decode's effective bandwidth is measured against).
int run_copy_ceilings(const BenchArgs& a) {
    auto dev = device::open_cuda_device(a.backend.gpu);
    const device::DeviceInfo info = dev->info();
    const device::H2dBandwidth h2d = device::measure_h2d_bandwidth(*dev, 256ull << 20, 5, /*pageable=*/true);
    const uint64_t d2d_bytes = std::min<uint64_t>(256ull << 20, info.free_bytes / 4 / 256 * 256);
    const double d2d = device::measure_d2d_gbps(*dev, d2d_bytes, 5, 4);
    if (a.json) {
        nlohmann::json j{{"gpu", a.backend.gpu},
                         {"device_name", info.name},
                         {"h2d_pinned_gbps", h2d.pinned_gbps},
                         {"h2d_pageable_gbps", h2d.pageable_gbps},
                         {"h2d_bytes", h2d.bytes},
                         {"d2d_gbps", d2d},
                         {"d2d_bytes", d2d_bytes},
                         {"d2d_counts", "read + write"}};
        fmt::print("{}\n", j.dump());
        return 0;
    }
    fmt::print(
        "GPU {} ({})\nhost-to-device  pinned {:.2f} GB/s, pageable {:.2f} GB/s ({} per copy, best of 5)\n"
        "device-to-device  {:.1f} GB/s (read + write, {} per copy)\n",
        a.backend.gpu, info.name, h2d.pinned_gbps, h2d.pageable_gbps, loader::format_bytes(h2d.bytes), d2d,
        loader::format_bytes(d2d_bytes));
    return 0;
}

// `--batch`: per batch size, aggregate prompt and decode tokens/s and each sequence's own decode tokens/s.
int print_batch_bench(const BenchArgs& a, const model::Config& config, backend::Backend& backend, double load_s,
                      engine::Device device) {
    const std::vector<engine::BatchBenchPoint> pts = engine::run_batch_bench(backend, a.bench, a.batch);
    if (a.json) {
        nlohmann::json j;
        j["model"] = a.model;
        j["model_name"] = config.model_name;
        j["arch"] = config.arch_name;
        j["device"] = engine::device_name(device);
        if (device == engine::Device::Cuda) j["gpu"] = a.backend.gpu;
        if (device == engine::Device::Cpu) j["threads"] = a.backend.threads;
        j["n_prompt"] = a.bench.n_prompt;
        j["n_gen"] = a.bench.n_gen;
        j["depth"] = a.bench.depth;
        j["reps"] = a.bench.reps;
        j["load_s"] = load_s;
        nlohmann::json rows = nlohmann::json::array();
        for (const engine::BatchBenchPoint& p : pts) {
            nlohmann::json row{{"batch", p.batch},
                               {"kv_pages", p.pool_pages},
                               {"vram",
                                {{"weights", p.memory.weights},
                                 {"kv_cache", p.memory.kv_cache},
                                 {"workspace", p.memory.workspace},
                                 {"total", p.memory.total()}}}};
            if (a.bench.n_prompt > 0) row["pp"] = stat_json(p.pp);
            if (a.bench.n_gen > 0) {
                row["tg"] = stat_json(p.tg);
                row["tg_per_sequence_tokens_per_s"] = p.tg_per_sequence;
            }
            rows.push_back(std::move(row));
        }
        j["batch"] = std::move(rows);
        fmt::print("{}\n", j.dump(2));
        return 0;
    }
    fmt::print("model   {} ({}), {} {}, load {:.2f} s\n", std::filesystem::path(a.model).filename().string(),
               config.arch_name, engine::device_name(device),
               device == engine::Device::Cuda ? fmt::format("GPU {}", a.backend.gpu)
                                              : fmt::format("{} threads", a.backend.threads),
               load_s);
    fmt::print("\nB sequences x (prompt {} tokens after depth {}, then {} decode steps of all B together)\n\n",
               a.bench.n_prompt, a.bench.depth, a.bench.n_gen);
    fmt::print("| {:>5} | {:>20} | {:>20} | {:>14} | {:>12} |\n| {:->5} | {:->20} | {:->20} | {:->14} | {:->12} |\n",
               "B", "pp t/s (all)", "tg t/s (all)", "tg t/s (each)", "KV cache", "", "", "", "", "");
    for (const engine::BatchBenchPoint& p : pts) {
        fmt::print("| {:>5} | {:>20} | {:>20} | {:>14.2f} | {:>12} |\n", p.batch,
                   a.bench.n_prompt > 0 ? fmt::format("{:.2f} ± {:.2f}", p.pp.mean, p.pp.stddev) : "-",
                   a.bench.n_gen > 0 ? fmt::format("{:.2f} ± {:.2f}", p.tg.mean, p.tg.stddev) : "-", p.tg_per_sequence,
                   loader::format_bytes(p.memory.kv_cache));
    }
    fmt::print("\n{} warm-up + {} repetitions per batch size\n", 1, a.bench.reps);
    return 0;
}

int run_bench(const BenchArgs& a) {
    const engine::Device device = a.backend.parsed_device();

    const auto t_open = std::chrono::steady_clock::now();
    model::Model m = a.backend.open(a.model);
    // Checked before the load: a context error should not cost a multi-second load.
    engine::check_bench_options(a.bench, m.config.context_length);
    const std::shared_ptr<const gguf::File> file = m.file;  // keeps the mapping for the type mix below
    const model::Config config = m.config;
    const model::ModelWeights weights = m.weights;  // sizes and types, for the bytes one decode step reads
    auto backend = a.backend.create(std::move(m));
    const double load_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t_open).count();

    if (!a.batch.empty()) return print_batch_bench(a, config, *backend, load_s, device);
    const engine::BenchResult r = engine::run_bench(*backend, weights, a.bench);
    const CopyBandwidth copy = measure_copy_bandwidth(device, a.backend.gpu);
    const gguf::TypeMix mix = gguf::type_mix(*file);
    const double eff = r.effective_gbps();
    // Decode's share of the copy bandwidth; negative when there is none (no tg test, no copy figure).
    const double fraction = copy.gbps && *copy.gbps > 0 && a.bench.n_gen > 0 ? eff / *copy.gbps : -1.0;
    const uint32_t tg_depth = a.bench.depth + a.bench.n_prompt;

    if (a.json) {
        nlohmann::json j;
        j["model"] = a.model;
        j["model_name"] = config.model_name;
        j["arch"] = config.arch_name;
        j["model_bytes"] = weights.total_bytes();
        j["params"] = parameter_count(weights);
        nlohmann::json types = nlohmann::json::object();
        for (const auto& [type, bytes] : mix.bytes_by_type) types[std::string(gguf::type_name(type))] = bytes;
        j["type"] = {{"kind", mix.kind()}, {"declared", mix.declared}, {"mix", mix.mix}, {"bytes_by_type", types}};
        j["shape"] = {{"n_layers", config.n_layers},
                      {"n_embd", config.n_embd},
                      {"n_ff", config.n_ff},
                      {"n_heads", config.n_heads},
                      {"n_kv_heads", config.n_kv_heads},
                      {"head_dim", config.head_dim},
                      {"n_vocab", config.n_vocab},
                      {"context_length", config.context_length}};
        j["device"] = engine::device_name(device);
        j["device_name"] = copy.device_name;
        if (device == engine::Device::Cuda) j["gpu"] = a.backend.gpu;
        if (device == engine::Device::Cpu) j["threads"] = a.backend.threads;
        j["n_prompt"] = a.bench.n_prompt;
        j["n_gen"] = a.bench.n_gen;
        j["depth"] = a.bench.depth;
        j["tg_depth"] = tg_depth;
        j["reps"] = a.bench.reps;
        // In f16 mode the matrices are read as f16 (2 bytes per weight), but decode_bytes_per_token counts the
        // file's types: its effective bandwidth is then a lower bound.
        j["weights_mode"] = a.backend.weights;
        j["n_ctx"] = r.n_ctx;
        j["load_s"] = load_s;
        if (a.bench.n_prompt > 0) j["pp"] = stat_json(r.pp);
        if (a.bench.n_gen > 0) j["tg"] = stat_json(r.tg);
        j["vram"] = {{"weights", r.memory.weights},
                     {"kv_cache", r.memory.kv_cache},
                     {"workspace", r.memory.workspace},
                     {"total", r.memory.total()}};
        j["decode_bytes_per_token"] = {
            {"weights", r.weight_bytes_per_token}, {"kv_cache", r.kv_bytes_per_token}, {"total", r.bytes_per_token()}};
        j["effective_bandwidth_gbps"] = eff;
        j["copy_bandwidth"] = {{"kind", copy.kind}, {"gbps", copy.gbps ? nlohmann::json(*copy.gbps) : nullptr}};
        if (!copy.note.empty()) j["copy_bandwidth"]["note"] = copy.note;
        j["effective_fraction_of_copy"] = fraction >= 0 ? nlohmann::json(fraction) : nullptr;
        fmt::print("{}\n", j.dump(2));
        return 0;
    }

    const double params = static_cast<double>(parameter_count(weights));
    fmt::print(
        "model   {} ({}, {}, {}, {})\n", std::filesystem::path(a.model).filename().string(), config.arch_name,
        mix.summary(),
        params >= 1e9 ? fmt::format("{:.2f} B params", params / 1e9) : fmt::format("{:.2f} M params", params / 1e6),
        loader::format_bytes(weights.total_bytes()));
    fmt::print("device  {}{}{}, load {:.2f} s (open -> resident)\n", engine::device_name(device),
               device == engine::Device::Cuda ? fmt::format(" {}", a.backend.gpu) : std::string(),
               copy.device_name.empty() ? std::string() : fmt::format(" ({})", copy.device_name), load_s);
    fmt::print("\n| {:<18} | {:>22} |\n| {:-<18} | {:->22} |\n", "test", "t/s", "", "");
    if (a.bench.n_prompt > 0) {
        fmt::print("| {:<18} | {:>22} |\n", fmt::format("pp{} @ d{}", a.bench.n_prompt, a.bench.depth),
                   fmt::format("{:.2f} ± {:.2f}", r.pp.mean, r.pp.stddev));
    }
    if (a.bench.n_gen > 0) {
        fmt::print("| {:<18} | {:>22} |\n", fmt::format("tg{} @ d{}", a.bench.n_gen, tg_depth),
                   fmt::format("{:.2f} ± {:.2f}", r.tg.mean, r.tg.stddev));
    }
    fmt::print("\n{} warm-up + {} repetitions; context {} tokens\n", 1, a.bench.reps, r.n_ctx);
    fmt::print("vram    weights {} + KV cache {} + workspace {} = {}\n", loader::format_bytes(r.memory.weights),
               loader::format_bytes(r.memory.kv_cache), loader::format_bytes(r.memory.workspace),
               loader::format_bytes(r.memory.total()));
    const std::string copy_text =
        copy.gbps ? fmt::format("{:.1f} GB/s", *copy.gbps) : (copy.note.empty() ? std::string("n/a") : copy.note);
    if (a.bench.n_gen > 0) {
        fmt::print("decode  {} read per token (weights {} + KV cache {}) x {:.2f} tok/s = {:.1f} GB/s effective\n",
                   loader::format_bytes(static_cast<uint64_t>(r.bytes_per_token())),
                   loader::format_bytes(r.weight_bytes_per_token),
                   loader::format_bytes(static_cast<uint64_t>(r.kv_bytes_per_token)), r.tg.mean, eff);
    }
    fmt::print("copy    {} bandwidth {}{}\n", copy.kind, copy_text,
               fraction >= 0 ? fmt::format(" (decode reaches {:.0f}%)", fraction * 100) : std::string());
    return 0;
}

}  // namespace

void add_bench(CLI::App& app) {
    auto a = std::make_shared<BenchArgs>();
    auto* cmd = app.add_subcommand(
        "bench", "Measure prefill (pp) and decode (tg) tokens/s, load time, VRAM and decode's effective bandwidth");
    add_model_option(cmd, a->model, "GGUF model file (required unless --h2d)");
    cmd->add_flag("--h2d", a->h2d,
                  "Only measure the copy ceilings of --gpu: pinned/pageable host-to-device and device-to-device");
    cmd->add_option("-p,--n-prompt", a->bench.n_prompt, "prompt tokens prefilled per repetition (0: no pp test)")
        ->capture_default_str();
    cmd->add_option("-n,--n-gen", a->bench.n_gen, "tokens decoded per repetition, after the prompt (0: no tg test)")
        ->capture_default_str();
    cmd->add_option("-r,--repetitions", a->bench.reps, "timed repetitions (after one warm-up)")->capture_default_str();
    cmd->add_option("-d,--n-depth", a->bench.depth, "tokens in the cache before the prompt (prefilled, not timed)")
        ->capture_default_str();
    add_backend_options(cmd, a->backend);
    cmd->add_option("--batch", a->batch,
                    "batch sizes, e.g. 1,8,16,64: B sequences prefill -p tokens each, then -n decode steps of all B "
                    "together (aggregate and per-sequence tokens/s, llama-batched-bench style)")
        ->delimiter(',');
    cmd->add_flag("--json", a->json, "Print one JSON object with every number");
    cmd->callback([a] {
        if (!a->h2d && a->model.empty()) {
            throw Error(ErrorCode::InvalidArgument, "orcd bench: -m MODEL is required (or --h2d for copy ceilings)");
        }
        if (a->h2d && engine::parse_device(a->backend.device) != engine::Device::Cuda) {
            throw Error(ErrorCode::InvalidArgument, "orcd bench --h2d measures a GPU: it needs --device cuda");
        }
        // Ctrl-C stops the benchmark before its next repetition and exits 130 without figures (a cut-short run is
        // not a sample worth printing); a second press exits at once, in the middle of a load or a repetition.
        InterruptGuard interrupts(/*announce=*/true);
        interrupts.begin_work();
        a->bench.cancel = &interrupts.cancel_flag();
        int rc = 0;
        try {
            rc = a->h2d ? run_copy_ceilings(*a) : run_bench(*a);
        } catch (const Error& e) {
            if (e.code() != ErrorCode::Cancelled) throw;
            fmt::print(stderr, "benchmark interrupted: no figures\n");
            rc = 130;
        }
        interrupts.end_work();
        if (rc != 0) throw CLI::RuntimeError(rc);
    });
}

}  // namespace orcd::cli
