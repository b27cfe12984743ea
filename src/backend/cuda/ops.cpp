// Checked entry points of the CUDA ops: argument validation with messages (fmt stays out of the .cu files), then
// the launch and a check of the launch's error.
#include "backend/cuda/ops.h"

#include <fmt/format.h>

#include <cmath>

#include "backend/cuda/ops_kernels.h"
#include "common/error.h"
#include "backend/cuda/launch_check.h"
#include "device/cuda_check.h"

namespace orcd::cuda {

using detail::check_launch;
using detail::require;

void rms_norm(const float* x, const float* weight, int64_t n_tokens, int64_t n, float eps, float* out,
              cudaStream_t stream) {
    detail::require_norm_rows(n_tokens, n, eps, "rms_norm");
    detail::launch_rms_norm(x, weight, n_tokens, n, eps, out, stream);
    check_launch();
}

void rms_norm_heads(float* x, int64_t n_tokens, int64_t row_stride, int n_heads, int head_dim, const float* weight,
                    float eps, cudaStream_t stream) {
    require(n_tokens > 0 && n_heads > 0 && head_dim > 0 && n_tokens * n_heads <= INT32_MAX, "rms_norm_heads",
            "needs n_tokens, n_heads and head_dim > 0");
    require(row_stride >= static_cast<int64_t>(n_heads) * head_dim, "rms_norm_heads",
            fmt::format("row stride {} is shorter than {} heads of {}", row_stride, n_heads, head_dim));
    detail::require_epsilon(eps, "rms_norm_heads");
    detail::launch_rms_norm_heads(x, n_tokens, row_stride, n_heads, head_dim, weight, eps, stream);
    check_launch();
}

void rope(float* x, int64_t n_tokens, int n_heads, int head_dim, int n_rot, const int32_t* pos, const double* inv_freq,
          RopeLayout layout, cudaStream_t stream) {
    require(n_tokens > 0 && n_heads > 0 && head_dim > 0, "rope", "needs n_tokens, n_heads, head_dim > 0");
    require(n_rot > 0 && n_rot % 2 == 0 && n_rot <= head_dim, "rope",
            fmt::format("rotated dimensions {} must be even and within the head dimension {}", n_rot, head_dim));
    detail::launch_rope(x, n_tokens, n_heads, head_dim, n_rot, pos, inv_freq, layout, stream);
    check_launch();
}

void add_bias(float* y, const float* bias, int64_t n_tokens, int64_t n, cudaStream_t stream) {
    require(n_tokens > 0 && n > 0, "add_bias", "needs n_tokens > 0 and n > 0");
    detail::launch_add_bias(y, bias, n_tokens, n, stream);
    check_launch();
}

void add(float* x, const float* y, int64_t n, cudaStream_t stream) {
    require(n > 0, "add", "needs n > 0");
    detail::launch_add(x, y, n, stream);
    check_launch();
}

void swiglu(const float* gate_up, int64_t n_tokens, int64_t n, float* out, cudaStream_t stream) {
    require(n_tokens > 0 && n > 0, "swiglu", "needs n_tokens > 0 and n > 0");
    detail::launch_swiglu(gate_up, n_tokens, n, out, stream);
    check_launch();
}

namespace {

void check_kv(const KvCacheView& kv, const char* op) {
    require(kv.k && kv.v && kv.n_ctx > 0 && kv.n_kv_heads > 0 && kv.head_dim > 0, op,
            "the KV cache view needs K and V buffers, n_ctx, n_kv_heads and head_dim > 0");
    require(kv.pages == nullptr || (kv.page_size > 0 && kv.page_stride > 0), op,
            fmt::format("a paged KV cache view needs page_size and page_stride > 0 (found {} and {})", kv.page_size,
                        kv.page_stride));
}

}  // namespace

void kv_store(const KvCacheView& kv, int64_t n_tokens, const float* k, const float* v, const int32_t* pos,
              cudaStream_t stream) {
    check_kv(kv, "kv_store");
    require(n_tokens > 0 && n_tokens <= kv.n_ctx, "kv_store",
            fmt::format("{} tokens do not fit a cache of {}", n_tokens, kv.n_ctx));
    detail::launch_kv_store(kv, n_tokens, k, v, pos, stream);
    check_launch();
}

void qkv_rope_store(float* qkv, int64_t stride, int n_cols, const float* bq, const float* bk, const float* bv,
                    int n_heads, const KvCacheView& kv, int n_rot, const DecodeColumns& cols, const double* inv_freq,
                    RopeLayout layout, cudaStream_t stream) {
    check_kv(kv, "qkv_rope_store");
    require(n_cols >= 1 && n_cols <= 65535, "qkv_rope_store", fmt::format("{} columns (1 .. 65535)", n_cols));
    require(cols.pos != nullptr, "qkv_rope_store", "no column positions");
    require(n_heads > 0 && n_heads % kv.n_kv_heads == 0, "qkv_rope_store",
            fmt::format("{} query heads are not a multiple of {} KV heads", n_heads, kv.n_kv_heads));
    require(n_rot > 0 && n_rot % 2 == 0 && n_rot <= kv.head_dim, "qkv_rope_store",
            fmt::format("rotated dimensions {} must be even and within the head dimension {}", n_rot, kv.head_dim));
    detail::launch_qkv_rope_store(qkv, stride, n_cols, bq, bk, bv, n_heads, kv, n_rot, cols, inv_freq, layout, stream);
    check_launch();
}

size_t attention_workspace_bytes(int64_t n_ctx, int n_heads, int head_dim, int n_cols) {
    // o, m and l per (column, head, chunk): see attention.cu.
    return static_cast<size_t>(n_cols) * static_cast<size_t>(n_heads) *
           static_cast<size_t>(detail::attention_chunks(n_ctx)) * (static_cast<size_t>(head_dim) + 2) * sizeof(float);
}

void attention_decode(const float* q, int64_t q_stride, int n_cols, const KvCacheView& kv, int n_heads,
                      const DecodeColumns& cols, float* out, int64_t out_stride, void* workspace, cudaStream_t stream,
                      uint32_t window) {
    check_kv(kv, "attention_decode");
    require(n_cols >= 1 && n_cols <= 65535, "attention_decode", fmt::format("{} columns (1 .. 65535)", n_cols));
    require(cols.pos != nullptr, "attention_decode", "no column positions");
    require(n_heads > 0 && n_heads % kv.n_kv_heads == 0, "attention_decode",
            fmt::format("{} query heads are not a multiple of {} KV heads", n_heads, kv.n_kv_heads));
    // K rows are read 8 halves (16 bytes) at a time.
    require(kv.head_dim % 8 == 0, "attention_decode",
            fmt::format("head dimension {} is not a multiple of 8", kv.head_dim));
    const size_t smem = static_cast<size_t>(n_heads / kv.n_kv_heads) * (kv.head_dim + detail::kAttnChunk) * 4;
    require(smem <= 48 * 1024, "attention_decode",
            fmt::format("a group of {} heads of dimension {} needs {} B of shared memory (limit 48 KiB)",
                        n_heads / kv.n_kv_heads, kv.head_dim, smem));
    require(workspace != nullptr, "attention_decode", "no workspace (see attention_workspace_bytes)");
    detail::launch_attention_decode(q, q_stride, n_cols, kv, n_heads, cols, out, out_stride, workspace, window, stream);
    check_launch();
}

bool embedding_supported(gguf::TensorType type) {
    switch (type) {
        case gguf::TensorType::F32:
        case gguf::TensorType::F16:
        case gguf::TensorType::BF16:
        case gguf::TensorType::Q4_0:
        case gguf::TensorType::Q4_1:
        case gguf::TensorType::Q5_0:
        case gguf::TensorType::Q5_1:
        case gguf::TensorType::Q8_0:
        case gguf::TensorType::Q4_K:
        case gguf::TensorType::Q5_K:
        case gguf::TensorType::Q6_K: return true;
        default: return false;
    }
}

void embedding_row(gguf::TensorType type, const void* table, int64_t cols, const int32_t* token, float* out,
                   cudaStream_t stream) {
    if (!embedding_supported(type)) {
        throw Error(ErrorCode::UnsupportedTensorType,
                    fmt::format("no CUDA embedding lookup for tensor type {}", gguf::type_name(type)));
    }
    require(cols > 0 && cols % gguf::traits(type).block_elems == 0, "embedding_row",
            fmt::format("row length {} is not a positive multiple of the {} block size {}", cols, gguf::type_name(type),
                        gguf::traits(type).block_elems));
    detail::launch_embedding_row(type, table, cols, token, out, stream);
    check_launch();
}

void argmax(const float* x, int64_t n, int32_t* out, cudaStream_t stream, int n_rows, int64_t stride) {
    require(n > 0 && n <= INT32_MAX, "argmax", "needs 0 < n <= INT32_MAX");
    require(n_rows >= 1 && n_rows <= 65535, "argmax", fmt::format("{} rows (1 .. 65535)", n_rows));
    detail::launch_argmax(x, n, out, n_rows, stride, stream);
    check_launch();
}

}  // namespace orcd::cuda
