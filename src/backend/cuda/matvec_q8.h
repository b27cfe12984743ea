#pragma once
// Decode matvecs against an 8-bit activation (the CPU backend's Activations::Int8 definition, cpu/quant_dot.h): the
// activation is quantized once into blocks of 32 (d = max|x| / 127, q = round-half-even(x * 127 / max|x|)) by
// quantize_q8, into a device buffer that every matrix reading that input shares; the matvec kernels then take the
// dot product of each 32-weight unit with __dp4a on 4-byte loads of the quantized weights and apply the weight and
// activation scales once per unit (llama.cpp's mmvq, with the CPU's 32-wide activation blocks for every type).
//
// Error (what tests check): the quantization error of quant_dot.h, |dot_q - dot| <= sum_b (d_b / 2) sum_{j in b}|w_j|,
// plus f32 rounding of the per-unit products and sums. The integer sums are exact, so against the CPU's int8 matmul
// on the same x the difference is f32 rounding only, except where x * 127 / max|x| lands within an ulp of a .5
// boundary and the two sides round it to neighbouring q (one step, d_b * |w_j| on that one product).
//
// Reductions have a fixed order: bit-identical outputs from run to run.
#include <cstdint>
#include <cuda_runtime_api.h>

#include "backend/cuda/matvec_fused.h"
#include "gguf/types.h"

namespace orcd::cuda {

inline constexpr int kQ8Block = 32;

// A quantized activation in device memory: q[cols] int8 values, d[cols / 32] scales and s[cols / 16] the sums of each
// 16 values of q (q: 16-byte aligned). The sums serve the formats with a minimum or an offset, whose unit multiplies
// them by a weight-side constant: computed once here instead of once per weight row.
struct Q8Vector {
    int8_t* q = nullptr;
    float* d = nullptr;
    int32_t* s = nullptr;
};

// Bytes of a Q8Vector's q, d and s for cols values, each part rounded up to 256 bytes (for carving one buffer).
int64_t q8_vector_bytes(int64_t cols);
// Lays out a Q8Vector of cols values at base (256-byte aligned), as q8_vector_bytes counts.
Q8Vector q8_vector_at(void* base, int64_t cols);

// out = quantize(x), or quantize(rms_norm(x) * norm) when norm is set (the normalized values bit-identical to
// rms_norm()'s). cols a multiple of 32. Throws InvalidArgument otherwise.
void quantize_q8(const float* x, const float* norm, float eps, int64_t cols, Q8Vector out, cudaStream_t stream);
// The same for n_cols columns: column c reads x + c * x_stride and writes the Q8Vector at byte offset
// c * q8_vector_bytes(cols) from out (the layout q8_vector_at gives column 0). Each column is quantized exactly as
// quantize_q8 does it alone.
void quantize_q8_columns(const float* x, int64_t x_stride, int n_cols, const float* norm, float eps, int64_t cols,
                         Q8Vector out, cudaStream_t stream);

// y = W x with x a Q8Vector: the logical matrix is the concatenation of up to three row sources (types may differ),
// epilogues as the fused matvec's (Store, Accumulate, SwiGLU). With n_cols > 1, W times n_cols activation columns
// (the Q8Vectors quantize_q8_columns lays out, q8_vector_bytes(cols) bytes apart), column c's output at
// y + c * y_stride: each weight row is read from memory once for all columns, and every column is computed with the
// same per-thread partial sums and the same reduction tree whatever n_cols is (batch invariance: column c's output is
// bit-identical for every n_cols).
struct Q8Matvec {
    Q8Vector x;
    int64_t cols = 0;
    RowSource src[3];
    int n_src = 0;
    MatvecEpilogue epilogue = MatvecEpilogue::Store;
    float* y = nullptr;
    int n_cols = 1;
    int64_t y_stride = 0;  // floats between the output columns
    // The fewest columns that take the tensor-core kernel; 0: ORCD_Q8_MMA_MIN_COLS, else 8 (matvec_q8.cu). Tests set
    // it to run that kernel at any batch size.
    int mma_min_cols = 0;
    // The tensor-core kernel's columns (8, 16, 32) and warps (4, 8, 16) a block, and blocks a tile (1, 2, 4, 8: a
    // cluster); 0: the tuning override, else by shape (matvec_q8_mma.cu). Tests set them to cover every split; no bit
    // depends on them.
    int mma_block_cols = 0;
    int mma_warps = 0;
    int mma_cluster = 0;
    // What its blocks stage in shared memory (kQ8MmaStage* bits of matvec_q8_kernels.cuh: 1 weights, 2 columns, 4 a
    // second weight buffer; -1 nothing) and the most blocks it launches (blocks loop over the tiles); 0: the tuning
    // override, else all that fits and as many blocks as run at once. Tests set them; no bit depends on them.
    int mma_stage = 0;
    int mma_max_blocks = 0;
};

// Types with a dp4a kernel: Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q4_K, Q5_K, Q6_K.
bool q8_matvec_type_supported(gguf::TensorType type);
bool q8_matvec_supported(const Q8Matvec& op);
// Enqueues op. Throws orcd::Error (UnsupportedTensorType, InvalidArgument) when unsupported or malformed. Batches of
// 8 columns and more (op.mma_min_cols, ORCD_Q8_MMA_MIN_COLS override) run on tensor cores (matvec_q8_mma.cu) when
// every 16-row tile of the matrix has one type; each column's output is bit-identical to the dp4a kernel's.
void q8_matvec(const Q8Matvec& op, cudaStream_t stream);
// Whether q8_matvec(op) would take the tensor-core kernel (tests: the path a bit-identity check covers). Throws as
// q8_matvec.
bool q8_matvec_uses_mma(const Q8Matvec& op);

// Threads per output row the launch would use (8 .. 256; ORCD_Q8_TPR overrides).
int q8_matvec_threads_per_row(int64_t n_out, int64_t cols);

}  // namespace orcd::cuda
