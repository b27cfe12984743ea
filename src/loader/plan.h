#pragma once
// The load plan: a pure function of the resolved model and the requested context. It fixes every tensor's place in
// the device arena, the KV cache and the runtime workspace, and sums them, so that the fit check happens before any
// allocation and the loaded model can be held to it byte for byte.
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "device/device.h"
#include "model/model.h"

namespace orcd::loader {

inline constexpr uint64_t kTensorAlignment = 256;  // device offsets: cudaMalloc's alignment, good for 16-B vector loads

struct PlanOptions {
    uint32_t n_ctx = 0;      // tokens of KV cache; 0 = the model's context_length
    uint32_t n_batch = 512;  // tokens per prefill step the workspace is sized for (clamped to n_ctx)
};

struct TensorPlacement {
    uint64_t offset = 0;  // from the arena start, a multiple of kTensorAlignment
    uint64_t bytes = 0;   // the tensor's GGUF bytes, unchanged (no conversion on load)
};

// The runtime workspace, per component. It is the budget the engines' scratch buffers must fit in.
struct Workspace {
    uint64_t activations = 0;  // f32 hidden states for a batch: residual, normed, q, k, v, attention out, gate, up
    uint64_t attention = 0;    // f32 split-K flash-decoding partials (16 splits) for a batch
    uint64_t logits = 0;       // f32 logits for a batch (perplexity scores every position)
    uint64_t scratch = 0;      // fixed: quantized activations, library workspaces (cuBLAS), reductions
    uint64_t total() const { return activations + attention + logits + scratch; }
};

struct Plan {
    uint32_t n_ctx = 0;
    uint32_t n_batch = 0;
    std::vector<TensorPlacement> tensors;  // indexed by model::TensorId
    uint64_t tensor_bytes = 0;             // sum of the tensors' bytes
    uint64_t weight_bytes = 0;  // the arena: tensors plus alignment padding (what LoadedModel::vram_bytes() reports)
    uint64_t kv_bytes = 0;      // f16 K and V for every layer and n_ctx tokens
    Workspace workspace;
    uint64_t total_bytes = 0;  // weight_bytes + kv_bytes + workspace.total()

    const TensorPlacement& operator[](model::TensorId id) const { return tensors.at(id.value); }
};

// Errors: InvalidArgument when n_ctx exceeds the model's context_length or n_batch is 0; CorruptFile when a size
// overflows 64 bits (only a hostile file can make that happen).
Plan make_plan(const model::Model& model, const PlanOptions& options);

// Fails fast with InsufficientVram when the plan does not fit in min(free device memory, vram_limit); the message
// names the required and available bytes (with the breakdown), the device index and name, and the model path.
void check_fit(const Plan& plan, const device::DeviceInfo& device, std::optional<uint64_t> vram_limit,
               const std::string& model_path);

// Human-readable plan: one summary block, then (when per_tensor) one line per tensor.
std::string format_plan(const Plan& plan, const model::Model& model, bool per_tensor);
// "1.23 GiB" / "374.2 MiB" / "512 B"
std::string format_bytes(uint64_t bytes);

}  // namespace orcd::loader
