#pragma once
// Decode matvecs with their neighbours fused in (one launch instead of two to four): an RMSNorm of x computed by
// every block before its rows (prologue), and the residual add or SwiGLU written in the epilogue. The logical matrix
// is the concatenation of up to three row sources of any types (separate Q, K, V matrices of different GGUF types
// are one launch). Rows are read straight from global memory with several warps per row when a matrix has few rows,
// so that 896-row matrices still give every SM work; x is staged in shared memory once per block.
//
// Reductions have a fixed order (the norm's as rms_norm's, the per-row sums as the plain matvec's): bit-identical
// outputs from run to run.
#include <cstdint>
#include <cuda_runtime_api.h>

#include "gguf/types.h"

namespace orcd::cuda {

// Rows [0, rows) of a matrix of `cols`-element rows stored in `type` (rows contiguous, GGUF row bytes apart).
struct RowSource {
    gguf::TensorType type = gguf::TensorType::F32;
    const void* w = nullptr;
    int64_t rows = 0;
};

enum class MatvecEpilogue {
    Store,       // y[r] = (W x)[r]
    Accumulate,  // y[r] += (W x)[r]            (residual connection)
    SwiGLU,      // y[i] = silu((W x)[i]) * (W x)[n + i] for i < n, n = logical rows / 2 ([gate | up] rows)
};

struct FusedMatvec {
    const float* x = nullptr;  // [cols], 16-byte aligned
    int64_t cols = 0;
    const float* norm = nullptr;  // when set: x is replaced by rms_norm(x) * norm (as ops.h's rms_norm) first
    float eps = 0.0f;
    RowSource src[3];  // the logical matrix: src[0] rows, then src[1] rows, then src[2] rows
    int n_src = 0;
    MatvecEpilogue epilogue = MatvecEpilogue::Store;
    float* y = nullptr;  // [logical rows] (Store, Accumulate) or [logical rows / 2] (SwiGLU)
};

// Whether fused_matvec() has kernels for every source's type and room for x in shared memory.
bool fused_matvec_supported(const FusedMatvec& op);

// Enqueues op on `stream`. Throws orcd::Error (UnsupportedTensorType, InvalidArgument) when not supported or
// malformed (no source, cols not a multiple of a type's block, odd row count for SwiGLU, unaligned x). Does not
// synchronize. The first call per shared-memory size queries the device (do it outside of graph capture).
void fused_matvec(const FusedMatvec& op, cudaStream_t stream);

// The checks both fused matvec families (this one, and matvec_q8.h's) make of their row sources: a kernel for each
// type (`supported`; UnsupportedTensorType naming `kind` otherwise), rows > 0, weights present and 2-byte aligned,
// cols a multiple of each type's block, an even row count for SwiGLU (InvalidArgument prefixed by `op_name`).
// Returns the logical matrix's row count.
int64_t check_row_sources(const RowSource* src, int n_src, int64_t cols, MatvecEpilogue epilogue,
                          bool (*supported)(gguf::TensorType), const char* op_name, const char* kind);

// Warps per output row the launch would use (for benchmarks and tests; ORCD_MATVEC_WPR=1|2|4|8 overrides).
int fused_matvec_warps_per_row(int64_t n_out, int64_t cols);

}  // namespace orcd::cuda
