#pragma once
// A batch entry's token mask (backend/token_mask.h) applied on the device: the mask's words are copied to a device
// buffer and one kernel sets every disallowed logit of the entry's row to -inf, on the step's stream, before the
// row's pick. Only constrained rows are touched; the rest of the step does not know masks exist. Internal to the
// CUDA backend (kv_pool.cpp).
#include <cuda_runtime_api.h>

#include <cstdint>
#include <memory>
#include <span>

#include "backend/sample_chain.h"
#include "device/device.h"

namespace orcd::backend::cuda {

// Enqueues logits[i] = -inf for every i < n whose bit in mask[0 .. n_words) is 0 (bits past n_words count as 0).
void launch_token_mask(float* logits, int64_t n, const uint64_t* mask, int64_t n_words, cudaStream_t stream);

class DeviceTokenMask {
public:
    // A buffer for one mask of a vocabulary of n_vocab (labelled "token mask").
    DeviceTokenMask(device::Device& device, int64_t n_vocab);

    // Copies `mask` (its first ceil(n_vocab / 64) words at most) to the device and enqueues the kernel on `row`
    // ([n_vocab], device). Calls on one stream may follow each other: each copy is ordered after the previous
    // kernel, and a pageable source is staged before cudaMemcpyAsync returns.
    void apply(float* row, std::span<const uint64_t> mask, cudaStream_t stream);
    // The row's argmax (cuda ops::argmax), copied back synchronously: the repair of a pick that landed on a -inf
    // token (backend::allowed_pick), so rare that a round trip costs nothing.
    TokenId argmax(const float* row, cudaStream_t stream);

private:
    int64_t n_vocab_;
    int64_t n_words_;
    std::unique_ptr<device::DeviceMemory> mem_;  // n_words_ mask words, then one int32 for argmax()
};

}  // namespace orcd::backend::cuda
