#pragma once
// y = W x for a weight matrix stored in any supported GGUF type, straight from the (mmapped) file bytes: quantized
// rows are never expanded to f32 as a whole; each dot product unpacks one block at a time (quant_dot.h).
#include <cstddef>
#include <cstdint>

#include "backend/backend.h"
#include "backend/cpu/thread_pool.h"
#include "gguf/types.h"

namespace orcd::backend::cpu {

// A weight matrix of `rows` rows of `cols` elements each (GGUF's ne0 = cols), rows contiguous, in `type`.
struct WeightView {
    gguf::TensorType type = gguf::TensorType::F32;
    const std::byte* data = nullptr;
    int64_t rows = 0;
    int64_t cols = 0;

    uint64_t row_bytes() const { return gguf::row_bytes(type, static_cast<uint64_t>(cols)); }
    const std::byte* row(int64_t r) const { return data + static_cast<uint64_t>(r) * row_bytes(); }
    // A view of rows [first, first + count): phi3's fused tensors are split this way (no copy).
    WeightView slice_rows(int64_t first, int64_t count) const { return {type, row(first), count, cols}; }
};

// Throws orcd::Error(UnsupportedTensorType) when the backend has no kernel for w.type, or InvalidArgument when cols is
// not a multiple of the type's block size and of 32.
void check_matmul_weight(const WeightView& w, const char* name);

// How a quantized weight row meets the activation: the backend layer's definition (backend.h), shared with CUDA.
using backend::Activations;

// y[t * w.rows + r] = sum_c W[r, c] * x[t * w.cols + c] for t in [0, n_tokens): one activation per row of x.
// n_tokens == 1 is the decode matrix-vector product; larger n_tokens is prefill's matrix-matrix product, which reads
// each weight row once for all tokens (the row stays in L1 while the tokens' activations stream from L2).
// Rows are split across the pool's threads.
void matmul(const WeightView& w, const float* x, int64_t n_tokens, float* y, ThreadPool& pool,
            Activations act = Activations::Int8);

// Same, forcing the scalar kernels (tests compare both paths).
void matmul_scalar(const WeightView& w, const float* x, int64_t n_tokens, float* y, ThreadPool& pool);

}  // namespace orcd::backend::cpu
