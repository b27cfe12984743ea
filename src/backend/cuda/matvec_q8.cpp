// Checked entry points of the int8-activation matvec (kernels in matvec_q8.cu, which stays free of fmt).
#include "backend/cuda/matvec_q8.h"

#include <fmt/format.h>

#include "backend/cuda/matvec_q8_kernels.h"
#include "common/error.h"
#include "loader/cuda_check.h"

namespace orcd::cuda {

using gguf::TensorType;

namespace {
int64_t round256(int64_t n) { return (n + 255) / 256 * 256; }
}  // namespace

int64_t q8_vector_bytes(int64_t cols) { return round256(cols) + round256(cols / kQ8Block * 4); }

Q8Vector q8_vector_at(void* base, int64_t cols) {
    auto* b = static_cast<std::byte*>(base);
    return {reinterpret_cast<int8_t*>(b), reinterpret_cast<float*>(b + round256(cols))};
}

void quantize_q8(const float* x, const float* norm, float eps, int64_t cols, Q8Vector out, cudaStream_t stream) {
    if (cols <= 0 || cols % kQ8Block != 0) {
        throw Error(ErrorCode::InvalidArgument,
                    fmt::format("quantize_q8: length {} is not a positive multiple of {}", cols, kQ8Block));
    }
    if (reinterpret_cast<uintptr_t>(out.q) % 16 != 0) {
        throw Error(ErrorCode::InvalidArgument, "quantize_q8: q must be 16-byte aligned");
    }
    launch_quantize_q8(x, norm, eps, cols, out.q, out.d, stream);
    ORCD_CUDA_CHECK(cudaGetLastError());
}

bool q8_matvec_type_supported(TensorType t) { return q8_block_bytes(t) > 0; }

bool q8_matvec_supported(const Q8Matvec& op) {
    if (op.n_src < 1 || op.n_src > 3 || op.cols <= 0) return false;
    for (int i = 0; i < op.n_src; ++i) {
        if (!q8_matvec_type_supported(op.src[i].type)) return false;
        if (op.cols % gguf::traits(op.src[i].type).block_elems != 0) return false;
    }
    return true;
}

int q8_matvec_threads_per_row(int64_t n_out, int64_t cols) { return q8_threads_per_row(n_out, cols); }

void q8_matvec(const Q8Matvec& op, cudaStream_t stream) {
    auto bad = [](std::string what) { throw Error(ErrorCode::InvalidArgument, "q8_matvec: " + what); };
    if (op.n_src < 1 || op.n_src > 3) bad(fmt::format("needs 1 to 3 row sources, got {}", op.n_src));
    if (op.cols <= 0 || op.cols % kQ8Block != 0) {
        bad(fmt::format("row length {} is not a positive multiple of {}", op.cols, kQ8Block));
    }
    check_row_sources(op.src, op.n_src, op.cols, op.epilogue, q8_matvec_type_supported, "q8_matvec",
                      "int8-activation CUDA matvec");
    if (reinterpret_cast<uintptr_t>(op.x.q) % 16 != 0 || op.x.d == nullptr) bad("x.q must be 16-byte aligned, x.d set");
    launch_q8_matvec(op, stream);
    ORCD_CUDA_CHECK(cudaGetLastError());
}

}  // namespace orcd::cuda
