#pragma once
// The CPU backend: the reference forward pass of the model recipe (model/recipe.h: llama, qwen2, qwen3, phi3) over
// the weights in the mapped GGUF file (no copy of the matrices; norms and biases, a few KiB, are copied to aligned
// f32), multithreaded over output rows,
// with AVX2 kernels where the CPU has them. Prefill runs each chunk of the prompt as one batch (matrix-matrix);
// decode runs one token (matrix-vector); both write the same per-sequence KV cache.
#include <memory>

#include "backend/backend.h"
#include "backend/cpu/matmul.h"
#include "model/model.h"

namespace orcd::backend::cpu {

struct CpuOptions {
    unsigned n_threads = 0;    // 0 = hardware concurrency
    uint32_t max_batch = 512;  // tokens per forward pass during prefill (bounds the activation buffers)
    // Int8: quantized weights meet an 8-bit activation (fast, llama.cpp's CPU numerics). F32: exact f32 activations
    // (see matmul.h) — the exact reference for comparing backends at full size.
    Activations activations = Activations::Int8;
};

// Checks the recipe's features against the CPU's (UnsupportedArchitecture naming a missing one) and that every weight
// has a CPU kernel and a usable shape (UnsupportedTensorType, TensorShape).
std::unique_ptr<Backend> make_cpu_backend(model::Model model, const CpuOptions& options = {});

}  // namespace orcd::backend::cpu
