#include "backend/cuda/token_mask.h"

#include <algorithm>

#include "backend/cuda/ops.h"
#include "device/cuda_check.h"

namespace orcd::backend::cuda {

DeviceTokenMask::DeviceTokenMask(device::Device& device, int64_t n_vocab)
    : n_vocab_(n_vocab), n_words_((n_vocab + 63) / 64) {
    mem_ = device.allocate(static_cast<uint64_t>(n_words_) * sizeof(uint64_t) + sizeof(int32_t), "token mask");
}

void DeviceTokenMask::apply(float* row, std::span<const uint64_t> mask, cudaStream_t stream) {
    auto* words = reinterpret_cast<uint64_t*>(mem_->data());
    const int64_t n = std::min<int64_t>(static_cast<int64_t>(mask.size()), n_words_);
    ORCD_CUDA_CHECK(
        cudaMemcpyAsync(words, mask.data(), static_cast<size_t>(n) * sizeof(uint64_t), cudaMemcpyHostToDevice, stream));
    launch_token_mask(row, n_vocab_, words, n, stream);
    ORCD_CUDA_CHECK(cudaGetLastError());
}

TokenId DeviceTokenMask::argmax(const float* row, cudaStream_t stream) {
    auto* slot = reinterpret_cast<int32_t*>(mem_->data() + static_cast<size_t>(n_words_) * sizeof(uint64_t));
    ::orcd::cuda::argmax(row, n_vocab_, slot, stream);
    int32_t id = -1;
    ORCD_CUDA_CHECK(cudaMemcpyAsync(&id, slot, sizeof(id), cudaMemcpyDeviceToHost, stream));
    ORCD_CUDA_CHECK(cudaStreamSynchronize(stream));
    return id;
}

}  // namespace orcd::backend::cuda
