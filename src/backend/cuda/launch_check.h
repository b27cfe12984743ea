#pragma once
// Argument checks and launch-error checks shared by the checked entry points of the CUDA ops (in each op's .cu file):
// a bad argument is an InvalidArgument naming the op; a failed launch is the runtime's error. Host code only. nvcc
// reads this header, but fmt's compile-time format checks do not build under nvcc: a failed check hands its message's
// format and values to fail() (launch_check.cpp, host compiler), which formats them as fmt::format would. The message
// is built only when a check fails, not on every launch.
#include <cstdint>
#include <initializer_list>
#include <string_view>
#include <type_traits>
#include <variant>

#include "backend/cuda/ops.h"
#include "device/cuda_check.h"

namespace orcd::cuda::detail {

// One value of a message. A float stays a float (fmt prints 1e-05f as "1e-05", its double as 9.99999974737875e-06).
using MessageArg = std::variant<int64_t, uint64_t, float, double, std::string_view>;

template <class T>
MessageArg message_arg(const T& v) {
    if constexpr (std::is_integral_v<T> && std::is_signed_v<T>) {
        return static_cast<int64_t>(v);
    } else if constexpr (std::is_integral_v<T>) {
        return static_cast<uint64_t>(v);
    } else {
        return MessageArg(v);
    }
}

// Throws InvalidArgument "cuda <op>: <what formatted with args>" (fmt's format syntax).
[[noreturn]] void fail(const char* op, std::string_view what, std::initializer_list<MessageArg> args);

template <class... A>
void require(bool ok, const char* op, std::string_view what, const A&... args) {
    if (!ok) fail(op, what, {message_arg(args)...});
}

// The checks more than one op makes (launch_check.cpp):
// the normalizations' epsilon: finite and >= 0;
void require_epsilon(float eps, const char* op);
// RoPE's rotated dimensions (rope, both qkv_rope_store): even, and within the head;
void require_rotary(int n_rot, int head_dim, const char* op);
// an rms norm over rows (rms_norm, rms_norm_to_f16): n_tokens rows of n (the row count fits the kernels' 32-bit grid)
// and the epsilon;
void require_norm_rows(int64_t n_tokens, int64_t n, float eps, const char* op);
// a decode step's KV cache view: K and V buffers, its sizes, and a page geometry when paged;
void require_kv(const KvCacheView& kv, const char* op);
// a batch of decode columns (qkv_rope_store, attention_decode): the view, 1 .. 65535 columns with their positions,
// and whole groups of query heads per KV head.
void require_decode_columns(const KvCacheView& kv, int n_cols, const DecodeColumns& cols, int n_heads, const char* op);

inline void check_launch() { ORCD_CUDA_CHECK(cudaGetLastError()); }

}  // namespace orcd::cuda::detail
