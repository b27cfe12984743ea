// cuBLASLt opened at run time (backend/cuda/cublas_library.h): the library of the headers' major version opens and
// every function resolves, its status names come back through the resolved pointers, a file that is not there or
// lacks a function is refused with a message naming it, and a handle is made on a GPU or refused by name without one.
// Runs without a GPU (the CUDA toolkit is on every machine that builds this configuration).
#include <gtest/gtest.h>

#include <cstring>
#include <string>

#include "backend/cuda/cublas_library.h"
#include "backend/cuda/gemm.h"
#include "common/error.h"
#include "cuda_test_util.h"

namespace orcd::cuda {
namespace {

TEST(CublasLibrary, OpensTheHeadersMajorVersionAndResolvesEveryFunction) {
    EXPECT_EQ(std::string(cublas_library_name()), "libcublasLt.so." + std::to_string(CUBLAS_VER_MAJOR));
    const CublasLibrary& lib = cublas();
#define ORCD_EXPECT_RESOLVED(member, name) EXPECT_NE(lib.member, nullptr) << #name;
    ORCD_CUBLASLT_FUNCTIONS(ORCD_EXPECT_RESOLVED)
#undef ORCD_EXPECT_RESOLVED
    // Called through the pointers: the library's own names for its statuses.
    EXPECT_STREQ(lib.status_name(CUBLAS_STATUS_NOT_INITIALIZED), "CUBLAS_STATUS_NOT_INITIALIZED");
    EXPECT_STREQ(lib.status_name(CUBLAS_STATUS_INVALID_VALUE), "CUBLAS_STATUS_INVALID_VALUE");
    EXPECT_NE(std::strlen(lib.status_string(CUBLAS_STATUS_INVALID_VALUE)), 0u);
}

TEST(CublasLibrary, AMissingFileOrFunctionIsNamed) {
    CublasLibrary lib{};
    auto missing = open_cublas("libcublas-that-is-not-there.so.99", lib);
    ASSERT_TRUE(missing.has_value());
    EXPECT_NE(missing->find("cannot load cuBLAS (libcublas-that-is-not-there.so.99), which the CUDA prefill needs: "),
              std::string::npos)
        << *missing;
    // A library that opens but is not cuBLAS: the first function it lacks is named.
    auto wrong = open_cublas("libc.so.6", lib);
    ASSERT_TRUE(wrong.has_value());
    EXPECT_EQ(*wrong, "cannot use cuBLAS: libc.so.6 has no function cublasLtCreate");
}

// With a GPU the handle is made (the gpu prefill tests then use it); without one cuBLAS refuses it, and the error
// names the call and cuBLAS's status.
TEST(CublasLibrary, AHandleIsMadeOnAGpuOrRefusedByName) {
    if (test::have_gpu()) {
        void* workspace = nullptr;
        ASSERT_EQ(cudaMalloc(&workspace, 1 << 20), cudaSuccess);
        EXPECT_NO_THROW(Gemm(nullptr, workspace, 1 << 20));
        cudaFree(workspace);
        return;
    }
    try {
        Gemm g(nullptr, nullptr, 0);
        FAIL() << "a cuBLAS handle without a GPU";
    } catch (const Error& e) {
        EXPECT_EQ(e.code(), ErrorCode::Device);
        EXPECT_NE(std::string(e.what()).find("cuBLASLt cublasLtCreate: CUBLAS_STATUS_"), std::string::npos) << e.what();
    }
}

}  // namespace
}  // namespace orcd::cuda
