#include "backend/cuda/gemm.h"

#include <cublas_v2.h>
#include <fmt/format.h>

#include "common/error.h"

namespace orcd::cuda {

namespace {

void check(cublasStatus_t st, const char* what) {
    if (st != CUBLAS_STATUS_SUCCESS) {
        throw Error(ErrorCode::Device,
                    fmt::format("cuBLAS {}: {} ({})", what, cublasGetStatusName(st), cublasGetStatusString(st)));
    }
}

}  // namespace

Gemm::Gemm(cudaStream_t stream, void* workspace, size_t workspace_bytes) {
    cublasHandle_t h = nullptr;
    check(cublasCreate(&h), "cublasCreate");
    handle_ = h;
    try {
        check(cublasSetStream(h, stream), "cublasSetStream");
        check(cublasSetWorkspace(h, workspace, workspace_bytes), "cublasSetWorkspace");
        check(cublasSetMathMode(h, CUBLAS_DEFAULT_MATH), "cublasSetMathMode");
    } catch (...) {
        cublasDestroy(h);
        throw;
    }
}

Gemm::~Gemm() {
    if (handle_) cublasDestroy(static_cast<cublasHandle_t>(handle_));
}

void Gemm::run(const uint16_t* w, int64_t rows, int64_t cols, const uint16_t* x, int64_t n, float* y, int64_t ldy,
               bool accumulate) {
    // Column-major view: W is [cols x rows] (lda = cols), X is [cols x n] (ldb = cols), Y is [rows x n] (ldc = ldy);
    // Y = W^T X.
    const float alpha = 1.f, beta = accumulate ? 1.f : 0.f;
    check(cublasGemmEx(static_cast<cublasHandle_t>(handle_), CUBLAS_OP_T, CUBLAS_OP_N, static_cast<int>(rows),
                       static_cast<int>(n), static_cast<int>(cols), &alpha, w, CUDA_R_16F, static_cast<int>(cols), x,
                       CUDA_R_16F, static_cast<int>(cols), &beta, y, CUDA_R_32F, static_cast<int>(ldy),
                       CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT),
          "cublasGemmEx");
}

}  // namespace orcd::cuda
