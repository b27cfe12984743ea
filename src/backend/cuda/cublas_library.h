#pragma once
// cuBLASLt, opened the first time the CUDA backend asks for it instead of linked into every program. Linking the
// cuBLAS libraries (540 MB) made each process pay their static initialization at start: `orcd --version`, a CPU-only
// `orcd serve`, every test executable that links the CUDA backend. On the development machine that was 0.7 s and
// 217 MB resident per process, for a library that only the CUDA prefill's matrix products use. cuBLASLt, not cuBLAS:
// its products run with an algorithm the caller fixes (gemm.h), where cublasGemmEx picks one for every call's shape.
#include <cublasLt.h>

#include <optional>
#include <string>

namespace orcd::cuda {

// The functions gemm.cpp calls, resolved from libcublasLt.so.<major of the headers>.
struct CublasLibrary {
    cublasStatus_t (*create)(cublasLtHandle_t*);
    cublasStatus_t (*destroy)(cublasLtHandle_t);
    cublasStatus_t (*desc_create)(cublasLtMatmulDesc_t*, cublasComputeType_t, cudaDataType_t);
    cublasStatus_t (*desc_destroy)(cublasLtMatmulDesc_t);
    cublasStatus_t (*desc_set)(cublasLtMatmulDesc_t, cublasLtMatmulDescAttributes_t, const void*, size_t);
    cublasStatus_t (*layout_create)(cublasLtMatrixLayout_t*, cudaDataType, uint64_t, uint64_t, int64_t);
    cublasStatus_t (*layout_destroy)(cublasLtMatrixLayout_t);
    cublasStatus_t (*preference_create)(cublasLtMatmulPreference_t*);
    cublasStatus_t (*preference_destroy)(cublasLtMatmulPreference_t);
    cublasStatus_t (*preference_set)(cublasLtMatmulPreference_t, cublasLtMatmulPreferenceAttributes_t, const void*,
                                     size_t);
    cublasStatus_t (*heuristic)(cublasLtHandle_t, cublasLtMatmulDesc_t, cublasLtMatrixLayout_t, cublasLtMatrixLayout_t,
                                cublasLtMatrixLayout_t, cublasLtMatrixLayout_t, cublasLtMatmulPreference_t, int,
                                cublasLtMatmulHeuristicResult_t[], int*);
    cublasStatus_t (*matmul)(cublasLtHandle_t, cublasLtMatmulDesc_t, const void*, const void*, cublasLtMatrixLayout_t,
                             const void*, cublasLtMatrixLayout_t, const void*, const void*, cublasLtMatrixLayout_t,
                             void*, cublasLtMatrixLayout_t, const cublasLtMatmulAlgo_t*, void*, size_t, cudaStream_t);
    cublasStatus_t (*algo_config_get)(const cublasLtMatmulAlgo_t*, cublasLtMatmulAlgoConfigAttributes_t, void*, size_t,
                                      size_t*);
    const char* (*status_name)(cublasStatus_t);
    const char* (*status_string)(cublasStatus_t);
};

// The library, opened on the first call (once, whichever thread calls first; it stays open). Throws
// Error(ErrorCode::Device) naming the file and the dynamic loader's message when it cannot be opened or lacks one of
// the functions; every later call throws the same error.
const CublasLibrary& cublas();

// The file name opened: "libcublasLt.so.13" for the CUDA 13 headers.
const char* cublas_library_name();

// Opens `file` and resolves the functions into `out`: the message of the first failure, or nothing. cublas() calls it
// once with cublas_library_name(); tests call it with other files.
std::optional<std::string> open_cublas(const char* file, CublasLibrary& out);

}  // namespace orcd::cuda
