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

// The functions gemm.cpp calls, resolved from libcublasLt.so.<major of the headers>: X(member, exported name), the
// member typed as the header declares the function.
// clang-format off
#define ORCD_CUBLASLT_FUNCTIONS(X)                                                                                     \
    X(create, cublasLtCreate) X(destroy, cublasLtDestroy) X(desc_create, cublasLtMatmulDescCreate)                     \
    X(desc_destroy, cublasLtMatmulDescDestroy) X(desc_set, cublasLtMatmulDescSetAttribute)                             \
    X(layout_create, cublasLtMatrixLayoutCreate) X(layout_destroy, cublasLtMatrixLayoutDestroy)                        \
    X(preference_create, cublasLtMatmulPreferenceCreate) X(preference_destroy, cublasLtMatmulPreferenceDestroy)        \
    X(preference_set, cublasLtMatmulPreferenceSetAttribute) X(heuristic, cublasLtMatmulAlgoGetHeuristic)               \
    X(matmul, cublasLtMatmul) X(algo_config_get, cublasLtMatmulAlgoConfigGetAttribute)                                 \
    X(status_name, cublasLtGetStatusName) X(status_string, cublasLtGetStatusString)
// clang-format on

struct CublasLibrary {
// NOLINTNEXTLINE(bugprone-macro-parentheses): `member` names the member being declared
#define ORCD_CUBLASLT_MEMBER(member, name) decltype(&::name) member = nullptr;
    ORCD_CUBLASLT_FUNCTIONS(ORCD_CUBLASLT_MEMBER)
#undef ORCD_CUBLASLT_MEMBER
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
