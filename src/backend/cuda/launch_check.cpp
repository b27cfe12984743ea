// The failure side of launch_check.h's argument checks: the message is formatted here, by the host compiler, with fmt.
#include "backend/cuda/launch_check.h"

#include <fmt/args.h>
#include <fmt/format.h>

#include <cmath>

#include "common/error.h"

namespace orcd::cuda::detail {

void fail(const char* op, std::string_view what, std::initializer_list<MessageArg> args) {
    fmt::dynamic_format_arg_store<fmt::format_context> values;
    for (const MessageArg& a : args) std::visit([&values](auto v) { values.push_back(v); }, a);
    throw Error(ErrorCode::InvalidArgument, fmt::format("cuda {}: {}", op, fmt::vformat(what, values)));
}

void require_epsilon(float eps, const char* op) {
    require(std::isfinite(eps) && eps >= 0.0f, op, "epsilon {} is not a finite value >= 0", eps);
}

void require_rotary(int n_rot, int head_dim, const char* op) {
    require(n_rot > 0 && n_rot % 2 == 0 && n_rot <= head_dim, op,
            "rotated dimensions {} must be even and within the head dimension {}", n_rot, head_dim);
}

void require_norm_rows(int64_t n_tokens, int64_t n, float eps, const char* op) {
    require(n_tokens > 0 && n > 0 && n_tokens <= INT32_MAX, op, "needs n_tokens > 0 and n > 0");
    require_epsilon(eps, op);
}

void require_kv(const KvCacheView& kv, const char* op) {
    require(kv.k && kv.v && kv.n_ctx > 0 && kv.n_kv_heads > 0 && kv.head_dim > 0, op,
            "the KV cache view needs K and V buffers, n_ctx, n_kv_heads and head_dim > 0");
    require(kv.pages == nullptr || (kv.page_size > 0 && kv.page_stride > 0), op,
            "a paged KV cache view needs page_size and page_stride > 0 (found {} and {})", kv.page_size,
            kv.page_stride);
}

void require_decode_columns(const KvCacheView& kv, int n_cols, const DecodeColumns& cols, int n_heads, const char* op) {
    require_kv(kv, op);
    require(n_cols >= 1 && n_cols <= 65535, op, "{} columns (1 .. 65535)", n_cols);
    require(cols.pos != nullptr, op, "no column positions");
    require(n_heads > 0 && n_heads % kv.n_kv_heads == 0, op, "{} query heads are not a multiple of {} KV heads",
            n_heads, kv.n_kv_heads);
}

}  // namespace orcd::cuda::detail
