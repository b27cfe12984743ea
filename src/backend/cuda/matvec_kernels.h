#pragma once
// Kernel launches for matvec.cu, kept apart from the checked public entry point (matvec.cpp) so that the .cu file
// needs no formatting library (fmt's compile-time checks do not build under nvcc).
#include <cstdint>
#include <cuda_runtime_api.h>

#include "backend/cuda/matvec_fused.h"
#include "gguf/types.h"

namespace orcd::cuda {

// Launches the kernel for `type`; returns false when there is none. Arguments are validated by the caller.
bool launch_matvec(gguf::TensorType type, const void* weights, int64_t rows, int64_t cols, const float* x, float* y,
                   cudaStream_t stream);

// matvec_fused.cu. x is staged in shared memory: at most kFusedMaxCols floats.
inline constexpr int64_t kFusedMaxCols = 16384;
bool fused_matvec_type_supported(gguf::TensorType type);
int fused_warps_per_row(int64_t n_out, int64_t cols);
void launch_fused_matvec(const FusedMatvec& op, cudaStream_t stream);

}  // namespace orcd::cuda
