#include "loader/loader.h"

#include <chrono>
#include <thread>

#include <fmt/format.h>

#include "common/error.h"
#include "device/checksum.h"

namespace orcd::loader {

namespace {

using Clock = std::chrono::steady_clock;
double since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

// The file side of --verify, spread over a few threads (a 2 GiB model is a second of hashing on one core).
std::vector<uint64_t> host_checksums(const model::ModelWeights& w) {
    std::vector<uint64_t> out(w.tensors.size());
    std::atomic<size_t> next{0};
    auto work = [&] {
        for (size_t i; (i = next.fetch_add(1)) < w.tensors.size();) out[i] = device::checksum_bytes(w.tensors[i].data);
    };
    const unsigned n = std::min(8u, std::max(1u, std::thread::hardware_concurrency()));
    std::vector<std::jthread> threads;
    for (unsigned i = 1; i < n; ++i) threads.emplace_back(work);
    work();
    return out;
}

}  // namespace

bool LoadedModel::resident() const noexcept {
    try {
        check_residency();
        return true;
    } catch (...) {
        return false;
    }
}

void LoadedModel::check_residency() const {
    const std::pair<const char*, const device::DeviceMemory*> allocations[] = {
        {"weights", weights_.get()}, {"KV cache", kv_.get()}, {"workspace", workspace_.get()}};
    for (const auto& [what, mem] : allocations) {
        if (!mem) continue;
        const device::Residency r = device_->residency(mem->data());
        if (!r.ok()) {
            throw Error(ErrorCode::Residency,
                        fmt::format("{}: the {} allocation at {} ({} bytes) on {} {} is not resident device memory: {}",
                                    model_.file->path(), what, static_cast<const void*>(mem->data()), mem->size(),
                                    device_info_.kind, device_info_.index, r.detail));
        }
    }
}

VramBreakdown LoadedModel::breakdown() const {
    VramBreakdown b;
    b.weights = weights_->size();
    b.kv_cache = kv_ ? kv_->size() : 0;
    b.workspace = workspace_ ? workspace_->size() : 0;
    return b;
}

VerifyReport LoadedModel::verify() const {
    const auto t0 = Clock::now();
    const auto& ts = model_.weights.tensors;
    std::vector<device::DeviceRange> ranges;
    ranges.reserve(ts.size());
    for (size_t i = 0; i < ts.size(); ++i)
        ranges.push_back({weights_->data() + plan_.tensors[i].offset, ts[i].n_bytes});
    const std::vector<uint64_t> dev = device_->checksums(ranges);
    const std::vector<uint64_t> host = host_checksums(model_.weights);
    size_t bad = 0, first = ts.size();
    for (size_t i = 0; i < ts.size(); ++i) {
        if (dev[i] != host[i]) {
            if (bad++ == 0) first = i;
        }
    }
    if (bad) {
        const auto& t = ts[first];
        throw Error(ErrorCode::Verify,
                    fmt::format("{}: verify failed for {} of {} tensors; first: {} (file offset {}, arena offset {}, "
                                "{} bytes): file checksum {:016x}, device checksum {:016x}",
                                model_.file->path(), bad, ts.size(), t.name, t.file_offset, plan_.tensors[first].offset,
                                t.n_bytes, host[first], dev[first]));
    }
    VerifyReport r;
    r.tensors = ts.size();
    r.bytes = plan_.tensor_bytes;
    r.seconds = since(t0);
    return r;
}

LoadedModel load_model(model::Model model, std::shared_ptr<device::Device> device, const LoadOptions& o) {
    if (!device) throw Error(ErrorCode::InvalidArgument, "load_model: no device");
    const auto t0 = Clock::now();
    LoadedModel m;
    m.device_ = std::move(device);
    m.model_ = std::move(model);
    m.plan_ = make_plan(m.model_, o.plan);
    m.device_info_ = m.device_->info();
    check_fit(m.plan_, m.device_info_, o.vram_limit, m.model_.file->path());
    m.timings_.plan_s = since(t0);

    const auto ta = Clock::now();
    m.weights_ = m.device_->allocate(m.plan_.weight_bytes, "weights");
    if (o.reserve_runtime) {
        if (m.plan_.kv_bytes) m.kv_ = m.device_->allocate(m.plan_.kv_bytes, "KV cache");
        m.workspace_ = m.device_->allocate(m.plan_.workspace.total(), "workspace");
    }
    m.timings_.alloc_s = since(ta);

    const auto tt = Clock::now();
    m.transfer_ = transfer_weights(*m.device_, m.model_.weights, m.plan_, *m.weights_, m.model_.file.get(), o.transfer,
                                   o.progress, o.cancel);
    m.timings_.transfer_s = since(tt);

    const auto tr = Clock::now();
    m.check_residency();
    m.timings_.residency_s = since(tr);
    if (o.verify) {
        const auto tv = Clock::now();
        m.verify_ = m.verify();
        m.timings_.verify_s = since(tv);
    }
    // Free memory after the load, for the report (the plan's fit check used the value from before).
    m.device_info_.free_bytes = m.device_->info().free_bytes;
    m.timings_.total_s = since(t0);
    return m;
}

LoadedModel load_model(const std::filesystem::path& path, std::shared_ptr<device::Device> device,
                       const LoadOptions& o) {
    return load_model(model::open_model(path), std::move(device), o);
}

}  // namespace orcd::loader
