#pragma once
// Argument checks and launch-error checks shared by the host side of the CUDA ops (ops.cpp, prefill_ops.cpp): a bad
// argument is an InvalidArgument naming the op; a failed launch is the runtime's error. Host code only.
#include <fmt/format.h>

#include <string_view>

#include "common/error.h"
#include "device/cuda_check.h"

namespace orcd::cuda::detail {

inline void require(bool ok, const char* op, std::string_view what) {
    if (!ok) throw Error(ErrorCode::InvalidArgument, fmt::format("cuda {}: {}", op, what));
}

inline void check_launch() { ORCD_CUDA_CHECK(cudaGetLastError()); }

}  // namespace orcd::device::detail
