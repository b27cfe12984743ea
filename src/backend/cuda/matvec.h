#pragma once
// Decode-time matrix-vector products on quantized weights resident in device memory: y = W x, where W has `rows`
// rows of `cols` elements stored in their GGUF type (each row row_bytes(type, cols) bytes, rows contiguous) and x is
// f32. Each kernel dequantizes in registers and reads every weight byte once; reductions run in a fixed order, so the
// same inputs give bit-identical outputs on every run.
#include <cstdint>
#include <cuda_runtime_api.h>

#include "gguf/types.h"

namespace orcd::cuda {

// Whether matvec() has a kernel for the type.
bool matvec_supported(gguf::TensorType type);

// y[r] = sum_c W[r, c] * x[c] for r < rows. Throws orcd::Error(UnsupportedTensorType) for types without a kernel and
// InvalidArgument when cols is not a multiple of the type's block size or x is not 16-byte aligned. Launches on
// `stream`; does not synchronize.
void matvec(gguf::TensorType type, const void* weights, int64_t rows, int64_t cols, const float* x, float* y,
            cudaStream_t stream);

}  // namespace orcd::cuda
