#pragma once
// Launches for matvec_q8.cu, apart from the checked entry points (matvec_q8.cpp) so the .cu needs no fmt.
#include <cstdint>
#include <cuda_runtime_api.h>

#include "backend/cuda/matvec_q8.h"

namespace orcd::cuda {

int64_t q8_block_bytes(gguf::TensorType type);  // 0: no dp4a kernel for the type
int q8_threads_per_row(int64_t n_out, int64_t cols);
void launch_quantize_q8(const float* x, const float* norm, float eps, int64_t cols, int8_t* q, float* d,
                        cudaStream_t stream);
void launch_q8_matvec(const Q8Matvec& op, cudaStream_t stream);

}  // namespace orcd::cuda
