#pragma once
// One decode step on the device: the token at device scalar [0], position at [1] -> embedding -> every layer ->
// final norm -> LM head -> logits in VRAM. Reads the token and position from device memory, so one captured CUDA
// graph of it replays at every position. Internal to the CUDA backend.
#include <cstdint>
#include <cuda_runtime_api.h>

#include "backend/cuda/cuda_backend.h"
#include "backend/cuda/cuda_model.h"
#include "backend/cuda/matvec_q8.h"

namespace orcd::backend::cuda {

// The activations of one decode step, carved from one device allocation.
struct DecodeBuffers {
    int32_t* scalars = nullptr;  // [0] token, [1] position, [2] argmax result
    float *x = nullptr, *h = nullptr, *qkv = nullptr, *attn = nullptr, *tmp = nullptr, *gu = nullptr, *ffn = nullptr,
          *logits = nullptr;
    void* attn_ws = nullptr;
    ::orcd::cuda::Q8Vector q8;  // the quantized input of the current matvec (Activations::Int8)

    // Reserves every buffer in `cv` (offsets relative to the allocation); bind() turns them into pointers.
    struct Layout {
        uint64_t scalars, x, h, tmp, qkv, attn, gu, ffn, logits, attn_ws, q8;
        int64_t q8_cols;
    };
    static Layout plan(const model::Config& c, uint32_t n_ctx, Carver& cv);
    static DecodeBuffers bind(const Layout& l, std::byte* base);
};

// Enqueues the whole step on `stream` (what the graph captures). With `argmax`, also the index of the largest logit
// into scalars[2] (greedy decoding reads 4 bytes instead of the logits). Does not synchronize.
//
// Per layer (the fused path, 7 launches): norm+QKV matvec -> bias+RoPE+KV store -> attention (2) -> O matvec +
// residual -> norm+gate/up matvec+SwiGLU -> down matvec + residual. A matrix the fused matvec cannot take (x too
// long for shared memory), or larger than 4 MiB (ORCD_FUSED_MAX_BYTES overrides, for benchmarks), goes through the
// staged-tile matvec with the element-wise ops as separate launches instead.
//
// With Activations::Int8, every matvec whose matrices all have dp4a kernels (matvec_q8.h) runs as quantize (with the
// norm folded in where there is one) + dp4a matvec with the same epilogue, whatever its size: 11 launches per layer
// (4 quantize, 4 matvec, qkv_rope_store, attention's 2).
void enqueue_decode(const CudaModel& m, const DecodeBuffers& b, const KvCache& kv, bool argmax, Activations act,
                    cudaStream_t stream);

}  // namespace orcd::backend::cuda
