// Checked entry point of the fused decode matvec (kernels in matvec_fused.cu, which stays free of fmt).
#include "backend/cuda/matvec_fused.h"

#include <fmt/format.h>

#include "backend/cuda/matvec_kernels.h"
#include "common/error.h"
#include "loader/cuda_check.h"

namespace orcd::cuda {

using gguf::TensorType;

bool fused_matvec_supported(const FusedMatvec& op) {
    if (op.n_src < 1 || op.n_src > 3 || op.cols <= 0 || op.cols > kFusedMaxCols) return false;
    for (int i = 0; i < op.n_src; ++i) {
        if (!fused_matvec_type_supported(op.src[i].type)) return false;
    }
    return true;
}

int64_t check_row_sources(const RowSource* src, int n_src, int64_t cols, MatvecEpilogue epilogue,
                          bool (*supported)(gguf::TensorType), const char* op_name, const char* kind) {
    auto bad = [op_name](const std::string& what) {
        throw Error(ErrorCode::InvalidArgument, fmt::format("{}: {}", op_name, what));
    };
    int64_t rows = 0;
    for (int i = 0; i < n_src; ++i) {
        const RowSource& s = src[i];
        if (!supported(s.type)) {
            throw Error(ErrorCode::UnsupportedTensorType,
                        fmt::format("no {} kernel for tensor type {}", kind, gguf::type_name(s.type)));
        }
        const int64_t be = gguf::traits(s.type).block_elems;
        if (cols % be != 0) {
            bad(fmt::format("row length {} is not a multiple of the {} block size {}", cols, gguf::type_name(s.type),
                            be));
        }
        if (s.rows <= 0 || s.w == nullptr) bad(fmt::format("row source {} has {} rows", i, s.rows));
        if (reinterpret_cast<uintptr_t>(s.w) % 2 != 0) bad(fmt::format("row source {} is not 2-byte aligned", i));
        rows += s.rows;
    }
    if (epilogue == MatvecEpilogue::SwiGLU && rows % 2 != 0) {
        bad(fmt::format("SwiGLU needs [gate | up] rows, an even count; got {}", rows));
    }
    return rows;
}

int fused_matvec_warps_per_row(int64_t n_out, int64_t cols) { return fused_warps_per_row(n_out, cols); }

void fused_matvec(const FusedMatvec& op, cudaStream_t stream) {
    auto bad = [](std::string what) { throw Error(ErrorCode::InvalidArgument, "fused_matvec: " + what); };
    if (op.n_src < 1 || op.n_src > 3) bad(fmt::format("needs 1 to 3 row sources, got {}", op.n_src));
    if (op.cols <= 0 || op.cols > kFusedMaxCols) {
        bad(fmt::format("row length {} outside 1 .. {} (x is staged in shared memory)", op.cols, kFusedMaxCols));
    }
    if (op.cols % 4 != 0) bad(fmt::format("row length {} is not a multiple of 4", op.cols));
    check_row_sources(op.src, op.n_src, op.cols, op.epilogue, fused_matvec_type_supported, "fused_matvec",
                      "fused CUDA matvec");
    if (reinterpret_cast<uintptr_t>(op.x) % 16 != 0) bad("x must be 16-byte aligned");
    launch_fused_matvec(op, stream);
    ORCD_CUDA_CHECK(cudaGetLastError());
}

}  // namespace orcd::cuda
