#pragma once
// One batched decode step on the device: n_cols columns, each a token at its own position with its own page table
// (DecodeBuffers::cols, in device memory) -> embedding -> every layer -> final norm -> LM head -> logits and their
// argmax per column, in VRAM. Reads tokens, positions and page tables from device memory, so one captured CUDA graph
// per column count replays at every step. Internal to the CUDA backend.
//
// Batch invariance: every kernel computes a column with the same arithmetic whatever n_cols is (per-column
// quantization, the batched dp4a matvec's fixed per-column sums, per-column attention chunks of fixed positions), so a
// column's logits are bit-identical alone or among others.
#include <cstdint>
#include <cuda_runtime_api.h>

#include <optional>
#include <vector>

#include "backend/cuda/cuda_backend.h"
#include "backend/cuda/cuda_model.h"
#include "backend/cuda/matvec_q8.h"

namespace orcd::backend::cuda {

// The activations of one decode step for up to max_cols columns, carved from one device allocation. Column c of a
// buffer starts at c * its stride.
struct DecodeBuffers {
    int max_cols = 0;
    int64_t max_table = 0;  // page-table entries `tables` holds
    // The step's inputs, one host-to-device copy: tokens [max_cols], pos [max_cols], table [max_cols] (offsets into
    // tables), then tables [max_table].
    int32_t* inputs = nullptr;
    int32_t *tokens = nullptr, *pos = nullptr, *table = nullptr, *tables = nullptr;
    int32_t* argmax = nullptr;  // [max_cols]
    float *x = nullptr, *h = nullptr, *qkv = nullptr, *attn = nullptr, *tmp = nullptr, *gu = nullptr, *ffn = nullptr,
          *logits = nullptr;
    int64_t s_x = 0, s_qkv = 0, s_attn = 0, s_gu = 0, s_ffn = 0, s_logits = 0;  // column strides (floats)
    void* attn_ws = nullptr;
    // The quantized inputs (Activations::Int8): a matvec over rows of `cols` values finds column c's Q8Vector at
    // q8_vector_at(q8_base + c * q8_vector_bytes(cols), cols) (quantize_q8_columns' layout for that length).
    std::byte* q8_base = nullptr;
    // The persistent single-column step's tables (decode_persistent.h), or null: the single column then runs the
    // kernel chain like any other batch.
    std::byte* persistent = nullptr;
    int persistent_blocks = 0;  // the persistent kernel's grid (set with its tables)

    // Bytes of the inputs region.
    uint64_t input_bytes() const { return (3ull * max_cols + static_cast<uint64_t>(max_table)) * sizeof(int32_t); }

    // Reserves every buffer in `cv` (offsets relative to the allocation); bind() turns them into pointers.
    struct Layout {
        int max_cols;
        int64_t max_table, q8_cols;
        uint64_t inputs, argmax, x, h, tmp, qkv, attn, gu, ffn, logits, attn_ws, q8;
        uint64_t persistent;  // 0 bytes reserved: none
        bool has_persistent;
    };
    // n_ctx: the most positions a column's cache has (sizes the attention workspace). persistent: reserve the
    // persistent step's tables too.
    static Layout plan(const model::Config& c, int64_t n_ctx, int max_cols, int64_t max_table, Carver& cv,
                       bool persistent = false);
    static DecodeBuffers bind(const model::Config& c, const Layout& l, std::byte* base);
};

// Enqueues the whole step for columns 0 .. n_cols - 1 on `stream` (what a graph captures), the argmax of each
// column's logits into b.argmax. Does not synchronize. A single column with b.persistent set runs the persistent step
// (decode_persistent.h) instead, with the same bits.
//
// Per layer (the fused path, 7 launches): norm+QKV matvec -> bias+RoPE+KV store -> attention (2) -> O matvec +
// residual -> norm+gate/up matvec+SwiGLU -> down matvec + residual. With Activations::Int8, every matvec whose
// matrices all have dp4a kernels (matvec_q8.h) runs as quantize (with the norm folded in where there is one) + one
// dp4a matvec over all columns with the same epilogue, whatever its size: 11 launches per layer (4 quantize, 4 matvec,
// qkv_rope_store, attention's 2). Otherwise (f32 activations, or a type without a dp4a kernel) that projection runs
// column by column through the f32 matvecs: a matrix the fused matvec cannot take (x too long for shared memory), or
// larger than 4 MiB (ORCD_FUSED_MAX_BYTES overrides, for benchmarks), goes through the staged-tile matvec with the
// element-wise ops as separate launches instead.
void enqueue_decode(const CudaModel& m, const DecodeBuffers& b, const KvCache& kv, int n_cols, Activations act,
                    cudaStream_t stream);

// The int8-activation matvec over `mats` (their rows concatenated, one logical matrix) with `epilogue` into y, its
// input x left for the caller to set; or nothing when a type has no dp4a kernel or the row lengths differ. What the
// kernel chain runs, and what the persistent step's phases are given.
std::optional<::orcd::cuda::Q8Matvec> q8_matvec_over(const std::vector<Matmul>& mats,
                                                     ::orcd::cuda::MatvecEpilogue epilogue, float* y);

}  // namespace orcd::backend::cuda
