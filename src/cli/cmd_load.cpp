// `orcd load`: open a model, print its load plan, load it onto a device with progress, and report residency, VRAM
// and the transfer rate. Thin: everything it does goes through src/loader (the same path as the C API).
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <memory>
#include <optional>
#include <sstream>
#include <string>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "cli/commands.h"
#include "cli/interrupt.h"
#include "cli/options.h"
#include "cli/load_progress.h"
#include "common/error.h"
#include "device/bandwidth.h"
#include "device/cuda_device.h"
#include "device/host_device.h"
#include "engine/create_backend.h"
#include "loader/loader.h"

namespace orcd::cli {

namespace {

using loader::format_bytes;

// Seconds since this process was started by the kernel (/proc/self/stat starttime, 10 ms resolution): "process start
// to resident" includes exec, dynamic linking and runtime initialisation, which a timer in main() would miss.
std::optional<double> seconds_since_process_start() {
    std::ifstream stat("/proc/self/stat"), up("/proc/uptime");
    std::string s;
    double uptime = 0;
    if (!std::getline(stat, s) || !(up >> uptime)) return std::nullopt;
    const auto rp = s.rfind(')');  // the command name may hold spaces; fields resume after ')'
    if (rp == std::string::npos) return std::nullopt;
    std::istringstream rest(s.substr(rp + 2));
    std::string field;
    for (int i = 3; i <= 22 && rest >> field; ++i) {
        if (i == 22) return uptime - std::stod(field) / static_cast<double>(sysconf(_SC_CLK_TCK));
    }
    return std::nullopt;
}

// Drops the file's pages from the page cache so the next read comes from the disk (cold-cache measurements).
void evict_page_cache(const std::string& path) {
    const int fd = ::open(path.c_str(), O_RDONLY);
    if (fd < 0) return;  // the load reports the real error
    (void)::fdatasync(fd);
    const int rc = ::posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
    ::close(fd);
    if (rc != 0) fmt::print(stderr, "warning: posix_fadvise(DONTNEED) on {} failed: {}\n", path, std::strerror(rc));
}

struct Args {
    std::string model;
    int gpu = 0;
    bool gpu_given = false;
    uint32_t ctx = 0;
    uint64_t chunk_mb = 256;
    uint32_t buffers = 2;
    uint32_t threads = 0;
    std::string gather = "mapping";
    std::string staging = "huge";
    bool verify = false;
    std::string vram_limit;
    std::string device = "cuda";
    std::string host_capacity = "64G";
    bool json = false;
    bool brief = false;
    bool bench_h2d = false;
    bool bench_register = false;
    bool direct = false;
    bool plain_stores = false;
    uint64_t dma_slice_mb = 0;
    uint64_t bench_mb = 256;
    bool evict = false;
};

nlohmann::json plan_json(const loader::Plan& p, const model::ModelWeights& w) {
    nlohmann::json tensors = nlohmann::json::array();
    for (size_t i = 0; i < p.tensors.size(); ++i) {
        tensors.push_back({{"name", w.tensors[i].name},
                           {"type", gguf::type_name(w.tensors[i].type)},
                           {"offset", p.tensors[i].offset},
                           {"bytes", p.tensors[i].bytes}});
    }
    return {{"tensors", std::move(tensors)},  {"n_ctx", p.n_ctx},
            {"n_batch", p.n_batch},           {"n_tensors", p.tensors.size()},
            {"tensor_bytes", p.tensor_bytes}, {"weight_bytes", p.weight_bytes},
            {"kv_bytes", p.kv_bytes},         {"workspace_bytes", p.workspace.total()},
            {"total_bytes", p.total_bytes}};
}

void run(const Args& a) {
    if (a.chunk_mb < 1) throw Error(ErrorCode::InvalidArgument, "--chunk-mb must be at least 1");
    if (a.buffers < 1) throw Error(ErrorCode::InvalidArgument, "--buffers must be at least 1");
    const auto t_start = std::chrono::steady_clock::now();
    nlohmann::json out;

    std::shared_ptr<device::Device> dev;
    if (engine::parse_device(a.device) == engine::Device::Cuda) {
        device::CudaDeviceOptions co;
        co.huge_page_staging = a.staging == "huge";
        dev = device::open_cuda_device(a.gpu, co);
    } else {
        if (a.gpu_given) throw Error(ErrorCode::InvalidArgument, "--gpu applies to --device cuda, not --device cpu");
        device::HostDeviceOptions o;
        o.capacity = parse_bytes(a.host_capacity, "--host-capacity");
        dev = std::make_shared<device::HostDevice>(o);
    }
    const device::DeviceInfo info = dev->info();
    if (!a.json) {
        fmt::print("device    {} {} ({}), {} free of {}\n", info.kind, info.index, info.name,
                   format_bytes(info.free_bytes), format_bytes(info.total_bytes));
    }

    if (a.bench_h2d) {
        const auto b = device::measure_h2d_bandwidth(*dev, a.bench_mb << 20, 5, true);
        if (a.json) {
            out["h2d"] = {{"bytes", b.bytes},
                          {"reps", b.reps},
                          {"pinned_gbps", b.pinned_gbps},
                          {"pageable_gbps", b.pageable_gbps}};
        } else {
            fmt::print("h2d       pinned {:.2f} GB/s, pageable {:.2f} GB/s ({} per copy, best of {})\n", b.pinned_gbps,
                       b.pageable_gbps, format_bytes(b.bytes), b.reps);
        }
    }

    if (a.evict) evict_page_cache(a.model);
    model::Model m = model::open_model(a.model);
    if (a.bench_register && !m.weights.tensors.empty()) {
        // The tensor data section of the mapping, whole pages: what a direct (no staging) transfer would register.
        const uint64_t page = static_cast<uint64_t>(sysconf(_SC_PAGESIZE));
        uint64_t lo = UINT64_MAX, hi = 0;
        for (const auto& t : m.weights.tensors) {
            lo = std::min(lo, t.file_offset);
            hi = std::max(hi, t.file_offset + t.n_bytes);
        }
        lo = lo / page * page;
        hi = std::min<uint64_t>((hi + page - 1) / page * page, m.file->size() / page * page);
        hi = std::min(hi, lo + (a.bench_mb << 20));  // --bench-mb bounds the registered range too
        const auto r = device::measure_registered_copy(*dev, m.file->bytes().data() + lo, hi - lo);
        const double gb = static_cast<double>(r.bytes) / 1e9;
        if (a.json) {
            out["registered_copy"] = {{"bytes", r.bytes},
                                      {"register_s", r.register_s},
                                      {"copy_s", r.copy_s},
                                      {"unregister_s", r.unregister_s},
                                      {"error", r.error},
                                      {"register_gbps", r.register_s > 0 ? gb / r.register_s : 0.0},
                                      {"copy_gbps", r.copy_s > 0 ? gb / r.copy_s : 0.0}};
        } else if (!r.error.empty()) {
            fmt::print("register  refused: {}\n", r.error);
        } else {
            fmt::print(
                "register  {} of the mapping: register {:.3f} s, copy {:.3f} s ({:.2f} GB/s), "
                "unregister {:.3f} s\n",
                format_bytes(r.bytes), r.register_s, r.copy_s, gb / r.copy_s, r.unregister_s);
        }
    }
    loader::LoadOptions o;
    o.plan.n_ctx = a.ctx;
    o.transfer.chunk_bytes = a.chunk_mb << 20;
    o.transfer.n_buffers = a.buffers;
    o.transfer.copy_threads = a.threads;
    o.transfer.gather = a.gather == "mapping" ? loader::GatherSource::Mapping : loader::GatherSource::Read;
    o.transfer.direct = a.direct;
    o.transfer.streaming_stores = !a.plain_stores;
    o.transfer.dma_slice_bytes = a.dma_slice_mb << 20;
    o.verify = a.verify;
    if (!a.vram_limit.empty()) o.vram_limit = parse_bytes(a.vram_limit, "--vram-limit");
    // Ctrl-C: the loader stops before its next chunk (and frees what it allocated); a second press exits at once.
    InterruptGuard interrupts(/*announce=*/true);
    interrupts.begin_work();
    o.cancel = &interrupts.cancel_flag();
    const loader::Plan plan = loader::make_plan(m, o.plan);
    if (!a.json) fmt::print("{}", loader::format_plan(plan, m, !a.brief));
    // `load` measures the transfer itself: no read-ahead step (--evict asks for a cold cache on purpose).
    LoadProgress progress(/*upload=*/true, {}, /*quiet=*/a.json);
    o.progress = progress.upload_callback();

    loader::LoadedModel lm = loader::load_model(std::move(m), dev, o);
    interrupts.end_work();
    const auto since_start = seconds_since_process_start();
    const double cmd_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t_start).count();

    const auto& ts = lm.transfer_stats();
    const auto& tm = lm.timings();
    const auto b = lm.breakdown();
    const bool resident = lm.resident();
    if (a.json) {
        out["model"] = {{"path", lm.model().file->path()},
                        {"architecture", lm.config().arch_name},
                        {"n_layers", lm.config().n_layers},
                        {"file_bytes", lm.model().file->size()}};
        out["device"] = {{"kind", info.kind},
                         {"index", info.index},
                         {"name", info.name},
                         {"total_bytes", info.total_bytes},
                         {"free_bytes_before", info.free_bytes},
                         {"free_bytes_after", lm.device_info().free_bytes}};
        out["plan"] = plan_json(lm.plan(), lm.weights());
        out["transfer"] = {{"bytes", ts.bytes},
                           {"seconds", ts.seconds},
                           {"gbps", ts.gbps()},
                           {"gather_seconds", ts.gather_seconds},
                           {"wait_seconds", ts.wait_seconds},
                           {"setup_seconds", ts.setup_seconds},
                           {"chunks", ts.chunks},
                           {"staging_bytes", ts.staging_bytes},
                           {"buffers", ts.n_buffers},
                           {"copy_threads", ts.copy_threads},
                           {"gather", loader::gather_source_name(ts.gather)},
                           {"gather_note", ts.gather_note},
                           {"staging", a.device == "cuda" ? a.staging : "host"},
                           {"direct", ts.direct},
                           {"direct_note", ts.direct_note},
                           {"streaming_stores", ts.streaming_stores},
                           {"dma_slice_bytes", a.dma_slice_mb << 20},
                           {"register_seconds", ts.register_seconds},
                           {"unregister_seconds", ts.unregister_seconds}};
        out["timings"] = {{"plan_s", tm.plan_s},         {"alloc_s", tm.alloc_s},
                          {"transfer_s", tm.transfer_s}, {"residency_s", tm.residency_s},
                          {"verify_s", tm.verify_s},     {"load_s", tm.total_s},
                          {"command_s", cmd_s}};
        if (since_start) out["timings"]["process_start_to_resident_s"] = *since_start;
        out["resident"] = resident;
        out["vram"] = {{"weights", b.weights},
                       {"kv_cache", b.kv_cache},
                       {"workspace", b.workspace},
                       {"total", b.total()},
                       {"weights_equal_plan", lm.vram_bytes() == lm.plan().weight_bytes}};
        if (lm.verify_report()) {
            out["verify"] = {{"ok", true},
                             {"tensors", lm.verify_report()->tensors},
                             {"bytes", lm.verify_report()->bytes},
                             {"seconds", lm.verify_report()->seconds}};
        }
        fmt::print("{}\n", out.dump(2));
        return;
    }
    fmt::print("resident  {} (every allocation checked: device memory, no host mapping)\n", resident ? "yes" : "NO");
    fmt::print("vram      weights {} ({} bytes, {} plan) + KV cache {} + workspace {} = {}\n", format_bytes(b.weights),
               b.weights, lm.vram_bytes() == lm.plan().weight_bytes ? "==" : "!=", format_bytes(b.kv_cache),
               format_bytes(b.workspace), format_bytes(b.total()));
    if (lm.verify_report()) {
        fmt::print("verify    ok: {} tensors, {} checksummed on the device in {:.3f} s\n", lm.verify_report()->tensors,
                   format_bytes(lm.verify_report()->bytes), lm.verify_report()->seconds);
    }
    fmt::print(
        "timings   plan {:.3f} s, alloc {:.3f} s, staging setup {:.3f} s, transfer {:.3f} s (gather {:.3f} s, "
        "waiting for DMA {:.3f} s), load {:.3f} s{}\n",
        tm.plan_s, tm.alloc_s, ts.setup_seconds, ts.seconds, ts.gather_seconds, ts.wait_seconds, tm.total_s,
        since_start ? fmt::format(", process start to resident {:.2f} s", *since_start) : std::string());
    fmt::print(
        "loaded {} bytes ({}) in {:.3f} s: {:.2f} GB/s ({} chunks of {}, {} buffers, {} threads, "
        "gather by {}{})\n",
        ts.bytes, format_bytes(ts.bytes), ts.seconds, ts.gbps(), ts.chunks, format_bytes(ts.staging_bytes),
        ts.n_buffers, ts.copy_threads, loader::gather_source_name(ts.gather),
        a.gather == "read" && ts.gather != loader::GatherSource::Read ? fmt::format(": {}", ts.gather_note)
                                                                      : std::string());
    if (a.direct) {
        fmt::print("direct    {}\n", ts.direct ? fmt::format("copied from the registered mapping (register {:.3f} s, "
                                                             "unregister {:.3f} s)",
                                                             ts.register_seconds, ts.unregister_seconds)
                                               : "staged instead: " + ts.direct_note);
    }
}

}  // namespace

void add_load(CLI::App& app) {
    auto* cmd = app.add_subcommand("load", "Load a GGUF model's weights onto a GPU: plan, transfer, residency, VRAM");
    auto a = std::make_shared<Args>();
    add_model_option_or_positional(cmd, a->model);
    auto* gpu_opt = add_device_options(
        cmd, a->device, a->gpu, "cuda (default, or $ORCD_DEVICE) or cpu (host memory stands in for VRAM: a dry run)");
    add_ctx_option(cmd, a->ctx, "Context to reserve the KV cache for (default: the model's context length)");
    cmd->add_option("--chunk-mb", a->chunk_mb, "Staging chunk size in MiB (default 256, minimum 1)");
    cmd->add_option("--buffers", a->buffers, "Pinned staging buffers in flight (default 2)");
    add_threads_option(cmd, a->threads, "Threads gathering each chunk from the file (default: all cores, up to 16)");
    cmd->add_option("--gather", a->gather,
                    "How chunks are gathered from the file: mapping (memcpy from the mmap, default) or read (pread)")
        ->check(CLI::IsMember({"read", "mapping"}));
    cmd->add_option("--staging", a->staging,
                    "Pinned staging memory: huge (huge pages + cudaHostRegister, default) or hostalloc (cudaHostAlloc)")
        ->check(CLI::IsMember({"huge", "hostalloc"}));
    cmd->add_flag("--plain-stores", a->plain_stores,
                  "Gather from the mapping with ordinary stores instead of the default non-temporal ones");
    cmd->add_option("--dma-slice-mb", a->dma_slice_mb,
                    "Queue each chunk's DMA in slices of this many MiB as they are gathered (default 0: whole chunk)");
    cmd->add_flag("--direct", a->direct,
                  "No staging: register the mapped file for DMA and copy from it in place (slow on the H100 VM; "
                  "falls back to staging)");
    cmd->add_flag("--verify", a->verify, "Checksum every tensor on the device against the file");
    cmd->add_option("--vram-limit", a->vram_limit, "Cap on the memory the load may use (bytes; K/M/G suffixes)");
    cmd->add_option("--host-capacity", a->host_capacity, "Capacity of the host device (default 64G)");
    cmd->add_flag("--json", a->json, "Print one JSON document instead of text");
    cmd->add_flag("--brief", a->brief, "Print the plan's totals only, not every tensor's placement");
    cmd->add_flag("--bench-h2d", a->bench_h2d, "First measure pinned and pageable host-to-device bandwidth");
    cmd->add_flag("--bench-register", a->bench_register,
                  "Measure cudaHostRegister of the file's mapped tensor data (at most --bench-mb MiB), one copy "
                  "from it, and unregistering");
    cmd->add_option("--bench-mb", a->bench_mb,
                    "Bytes per --bench-h2d copy (and --bench-register range) in MiB (default 256)");
    cmd->add_flag("--evict-page-cache", a->evict,
                  "Drop the file from the page cache first (posix_fadvise DONTNEED): a cold-cache load");
    cmd->callback([a, gpu_opt] {
        require_model(a->model);
        a->gpu_given = gpu_opt->count() > 0;
        try {
            run(*a);
        } catch (const Error& e) {
            if (a->json) {
                fmt::print(
                    "{}\n",
                    nlohmann::json{{"error", {{"code", error_code_name(e.code())}, {"message", e.what()}}}}.dump(2));
            }
            throw;  // main prints it and exits 1
        }
    });
}

}  // namespace orcd::cli
