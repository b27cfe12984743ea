// The token-mask kernel (token_mask.h): one thread per logit.
#include <cmath>

#include "backend/cuda/token_mask.h"

namespace orcd::backend::cuda {

namespace {

constexpr int kThreads = 256;

__global__ void token_mask_kernel(float* __restrict__ logits, int64_t n, const uint64_t* __restrict__ mask,
                                  int64_t n_words) {
    const int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
    if (i >= n) return;
    const int64_t w = i >> 6;
    const bool allowed = w < n_words && ((mask[w] >> (i & 63)) & 1ull);
    if (!allowed) logits[i] = -INFINITY;
}

}  // namespace

void launch_token_mask(float* logits, int64_t n, const uint64_t* mask, int64_t n_words, cudaStream_t stream) {
    if (n <= 0) return;
    const auto blocks = static_cast<unsigned>((n + kThreads - 1) / kThreads);
    token_mask_kernel<<<blocks, kThreads, 0, stream>>>(logits, n, mask, n_words);
}

}  // namespace orcd::backend::cuda
