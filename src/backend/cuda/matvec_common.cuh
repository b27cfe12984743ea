#pragma once
// What the fused matvec kernels share (matvec_fused.cu on f32 activations, matvec_q8.cu on int8 ones): finding a
// logical row's source matrix, filling the kernel parameters from the op's row sources, and the output step.
#include <cstdint>

#include "backend/cuda/matvec_fused.h"
#include "gguf/types.h"

namespace orcd::cuda {

// One row source of a fused matvec's logical matrix, as the kernels see it.
struct MatvecSource {
    gguf::TensorType type;
    const uint8_t* w;
    int64_t row_bytes;
    int64_t rows;
};

// Logical row -> its source (r becomes the row within it), for kernel parameters with `src[3]` and `n_src`. Copies
// with constant indices only: a dynamic index into the parameter array would make the compiler copy it to local memory.
template <typename Params>
__device__ __forceinline__ auto locate_source(const Params& p, int64_t& r) {
    auto s = p.src[0];
    if (p.n_src > 1 && r >= s.rows) {
        r -= s.rows;
        s = p.src[1];
        if (p.n_src > 2 && r >= s.rows) {
            r -= s.rows;
            s = p.src[2];
        }
    }
    return s;
}

// Issues L2 prefetches of the weights of output row o (and, for SwiGLU, of its up row o + n_out), 128-byte lines
// first, first + stride, ...: the kernels call it before their pdl_wait() (pdl.cuh), so that the rows stream in while
// the previous kernel finishes. Weights are never written by a kernel, so reading them early is safe.
template <typename Params>
__device__ __forceinline__ void prefetch_row_l2(const Params& p, int64_t o, int first, int stride) {
    if (o >= p.n_out) return;
    for (int h = 0; h < (p.epilogue == 2 ? 2 : 1); ++h) {
        int64_t r = o + h * p.n_out;
        const auto s = locate_source(p, r);
        const uint8_t* row = s.w + r * s.row_bytes;
        for (int64_t k = static_cast<int64_t>(first) * 128; k < s.row_bytes; k += static_cast<int64_t>(stride) * 128) {
            asm volatile("prefetch.global.L2 [%0];\n" ::"l"(row + k));
        }
    }
}

// Sets the fields of kernel parameters `p` that describe the logical matrix and the output (cols, n_src, src, epilogue,
// y, n_out) from an op (FusedMatvec or Q8Matvec); block_bytes / block_elems give a source type's block geometry.
template <typename Params, typename Op, typename BlockBytes, typename BlockElems>
void set_row_sources(Params& p, const Op& op, BlockBytes block_bytes, BlockElems block_elems) {
    p.cols = static_cast<int>(op.cols);
    p.n_src = op.n_src;
    int64_t rows = 0;
    for (int i = 0; i < op.n_src; ++i) {
        const RowSource& r = op.src[i];
        p.src[i] = {r.type, static_cast<const uint8_t*>(r.w), op.cols / block_elems(r.type) * block_bytes(r.type),
                    r.rows};
        rows += r.rows;
    }
    for (int i = op.n_src; i < 3; ++i) p.src[i] = p.src[op.n_src - 1];
    p.epilogue = static_cast<int>(op.epilogue);
    p.y = op.y;
    p.n_out = op.epilogue == MatvecEpilogue::SwiGLU ? rows / 2 : rows;
}

// Store, accumulate into the residual stream, or SwiGLU of the gate (a) and up (b) dot products.
// Epilogue codes: the MatvecEpilogue values of matvec_fused.h.
__device__ __forceinline__ void matvec_epilogue_store(float* y, int64_t out, float a, float b, int epilogue) {
    if (epilogue == 0) {
        y[out] = a;
    } else if (epilogue == 1) {
        y[out] = y[out] + a;
    } else {
        y[out] = __fmul_rn(a / (1.f + expf(-a)), b);  // as swiglu_kernel
    }
}

}  // namespace orcd::cuda
