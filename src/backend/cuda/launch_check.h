#pragma once
// Argument checks and launch-error checks shared by the host side of the CUDA ops (ops.cpp, prefill_ops.cpp): a bad
// argument is an InvalidArgument naming the op; a failed launch is the runtime's error. Host code only.
#include <fmt/format.h>

#include <cmath>
#include <cstdint>
#include <string_view>

#include "common/error.h"
#include "device/cuda_check.h"

namespace orcd::cuda::detail {

inline void require(bool ok, const char* op, std::string_view what) {
    if (!ok) throw Error(ErrorCode::InvalidArgument, fmt::format("cuda {}: {}", op, what));
}

// The normalizations' epsilon: finite and >= 0.
inline void require_epsilon(float eps, const char* op) {
    require(std::isfinite(eps) && eps >= 0.0f, op, fmt::format("epsilon {} is not a finite value >= 0", eps));
}

// The arguments of an rms norm over rows (rms_norm, rms_norm_to_f16): n_tokens rows of n (the row count fits the
// kernels' 32-bit grid) and the epsilon.
inline void require_norm_rows(int64_t n_tokens, int64_t n, float eps, const char* op) {
    require(n_tokens > 0 && n > 0 && n_tokens <= INT32_MAX, op, "needs n_tokens > 0 and n > 0");
    require_epsilon(eps, op);
}

inline void check_launch() { ORCD_CUDA_CHECK(cudaGetLastError()); }

}  // namespace orcd::cuda::detail
