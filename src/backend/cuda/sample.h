#pragma once
// The sampling chain (backend/sample_chain.h) on logits in device memory: only the picked id crosses to the host.
// Internal to the CUDA backend (the batched step, kv_pool.h: entries wanting Want::Sample), and tested on its own
// (tests/backend_cuda/test_sample).
#include <cstdint>
#include <cuda_runtime_api.h>
#include <memory>
#include <vector>

#include "backend/cuda/pinned_host.h"
#include "backend/cuda/sample_kernels.h"
#include "backend/sample_chain.h"
#include "device/device.h"

namespace orcd::backend::cuda {

class DeviceSampler {
public:
    // Allocates the workspace for a vocabulary of n_vocab on `device` (labelled "sampler workspace") and runs the
    // chain once on `stream`, synchronously, so that every one-time initialization of its kernels and of the sort
    // happens here, outside any graph capture.
    DeviceSampler(device::Device& device, int64_t n_vocab, cudaStream_t stream);

    // Validates `step` (InvalidArgument naming the parameter: the ranges of engine::validate, and u in [0, 1)), writes
    // it with the window's distinct in-vocabulary ids to a pinned buffer and enqueues its copy to the device on
    // `stream`. The pinned buffer is rewritten by the next stage(): synchronize the stream in between.
    void stage(const SampleStep& step, cudaStream_t stream);
    // Enqueues the chain on `logits` ([n_vocab], device) with the staged step; the id lands in result(). Reads every
    // parameter from device memory, so a graph captured from it replays for any staged step.
    void enqueue(const float* logits, cudaStream_t stream) const;
    const int32_t* result() const { return out_; }

    // stage + enqueue + copy the id back + synchronize: one pick, for tests and callers without a graph.
    TokenId sample(const float* logits, const SampleStep& step, cudaStream_t stream);

private:
    int64_t n_;
    std::unique_ptr<device::DeviceMemory> mem_;
    detail::SampleBuffers b_{};
    detail::SampleHeader* header_dev_ = nullptr;
    int32_t* out_ = nullptr;
    PinnedHost<std::byte> staging_;    // header + window ids
    PinnedHost<int32_t> result_host_;  // one id
    std::vector<uint8_t> seen_;        // scratch of stage(): which ids are in the window already
};

}  // namespace orcd::backend::cuda
