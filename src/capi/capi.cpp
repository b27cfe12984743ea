// The C API: a thin layer over the C++ loader. Every entry point catches everything; errors become a status code
// plus a per-thread message.
#include "orcd.h"

#include <atomic>
#include <cstring>
#include <new>
#include <string>

#include "common/error.h"
#include "device/cuda_device.h"
#include "device/host_device.h"
#include "loader/loader.h"
#include "model/model.h"

struct orcd_model {
    orcd::model::Model model;
};
struct orcd_device {
    std::shared_ptr<orcd::device::Device> device;
};
struct orcd_loaded {
    orcd::loader::LoadedModel loaded;
};

namespace {

using orcd::Error;
using orcd::ErrorCode;

// The C enum mirrors ErrorCode value for value.
static_assert(ORCD_ERR_INVALID_ARGUMENT == static_cast<int>(ErrorCode::InvalidArgument));
static_assert(ORCD_ERR_INSUFFICIENT_VRAM == static_cast<int>(ErrorCode::InsufficientVram));
static_assert(ORCD_ERR_NO_DEVICE == static_cast<int>(ErrorCode::NoDevice));
static_assert(ORCD_ERR_RESIDENCY == static_cast<int>(ErrorCode::Residency));
static_assert(ORCD_ERR_VERIFY == static_cast<int>(ErrorCode::Verify));
static_assert(ORCD_ERR_INTERNAL == static_cast<int>(ErrorCode::Internal));

thread_local orcd_status t_last = ORCD_OK;
thread_local std::string t_message;

orcd_status fail(ErrorCode code, std::string message) {
    t_last = static_cast<orcd_status>(code);
    t_message = std::move(message);
    return t_last;
}

// Runs `f`, translating every exception into a status (no exception ever crosses into C).
template <typename F>
orcd_status guarded(F&& f) {
    try {
        f();
        return ORCD_OK;
    } catch (const Error& e) {
        return fail(e.code(), e.what());
    } catch (const std::bad_alloc&) {
        return fail(ErrorCode::Internal, "out of host memory");
    } catch (const std::exception& e) {
        return fail(ErrorCode::Internal, std::string("internal error: ") + e.what());
    } catch (...) {
        return fail(ErrorCode::Internal, "internal error: unknown exception");
    }
}

void require(bool ok, const char* what) {
    if (!ok) throw Error(ErrorCode::InvalidArgument, what);
}

void require_size(uint32_t size, size_t want, const char* what) {
    if (size < want) {
        throw Error(ErrorCode::InvalidArgument, std::string(what) + ": size field is " + std::to_string(size) +
                                                    ", expected at least " + std::to_string(want) +
                                                    " (call the matching *_init function first)");
    }
}

void copy_str(char* dst, size_t cap, const std::string& s) {
    const size_t n = std::min(cap - 1, s.size());
    std::memcpy(dst, s.data(), n);
    dst[n] = '\0';
}

void fill_plan(const orcd::loader::Plan& p, orcd_plan* out) {
    *out = {};
    out->n_ctx = p.n_ctx;
    out->n_batch = p.n_batch;
    out->n_tensors = static_cast<uint32_t>(p.tensors.size());
    out->tensor_bytes = p.tensor_bytes;
    out->weight_bytes = p.weight_bytes;
    out->kv_bytes = p.kv_bytes;
    out->workspace_bytes = p.workspace.total();
    out->total_bytes = p.total_bytes;
}

}  // namespace

extern "C" {

const char* orcd_version(void) { return "0.1.0"; }

const char* orcd_status_name(orcd_status status) {
    // error_code_name returns views of string literals, so .data() is NUL-terminated.
    return orcd::error_code_name(static_cast<ErrorCode>(status)).data();
}

orcd_status orcd_last_error(void) { return t_last; }
const char* orcd_last_error_message(void) { return t_message.c_str(); }

orcd_status orcd_model_open(const char* path, orcd_model** out) {
    return guarded([&] {
        require(path && out, "orcd_model_open: path and out must not be NULL");
        *out = nullptr;
        auto m = std::make_unique<orcd_model>(orcd_model{orcd::model::open_model(path)});
        *out = m.release();
    });
}

orcd_status orcd_model_get_info(const orcd_model* model, orcd_model_info* out) {
    return guarded([&] {
        require(model && out, "orcd_model_get_info: model and out must not be NULL");
        const auto& c = model->model.config;
        *out = {};
        copy_str(out->architecture, sizeof out->architecture, c.arch_name);
        out->n_layers = c.n_layers;
        out->n_embd = c.n_embd;
        out->n_ff = c.n_ff;
        out->n_heads = c.n_heads;
        out->n_kv_heads = c.n_kv_heads;
        out->head_dim = c.head_dim;
        out->n_vocab = c.n_vocab;
        out->context_length = c.context_length;
        out->rope_dim = c.rope_dim;
        out->rope_theta = c.rope_theta;
        out->rms_eps = c.rms_eps;
        out->rope_neox = c.rope_layout == orcd::model::RopeLayout::NeoX;
        out->output_tied = model->model.weights.output_tied;
        out->n_tensors = static_cast<uint32_t>(model->model.weights.tensors.size());
        out->tensor_bytes = model->model.weights.total_bytes();
        out->file_bytes = model->model.file->size();
    });
}

void orcd_model_free(orcd_model* model) { delete model; }

int32_t orcd_cuda_device_count(void) {
    try {
        return orcd::device::cuda_device_count();
    } catch (...) {
        return 0;
    }
}

orcd_status orcd_device_open_cuda(int32_t index, orcd_device** out) {
    return guarded([&] {
        require(out != nullptr, "orcd_device_open_cuda: out must not be NULL");
        *out = nullptr;
        *out = new orcd_device{orcd::device::open_cuda_device(index)};
    });
}

orcd_status orcd_device_open_host(uint64_t capacity_bytes, orcd_device** out) {
    return guarded([&] {
        require(out != nullptr, "orcd_device_open_host: out must not be NULL");
        *out = nullptr;
        orcd::device::HostDeviceOptions o;
        if (capacity_bytes) o.capacity = capacity_bytes;
        *out = new orcd_device{std::make_shared<orcd::device::HostDevice>(o)};
    });
}

orcd_status orcd_device_get_info(const orcd_device* device, orcd_device_info* out) {
    return guarded([&] {
        require(device && out, "orcd_device_get_info: device and out must not be NULL");
        const auto i = device->device->info();
        *out = {};
        copy_str(out->kind, sizeof out->kind, i.kind);
        out->index = i.index;
        copy_str(out->name, sizeof out->name, i.name);
        out->total_bytes = i.total_bytes;
        out->free_bytes = i.free_bytes;
    });
}

void orcd_device_free(orcd_device* device) { delete device; }

void orcd_faults_init(orcd_faults* faults) {
    if (!faults) return;
    *faults = {};
    faults->size = sizeof(orcd_faults);
    faults->fail_transfer_at_byte = -1;
    faults->corrupt_byte = -1;
}

orcd_status orcd_device_set_faults(orcd_device* device, const orcd_faults* faults) {
    return guarded([&] {
        require(device && faults, "orcd_device_set_faults: device and faults must not be NULL");
        require_size(faults->size, sizeof(orcd_faults), "orcd_device_set_faults");
        orcd::device::Faults f;
        f.fail_alloc_at = faults->fail_alloc_at;
        f.fail_pinned_alloc_at = faults->fail_pinned_alloc_at;
        if (faults->fail_transfer_at_byte >= 0)
            f.fail_transfer_at_byte = static_cast<uint64_t>(faults->fail_transfer_at_byte);
        if (faults->corrupt_byte >= 0) f.corrupt_byte = static_cast<uint64_t>(faults->corrupt_byte);
        f.report_not_resident = faults->report_not_resident != 0;
        device->device->set_faults(f);
    });
}

orcd_status orcd_model_plan(const orcd_model* model, uint32_t n_ctx, orcd_plan* out) {
    return guarded([&] {
        require(model && out, "orcd_model_plan: model and out must not be NULL");
        orcd::loader::PlanOptions o;
        o.n_ctx = n_ctx;
        fill_plan(orcd::loader::make_plan(model->model, o), out);
    });
}

void orcd_load_options_init(orcd_load_options* options) {
    if (!options) return;
    *options = {};
    options->size = sizeof(orcd_load_options);
}

orcd_status orcd_model_load(const orcd_model* model, orcd_device* device, const orcd_load_options* options,
                            orcd_loaded** out) {
    return guarded([&] {
        require(model && device && out, "orcd_model_load: model, device and out must not be NULL");
        *out = nullptr;
        orcd_load_options defaults;
        orcd_load_options_init(&defaults);
        const orcd_load_options& c = options ? *options : defaults;
        require_size(c.size, sizeof(orcd_load_options), "orcd_model_load options");
        orcd::loader::LoadOptions o;
        o.plan.n_ctx = c.n_ctx;
        if (c.chunk_bytes) o.transfer.chunk_bytes = c.chunk_bytes;
        if (c.n_buffers) o.transfer.n_buffers = c.n_buffers;
        if (c.vram_limit) o.vram_limit = c.vram_limit;
        o.verify = c.verify != 0;
        std::atomic<bool> cancel{false};
        o.cancel = &cancel;
        std::string tensor;  // NUL-terminated copy for the callback
        if (c.progress) {
            o.progress = [&](const orcd::loader::Progress& p) {
                tensor.assign(p.tensor);
                orcd_progress cp{};
                cp.kind = static_cast<int32_t>(p.kind);
                cp.bytes_done = p.bytes_done;
                cp.bytes_total = p.bytes_total;
                cp.chunk = p.chunk;
                cp.n_chunks = p.n_chunks;
                cp.tensor = tensor.c_str();
                cp.layer = p.layer;
                cp.n_layers = p.n_layers;
                cp.elapsed_s = p.elapsed_s;
                if (c.progress(&cp, c.user_data) != 0) cancel = true;
            };
        }
        auto loaded = orcd::loader::load_model(model->model, device->device, o);
        *out = new orcd_loaded{std::move(loaded)};
    });
}

int32_t orcd_loaded_resident(const orcd_loaded* loaded) { return loaded && loaded->loaded.resident() ? 1 : 0; }

uint64_t orcd_loaded_vram_bytes(const orcd_loaded* loaded) { return loaded ? loaded->loaded.vram_bytes() : 0; }

orcd_status orcd_loaded_get_vram(const orcd_loaded* loaded, orcd_vram* out) {
    return guarded([&] {
        require(loaded && out, "orcd_loaded_get_vram: loaded and out must not be NULL");
        const auto b = loaded->loaded.breakdown();
        *out = {b.weights, b.kv_cache, b.workspace, b.total()};
    });
}

orcd_status orcd_loaded_get_plan(const orcd_loaded* loaded, orcd_plan* out) {
    return guarded([&] {
        require(loaded && out, "orcd_loaded_get_plan: loaded and out must not be NULL");
        fill_plan(loaded->loaded.plan(), out);
    });
}

orcd_status orcd_loaded_get_transfer_stats(const orcd_loaded* loaded, orcd_transfer_stats* out) {
    return guarded([&] {
        require(loaded && out, "orcd_loaded_get_transfer_stats: loaded and out must not be NULL");
        const auto& s = loaded->loaded.transfer_stats();
        *out = {};
        out->bytes = s.bytes;
        out->seconds = s.seconds;
        out->gbps = s.gbps();
        out->chunks = s.chunks;
        out->staging_bytes = s.staging_bytes;
        out->n_buffers = s.n_buffers;
    });
}

orcd_status orcd_loaded_verify(const orcd_loaded* loaded) {
    return guarded([&] {
        require(loaded != nullptr, "orcd_loaded_verify: loaded must not be NULL");
        (void)loaded->loaded.verify();
    });
}

void orcd_loaded_free(orcd_loaded* loaded) { delete loaded; }

}  // extern "C"
