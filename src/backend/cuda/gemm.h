#pragma once
// Tensor-core matrix products for the batched prefill, through cuBLAS: Y = W X (+ Y) with W an f16 weight matrix as
// GGUF stores it ([rows][cols], row-major), X a batch of f16 activations ([n][cols]) and Y f32 ([n][ldy], token-major,
// so a projection can write its slice of a fused [q | k | v] row). f32 accumulation. One handle per sequence, bound to
// its stream and given a fixed workspace, so the algorithm (and the result bits) does not vary from run to run.
#include <cstdint>
#include <cuda_runtime_api.h>

namespace orcd::cuda {

class Gemm {
public:
    // workspace: device memory the handle may use (cuBLAS recommends 32 MiB on Hopper); owned by the caller.
    Gemm(cudaStream_t stream, void* workspace, size_t workspace_bytes);
    ~Gemm();
    Gemm(const Gemm&) = delete;
    Gemm& operator=(const Gemm&) = delete;

    // y[t][r] = sum_c w[r][c] * x[t][c] (+ y[t][r] when accumulate), for t < n, r < rows.
    void run(const uint16_t* w, int64_t rows, int64_t cols, const uint16_t* x, int64_t n, float* y, int64_t ldy,
             bool accumulate);

private:
    void* handle_ = nullptr;  // cublasHandle_t (kept out of this header)
};

}  // namespace orcd::cuda
