#include "backend/cuda/token_mask.h"

#include <fmt/format.h>

#include <algorithm>
#include <cstring>

#include "backend/cuda/ops.h"
#include "common/error.h"
#include "device/cuda_check.h"

namespace orcd::backend::cuda {

DeviceTokenMask::DeviceTokenMask(device::Device& device, int64_t n_vocab, int n_slots)
    : n_vocab_(n_vocab), n_words_((n_vocab + 63) / 64), n_slots_(n_slots) {
    if (n_vocab <= 0 || n_slots <= 0) {
        throw Error(ErrorCode::InvalidArgument,
                    fmt::format("cuda token mask: vocabulary {} and slots {} (both must be > 0)", n_vocab, n_slots));
    }
    const uint64_t words = static_cast<uint64_t>(n_words_) * static_cast<uint64_t>(n_slots);
    mem_ = device.allocate(words * sizeof(uint64_t) + sizeof(int32_t), "token masks");
    staging_ = allocate_pinned_host<uint64_t>(words * sizeof(uint64_t));
}

void DeviceTokenMask::apply(float* row, std::span<const uint64_t> mask, int slot, cudaStream_t stream) {
    if (slot < 0 || slot >= n_slots_) {
        throw Error(ErrorCode::Internal, fmt::format("cuda token mask: slot {} of {}", slot, n_slots_));
    }
    const int64_t n = std::min<int64_t>(static_cast<int64_t>(mask.size()), n_words_);
    uint64_t* pinned = staging_.get() + static_cast<size_t>(slot) * static_cast<size_t>(n_words_);
    auto* words = reinterpret_cast<uint64_t*>(mem_->data()) + static_cast<size_t>(slot) * static_cast<size_t>(n_words_);
    std::memcpy(pinned, mask.data(), static_cast<size_t>(n) * sizeof(uint64_t));
    ORCD_CUDA_CHECK(
        cudaMemcpyAsync(words, pinned, static_cast<size_t>(n) * sizeof(uint64_t), cudaMemcpyHostToDevice, stream));
    launch_token_mask(row, n_vocab_, words, n, stream);
    ORCD_CUDA_CHECK(cudaGetLastError());
}

TokenId DeviceTokenMask::argmax(const float* row, cudaStream_t stream) {
    auto* slot = reinterpret_cast<int32_t*>(mem_->data() + static_cast<size_t>(n_words_) *
                                                               static_cast<size_t>(n_slots_) * sizeof(uint64_t));
    ::orcd::cuda::argmax(row, n_vocab_, slot, stream);
    int32_t id = -1;
    ORCD_CUDA_CHECK(cudaMemcpyAsync(&id, slot, sizeof(id), cudaMemcpyDeviceToHost, stream));
    ORCD_CUDA_CHECK(cudaStreamSynchronize(stream));
    return id;
}

}  // namespace orcd::backend::cuda
