#pragma once
// The sampling chain (backend/sample_chain.h) on logits in device memory, every row of a step in one launch: only the
// picked ids cross to the host, where the caller copies them. Internal to the CUDA backend (the batched step,
// kv_pool.h: entries wanting Want::Sample), and tested on its own (tests/backend_cuda/test_sample).
#include <cstdint>
#include <cuda_runtime_api.h>
#include <memory>
#include <span>
#include <vector>

#include "backend/cuda/pinned_host.h"
#include "backend/cuda/sample_kernels.h"
#include "backend/sample_chain.h"
#include "device/device.h"

namespace orcd::backend::cuda {

class DeviceSampler {
public:
    // One row to sample: its logits ([n_vocab], device), its step (read during the call only) and where its id goes
    // (device memory).
    struct Row {
        const float* logits;
        const SampleStep* step;
        int32_t* out;
    };

    // Allocates the workspace for a vocabulary of n_vocab on `device` (labelled "sampler workspace"; it grows with
    // the rows, penalty windows and penalized rows a call needs) and runs the chain once on `stream`, synchronously,
    // so that the kernel's one-time initialization happens here.
    DeviceSampler(device::Device& device, int64_t n_vocab, cudaStream_t stream);

    // Validates every row's step (InvalidArgument naming the row and the parameter: the ranges of check_sample_step),
    // writes all rows' parameters and distinct in-vocabulary penalty ids to one pinned buffer, enqueues its copy to
    // the device (up to kInlineRows rows: the parameters go in the launch, only penalty ids are copied) and one
    // launch that samples every row, on `stream`. Nothing is enqueued when a row is invalid. The
    // pinned buffer and the device workspace are reused by the next call: synchronize the stream in between.
    void sample_rows(std::span<const Row> rows, cudaStream_t stream);

    // A batch of one: the id copied back and the stream synchronized, for the prefill's pick and tests.
    TokenId sample(const float* logits, const SampleStep& step, cudaStream_t stream);

private:
    // Grows the device workspace and the pinned staging to hold `rows` rows with `ids` penalty ids, `penalized` of
    // the rows with a penalized copy (the stream is idle: the caller synchronized it since the last call); a new
    // kernel scratch is zeroed on `stream`.
    void reserve(size_t rows, size_t ids, size_t penalized, cudaStream_t stream);

    device::Device& device_;
    int64_t n_;
    std::unique_ptr<device::DeviceMemory> upload_;   // the rows' headers, then their penalty ids
    std::unique_ptr<device::DeviceMemory> work_;     // penalized copies, one row each
    std::unique_ptr<device::DeviceMemory> out_;      // sample()'s id
    std::unique_ptr<device::DeviceMemory> scratch_;  // the kernel's rows' scratch (split rows)
    size_t upload_bytes_ = 0, work_rows_ = 0, scratch_rows_ = 0;
    int capacity_ = 0;               // sampler blocks the device holds at once
    PinnedHost<std::byte> staging_;  // mirrors upload_
    PinnedHost<int32_t> result_host_;
    std::vector<uint8_t> seen_;  // which ids a row's window holds already
};

}  // namespace orcd::backend::cuda
