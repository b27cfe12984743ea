// Checked entry points of the prefill ops (prefill_ops.h): validation with messages, then the launch and a check of
// its error. fmt stays out of the .cu files.
#include "backend/cuda/prefill_ops.h"

#include <fmt/format.h>

#include <cmath>

#include "backend/cuda/prefill_kernels.h"
#include "common/error.h"
#include "backend/cuda/launch_check.h"
#include "device/cuda_check.h"

namespace orcd::cuda {

using detail::check_launch;
using detail::require;

void rms_norm_to_f16(const float* x, const float* weight, int64_t n_tokens, int64_t n, float eps, uint16_t* out16,
                     cudaStream_t stream) {
    detail::require_norm_rows(n_tokens, n, eps, "rms_norm_to_f16");
    detail::launch_rms_norm_f16(x, weight, n_tokens, n, eps, out16, stream);
    check_launch();
}

void swiglu_to_f16(const float* gate_up, int64_t n_tokens, int64_t n, uint16_t* out16, cudaStream_t stream) {
    require(n_tokens > 0 && n > 0, "swiglu_to_f16", "needs n_tokens > 0 and n > 0");
    detail::launch_swiglu_f16(gate_up, n_tokens, n, out16, stream);
    check_launch();
}

void qkv_rope_store(const float* qkv, int64_t row_stride, int64_t n_tokens, int n_heads, const QkvBias& bias, int n_rot,
                    int64_t pos0, const double* inv_freq, RopeLayout layout, const KvCacheView& kv, uint16_t* q16,
                    cudaStream_t stream) {
    require(kv.k && kv.v && kv.n_kv_heads > 0 && kv.head_dim > 0 && kv.head_dim % 2 == 0, "qkv_rope_store",
            "the KV cache view needs K and V buffers, n_kv_heads > 0 and an even head_dim");
    require(n_tokens > 0 && pos0 >= 0 && pos0 + n_tokens <= kv.n_ctx, "qkv_rope_store",
            fmt::format("positions {} .. {} do not fit a cache of {}", pos0, pos0 + n_tokens - 1, kv.n_ctx));
    require(n_heads > 0 && row_stride >= static_cast<int64_t>(n_heads + 2 * kv.n_kv_heads) * kv.head_dim,
            "qkv_rope_store", "row stride shorter than q + k + v");
    require(n_rot > 0 && n_rot % 2 == 0 && n_rot <= kv.head_dim, "qkv_rope_store",
            fmt::format("rotated dimensions {} must be even and within the head dimension {}", n_rot, kv.head_dim));
    detail::launch_qkv_rope_store(qkv, row_stride, n_tokens, n_heads, bias, n_rot, pos0, inv_freq, layout, kv, q16,
                                  stream);
    check_launch();
}

bool attention_prefill_supported(int head_dim) {
    return head_dim == 64 || head_dim == 80 || head_dim == 96 || head_dim == 128;
}

void attention_prefill(const uint16_t* q16, const KvCacheView& kv, int n_heads, int64_t pos0, int64_t n_tokens,
                       uint16_t* out16, cudaStream_t stream, uint32_t window) {
    require(kv.k && kv.v && kv.n_kv_heads > 0, "attention_prefill", "the KV cache view needs K and V buffers");
    require(attention_prefill_supported(kv.head_dim), "attention_prefill",
            fmt::format("no kernel for head dimension {} (64, 80, 96, 128)", kv.head_dim));
    require(n_heads > 0 && n_heads % kv.n_kv_heads == 0 && n_heads <= 65535, "attention_prefill",
            fmt::format("{} query heads are not a multiple of {} KV heads", n_heads, kv.n_kv_heads));
    require(n_tokens > 0 && pos0 >= 0 && pos0 + n_tokens <= kv.n_ctx, "attention_prefill",
            fmt::format("positions {} .. {} do not fit a cache of {}", pos0, pos0 + n_tokens - 1, kv.n_ctx));
    require(reinterpret_cast<uintptr_t>(q16) % 16 == 0 && reinterpret_cast<uintptr_t>(out16) % 4 == 0,
            "attention_prefill", "q16 must be 16-byte and out16 4-byte aligned");
    detail::launch_attention_prefill(q16, kv, n_heads, pos0, n_tokens, window, out16, stream);
    check_launch();
}

}  // namespace orcd::cuda
