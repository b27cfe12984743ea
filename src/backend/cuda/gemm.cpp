#include "backend/cuda/gemm.h"

#include <fmt/format.h>

#include "backend/cuda/cublas_library.h"
#include "common/error.h"

namespace orcd::cuda {

namespace {

void check(cublasStatus_t st, const char* what) {
    if (st != CUBLAS_STATUS_SUCCESS) {
        throw Error(ErrorCode::Device,
                    fmt::format("cuBLAS {}: {} ({})", what, cublas().status_name(st), cublas().status_string(st)));
    }
}

}  // namespace

Gemm::Gemm(cudaStream_t stream, void* workspace, size_t workspace_bytes) {
    const CublasLibrary& lib = cublas();
    cublasHandle_t h = nullptr;
    check(lib.create(&h), "cublasCreate");
    handle_ = h;
    try {
        check(lib.set_stream(h, stream), "cublasSetStream");
        check(lib.set_workspace(h, workspace, workspace_bytes), "cublasSetWorkspace");
        check(lib.set_math_mode(h, CUBLAS_DEFAULT_MATH), "cublasSetMathMode");
    } catch (...) {
        lib.destroy(h);
        throw;
    }
}

Gemm::~Gemm() {
    if (handle_) cublas().destroy(static_cast<cublasHandle_t>(handle_));  // a handle exists: the library is open
}

void Gemm::run(const uint16_t* w, int64_t rows, int64_t cols, const uint16_t* x, int64_t n, float* y, int64_t ldy,
               bool accumulate) {
    // Column-major view: W is [cols x rows] (lda = cols), X is [cols x n] (ldb = cols), Y is [rows x n] (ldc = ldy);
    // Y = W^T X.
    const float alpha = 1.f, beta = accumulate ? 1.f : 0.f;
    check(cublas().gemm_ex(static_cast<cublasHandle_t>(handle_), CUBLAS_OP_T, CUBLAS_OP_N, static_cast<int>(rows),
                           static_cast<int>(n), static_cast<int>(cols), &alpha, w, CUDA_R_16F, static_cast<int>(cols),
                           x, CUDA_R_16F, static_cast<int>(cols), &beta, y, CUDA_R_32F, static_cast<int>(ldy),
                           CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT),
          "cublasGemmEx");
}

}  // namespace orcd::cuda
