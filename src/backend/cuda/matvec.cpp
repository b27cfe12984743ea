#include "backend/cuda/matvec.h"

#include <fmt/format.h>

#include "backend/cuda/matvec_kernels.h"
#include "common/error.h"
#include "loader/cuda_check.h"

namespace orcd::cuda {

using gguf::TensorType;

bool matvec_supported(TensorType type) {
    switch (type) {
        case TensorType::F32: case TensorType::F16: case TensorType::BF16: case TensorType::Q4_0:
        case TensorType::Q4_1: case TensorType::Q5_0: case TensorType::Q5_1: case TensorType::Q8_0:
        case TensorType::Q4_K: case TensorType::Q5_K: case TensorType::Q6_K: return true;
        default: return false;
    }
}

void matvec(TensorType type, const void* w, int64_t rows, int64_t cols, const float* x, float* y, cudaStream_t s) {
    if (!matvec_supported(type)) {
        throw Error(ErrorCode::UnsupportedTensorType,
                    fmt::format("no CUDA matrix-vector kernel for tensor type {}", gguf::type_name(type)));
    }
    if (rows <= 0 || cols <= 0 || cols % gguf::traits(type).block_elems != 0) {
        throw Error(ErrorCode::InvalidArgument,
                    fmt::format("matvec: {} x {} is not a valid {} matrix (row length must be a positive multiple "
                                "of {})", rows, cols, gguf::type_name(type), gguf::traits(type).block_elems));
    }
    // The kernels read x four floats at a time.
    if (reinterpret_cast<uintptr_t>(x) % 16 != 0) {
        throw Error(ErrorCode::InvalidArgument, "matvec: x must be 16-byte aligned");
    }
    launch_matvec(type, w, rows, cols, x, y, s);
    ORCD_CUDA_CHECK(cudaGetLastError());
}

}  // namespace orcd::cuda
