#pragma once
// A batch entry's token mask (backend/token_mask.h) applied on the device: the mask's words go through a pinned
// slot to a device slot, and one kernel sets every disallowed logit of the entry's row to -inf, on the step's
// stream, before the row's pick. Only constrained rows are touched; the rest of the step does not know masks exist.
// Internal to the CUDA backend (kv_pool.cpp).
#include <cuda_runtime_api.h>

#include <cstdint>
#include <memory>
#include <span>

#include "backend/cuda/pinned_host.h"
#include "backend/sample_chain.h"
#include "device/device.h"

namespace orcd::backend::cuda {

// Enqueues logits[i] = -inf for every i < n whose bit in mask[0 .. n_words) is 0 (bits past n_words count as 0).
void launch_token_mask(float* logits, int64_t n, const uint64_t* mask, int64_t n_words, cudaStream_t stream);

class DeviceTokenMask {
public:
    // Room for `n_slots` masks of a vocabulary of n_vocab in device memory (labelled "token masks") and in pinned
    // host memory, so that the copies of one step's masks run asynchronously.
    DeviceTokenMask(device::Device& device, int64_t n_vocab, int n_slots);
    DeviceTokenMask(const DeviceTokenMask&) = delete;
    DeviceTokenMask& operator=(const DeviceTokenMask&) = delete;

    int slots() const { return n_slots_; }
    // Copies `mask` (its first ceil(n_vocab / 64) words at most) into slot `slot` (< slots()), enqueues its copy to
    // the device and the kernel on `row` ([n_vocab], device). A slot's pinned words are rewritten by the next apply()
    // on it: the caller uses distinct slots between two synchronizations of the stream.
    void apply(float* row, std::span<const uint64_t> mask, int slot, cudaStream_t stream);
    // The row's argmax (cuda ops::argmax), copied back synchronously: the repair of a pick that landed on a -inf
    // token (backend::allowed_pick), so rare that a round trip costs nothing.
    TokenId argmax(const float* row, cudaStream_t stream);

private:
    int64_t n_vocab_;
    int64_t n_words_;  // per slot
    int n_slots_;
    std::unique_ptr<device::DeviceMemory> mem_;  // n_slots_ * n_words_ mask words, then one int32 for argmax()
    PinnedHost<uint64_t> staging_;               // n_slots_ * n_words_ words
};

}  // namespace orcd::backend::cuda
