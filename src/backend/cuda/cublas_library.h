#pragma once
// cuBLAS, opened the first time the CUDA backend asks for it instead of linked into every program. Linking libcublas
// (and through it libcublasLt, 540 MB) made each process pay the libraries' static initialization at start: `orcd
// --version`, a CPU-only `orcd serve`, every test executable that links the CUDA backend. On the development machine
// that was 0.7 s and 217 MB resident per process, for a library that only the CUDA prefill's matrix products use.
#include <cublas_v2.h>

#include <optional>
#include <string>

namespace orcd::cuda {

// The functions gemm.cpp calls, resolved from libcublas.so.<major of the headers>.
struct CublasLibrary {
    cublasStatus_t (*create)(cublasHandle_t*);
    cublasStatus_t (*destroy)(cublasHandle_t);
    cublasStatus_t (*set_stream)(cublasHandle_t, cudaStream_t);
    cublasStatus_t (*set_workspace)(cublasHandle_t, void*, size_t);
    cublasStatus_t (*set_math_mode)(cublasHandle_t, cublasMath_t);
    cublasStatus_t (*gemm_ex)(cublasHandle_t, cublasOperation_t, cublasOperation_t, int, int, int, const void*,
                              const void*, cudaDataType, int, const void*, cudaDataType, int, const void*, void*,
                              cudaDataType, int, cublasComputeType_t, cublasGemmAlgo_t);
    const char* (*status_name)(cublasStatus_t);
    const char* (*status_string)(cublasStatus_t);
};

// The library, opened on the first call (once, whichever thread calls first; it stays open). Throws
// Error(ErrorCode::Device) naming the file and the dynamic loader's message when it cannot be opened or lacks one of
// the functions; every later call throws the same error.
const CublasLibrary& cublas();

// The file name opened: "libcublas.so.13" for the CUDA 13 headers.
const char* cublas_library_name();

// Opens `file` and resolves the functions into `out`: the message of the first failure, or nothing. cublas() calls it
// once with cublas_library_name(); tests call it with other files.
std::optional<std::string> open_cublas(const char* file, CublasLibrary& out);

}  // namespace orcd::cuda
