#pragma once
// Weight dequantization on the device: whole matrices to f16 (the operand of the tensor-core GEMMs, gemm.h, in
// prefill and with `--weights f16`) and embedding rows to f32 (a batch of tokens here; decode's single row is ops.h's
// embedding_row, which runs the same kernels). Every quantized element is its format's decode8 (quant/formats/), the
// function the CPU reference quant::dequantize_row runs, so the f32 values are bit-identical to it. Launches on
// `stream`; does not synchronize.
#include <cstdint>
#include <cuda_runtime_api.h>

#include <span>

#include "gguf/types.h"

namespace orcd::cuda {

// Whether dequantize_to_f16 has a kernel for the type (every type matvec_supported() accepts).
bool dequant_f16_supported(gguf::TensorType type);

// dst[r][c] = f16(dequantize(W)[r][c]) for a [rows][cols] matrix stored in `type` (rows contiguous, as in GGUF): the
// f32 value the CPU reference (quant::dequantize_row) computes, rounded to nearest f16 (values beyond the f16 range
// become +-inf). dst must be 16-byte aligned. Throws UnsupportedTensorType / InvalidArgument.
void dequantize_to_f16(gguf::TensorType type, const void* src, int64_t rows, int64_t cols, uint16_t* dst,
                       cudaStream_t stream);

// One matrix of a dequantize_many_to_f16 launch, as dequantize_to_f16 takes it.
struct DequantJob {
    gguf::TensorType type = gguf::TensorType::Q8_0;
    const void* src = nullptr;
    int64_t rows = 0, cols = 0;
    uint16_t* dst = nullptr;
};
inline constexpr int kMaxDequantJobs = 8;

// dequantize_to_f16 of 1 .. kMaxDequantJobs matrices of block formats (not F32/F16/BF16) in one launch: the same
// values. The batched prefill dequantizes a layer's matrices this way, one launch instead of one per matrix (a
// short prefill's time is mostly launches). Throws UnsupportedTensorType / InvalidArgument, naming the matrix.
void dequantize_many_to_f16(std::span<const DequantJob> jobs, cudaStream_t stream);

// out[t] = row tokens[t] of a [rows][cols] table (the token embedding) as f32, for t < n_tokens; tokens in device
// memory, each in [0, rows) (checked by the caller). The same values as embedding_row.
void embedding_rows(gguf::TensorType type, const void* table, int64_t cols, const int32_t* tokens, int64_t n_tokens,
                    float* out, cudaStream_t stream);

}  // namespace orcd::cuda
