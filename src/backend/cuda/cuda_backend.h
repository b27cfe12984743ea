#pragma once
// The CUDA backend: the forward pass of llama, qwen2 and phi3 on weights the loader made resident in one device
// arena (GGUF bytes unchanged), with the ops of ops.h and the matvec kernels (matvec_q8.h: int8 activations and
// dp4a, the default; matvec_fused.h / matvec.h: f32 activations). The KV cache is a pool of f16 pages (kv_pool.h;
// Backend::new_kv_pool), and Backend::step runs a batch of sequences over it: every decode token (and every prompt
// chunk of one token) as a column of one batched decode step (decode_step.h: embedding -> layers -> final norm -> LM
// head -> logits and argmax, no host round trip inside it, captured as a CUDA graph per column count and replayed),
// every longer prompt chunk through the batched prefill (prefill_step.h: micro-batches of matrix-matrix products on
// tensor cores, weights dequantized to f16, f32 accumulation, and causal flash attention over the pages). What
// crosses to the host is what each entry asks for: logits, the argmax, or the sampled id (the sampler chain of
// sample.h runs on the device). A single sequence (Backend::new_sequence) is a PagedSequence: the batch of one.
#include <cstdint>
#include <memory>

#include "backend/backend.h"
#include "loader/progress.h"
#include "model/model.h"

namespace orcd::backend::cuda {

// The backend layer's modes (backend.h). WeightsMode::F16 keeps the quantized arena resident too (the loader owns it
// as one allocation). Activations::Int8 runs the decode matvecs with __dp4a (matvec_q8.h; float weight types, and
// types without a dp4a kernel, keep the f32 path); it is the default: faster decode on the device
// (bench/cuda/NOTES.md, v6).
using backend::Activations;
using backend::WeightsMode;

// How a decode step of one column runs: the kernel chain every batch size runs (decode_step.h), or one persistent
// kernel (decode_persistent.h: the same bits; int8 activations, no q/k norm). The ORCD_DECODE_PERSISTENT tuning
// override asks for Persistent where the model allows it.
enum class DecodeKernel : uint8_t { Chain, Persistent };

struct CudaOptions {
    int gpu = 0;            // CUDA device ordinal
    bool use_graph = true;  // replay the decode step as a CUDA graph (false: launch every kernel each step)
    WeightsMode weights = WeightsMode::Quantized;
    bool batched_prefill = true;  // false: prefill token by token through the decode step (f32 reference runs)
    uint32_t prefill_ubatch = 0;  // tokens per batched-prefill micro-batch; 0: 1024 (or ORCD_PREFILL_UBATCH)
    Activations activations = Activations::Int8;
    DecodeKernel decode_kernel = DecodeKernel::Chain;
};

// Loads the weights onto the GPU and checks that every tensor has a kernel. The KV cache is always f16 (a
// SequenceOptions::kv_type of F32 is served with f16). Errors: NoDevice, the loader's errors (InsufficientVram,
// DeviceAlloc, Transfer...), UnsupportedTensorType, UnsupportedArchitecture (RoPE frequency factors;
// DecodeKernel::Persistent for a model that step cannot run, naming why), TensorShape.
// `progress`: the weights' upload, chunk by chunk and layer by layer (loader::LoadOptions::progress); a parameter of its
// own so that CudaOptions stays a literal type.
std::unique_ptr<Backend> make_cuda_backend(model::Model model, const CudaOptions& options = {},
                                           const loader::ProgressFn& progress = {});

}  // namespace orcd::backend::cuda
