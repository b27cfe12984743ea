#pragma once
// The one way CUDA runtime calls are checked in the loader: a failure becomes orcd::Error naming the call, the source
// location and the runtime's message. Only the device layer includes this header.
#include <cuda_runtime_api.h>

#include "common/error.h"

namespace orcd::device {

[[noreturn]] void throw_cuda_error(cudaError_t err, const char* call, const char* file, int line, ErrorCode code);
// For destructors, which must not throw: prints the same message to stderr.
void report_cuda_error(cudaError_t err, const char* call, const char* file, int line) noexcept;

inline void cuda_check(cudaError_t err, const char* call, const char* file, int line,
                       ErrorCode code = ErrorCode::Device) {
    if (err != cudaSuccess) throw_cuda_error(err, call, file, line, code);
}

}  // namespace orcd::device

#define ORCD_CUDA_CHECK(call) ::orcd::device::cuda_check((call), #call, __FILE__, __LINE__)
#define ORCD_CUDA_CHECK_AS(code, call) ::orcd::device::cuda_check((call), #call, __FILE__, __LINE__, (code))
#define ORCD_CUDA_WARN(call)                                                                                   \
    do {                                                                                                       \
        const cudaError_t orcd_err_ = (call);                                                                  \
        if (orcd_err_ != cudaSuccess) ::orcd::device::report_cuda_error(orcd_err_, #call, __FILE__, __LINE__); \
    } while (0)
