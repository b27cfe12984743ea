#pragma once
// Tensor-core matrix products for the batched prefill, through cuBLASLt: Y = W X (+ Y) with W an f16 weight matrix as
// GGUF stores it ([rows][cols], row-major), X a batch of f16 activations ([n][cols]) and Y f32 ([n][ldy], token-major,
// so a projection can write its slice of a fused [q | k | v] row). f32 accumulation.
#include <array>
#include <cstdint>
#include <cuda_runtime_api.h>
#include <map>
#include <string>

namespace orcd::cuda {

class Gemm {
public:
    // A token's row of Y has the same bits whatever n is: a prompt computed after cached prefix pages runs its first
    // positions in a shorter chunk than a fresh run of it does (docs/BATCHING.md), and cublasGemmEx picked a kernel,
    // split-K included, per call from the whole shape (other n, other reduction order, other bits). So each weight
    // shape runs one algorithm, chosen once for kTokensPerProduct tokens (the engine's prefill chunk) with only
    // deterministic reductions allowed (no in-place split-K, whose atomics add in any order); a call of more tokens
    // runs as several products of at most kTokensPerProduct.
    static constexpr int64_t kTokensPerProduct = 512;
    // Every pointer and row stride run() is given must be a multiple of this many bytes (the algorithms are chosen
    // for it; run() refuses others).
    static constexpr int kAlignment = 16;

    // workspace: device memory the products may use (cuBLAS recommends 32 MiB on Hopper); owned by the caller.
    Gemm(cudaStream_t stream, void* workspace, size_t workspace_bytes);
    ~Gemm();
    Gemm(const Gemm&) = delete;
    Gemm& operator=(const Gemm&) = delete;

    // y[t][r] = sum_c w[r][c] * x[t][c] (+ y[t][r] when accumulate), for t < n, r < rows.
    void run(const uint16_t* w, int64_t rows, int64_t cols, const uint16_t* x, int64_t n, float* y, int64_t ldy,
             bool accumulate);

    // The algorithm a shape runs, in cuBLASLt's terms ("id 31, tile 18, stages 12, split-k 1, reduction 0, ..."),
    // choosing it if no call chose it yet: for the device logs.
    std::string algorithm(int64_t rows, int64_t cols, int64_t ldy);

private:
    // What the algorithm is chosen for. Not whether the product accumulates: the heuristic is never told beta.
    struct Shape {
        int64_t rows, cols, ldy;
        auto operator<=>(const Shape&) const = default;
    };
    using Algorithm = std::array<uint64_t, 8>;  // cublasLtMatmulAlgo_t's bytes (kept out of this header)
    const Algorithm& algorithm_for(const Shape& s);

    cudaStream_t stream_;
    void* workspace_;
    size_t workspace_bytes_;
    void* handle_ = nullptr;  // cublasLtHandle_t
    void* op_ = nullptr;      // cublasLtMatmulDesc_t: W^T X, f32 compute and scale
    std::map<Shape, Algorithm> algorithms_;
};

}  // namespace orcd::cuda
