#pragma once
// Loading a model onto a device: plan, fit check, allocation, chunked transfer, residency check, optional verify. The
// result, LoadedModel, owns every device resource of the model; a failure at any step releases everything acquired so
// far (RAII) before the error propagates.
#include <atomic>
#include <filesystem>
#include <memory>
#include <optional>

#include "device/device.h"
#include "loader/plan.h"
#include "loader/progress.h"
#include "loader/transfer.h"
#include "model/model.h"

namespace orcd::loader {

struct LoadOptions {
    PlanOptions plan;
    TransferOptions transfer;
    std::optional<uint64_t> vram_limit;  // cap on what the load may use (bytes), on top of the device's free memory
    bool verify = false;                 // checksum every tensor on the device against the file
    bool reserve_runtime = true;         // also allocate the planned KV cache and workspace (for the engine)
    const std::atomic<bool>* cancel = nullptr;
    ProgressFn progress;
};

struct VramBreakdown {
    uint64_t weights = 0;
    uint64_t kv_cache = 0;
    uint64_t workspace = 0;
    uint64_t total() const { return weights + kv_cache + workspace; }
};

struct VerifyReport {
    uint64_t tensors = 0;
    uint64_t bytes = 0;
    double seconds = 0.0;
};

struct LoadTimings {
    double plan_s = 0, alloc_s = 0, transfer_s = 0, residency_s = 0, verify_s = 0, total_s = 0;
};

class LoadedModel {
public:
    LoadedModel(LoadedModel&&) noexcept = default;
    LoadedModel& operator=(LoadedModel&&) noexcept = default;
    ~LoadedModel() = default;

    const model::Model& model() const { return model_; }
    const model::Config& config() const { return model_.config; }
    const model::ModelWeights& weights() const { return model_.weights; }
    const Plan& plan() const { return plan_; }
    device::Device& device() const { return *device_; }
    const device::DeviceInfo& device_info() const { return device_info_; }

    // Device address of a tensor inside the weight arena.
    const std::byte* tensor_data(model::TensorId id) const { return weights_->data() + plan_[id].offset; }
    std::byte* kv_cache() const { return kv_ ? kv_->data() : nullptr; }
    std::byte* workspace() const { return workspace_ ? workspace_->data() : nullptr; }

    // Every device allocation is device memory of this device with no host mapping. resident() never throws;
    // check_residency() throws Residency naming the allocation and what the runtime reported.
    bool resident() const noexcept;
    void check_residency() const;

    uint64_t vram_bytes() const { return weights_->size(); }  // == plan().weight_bytes
    VramBreakdown breakdown() const;

    const TransferStats& transfer_stats() const { return transfer_; }
    const LoadTimings& timings() const { return timings_; }
    const std::optional<VerifyReport>& verify_report() const { return verify_; }

    // Recomputes every tensor's checksum on the device and compares it with the file's bytes. Throws Verify naming
    // the first mismatching tensor (expected and found checksums, its offset) and how many differ.
    VerifyReport verify() const;

private:
    friend LoadedModel load_model(model::Model, std::shared_ptr<device::Device>, const LoadOptions&);
    LoadedModel() = default;

    // Member order is destruction order reversed: device memory goes before the Device, the mapping last but one.
    std::shared_ptr<device::Device> device_;
    device::DeviceInfo device_info_;
    model::Model model_;
    Plan plan_;
    std::unique_ptr<device::DeviceMemory> weights_, kv_, workspace_;
    TransferStats transfer_;
    LoadTimings timings_;
    std::optional<VerifyReport> verify_;
};

// Plans, checks the fit, allocates and transfers. Errors: those of make_plan, InsufficientVram (before any
// allocation), DeviceAlloc, Transfer, Cancelled, Residency, Verify, Device.
LoadedModel load_model(model::Model model, std::shared_ptr<device::Device> device, const LoadOptions& options);
// Opens the file first (every open/validation error of model::open_model); a failure releases the mapping too.
LoadedModel load_model(const std::filesystem::path& path, std::shared_ptr<device::Device> device,
                       const LoadOptions& options);

}  // namespace orcd::loader
