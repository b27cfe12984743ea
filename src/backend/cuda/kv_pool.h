#pragma once
// The CUDA backend's KV pool and batched step (docs/BATCHING.md). One device allocation of num_pages f16 pages
// (layout: KvCache in cuda_model.h), labelled "KV cache (f16 pool)" so device_memory() reports it as kv_cache, and
// the pool's step machinery: its stream, the decode buffers for up to kMaxColumns columns (grown on demand), a CUDA
// graph per column count, the prefill workspace and the device sampler, each made on first use. A pool is stepped
// from one thread at a time (Backend::step's contract). Internal to the CUDA backend.
#include <cuda_runtime_api.h>

#include <array>
#include <memory>
#include <span>
#include <vector>

#include "backend/backend.h"
#include "backend/cuda/cuda_backend.h"
#include "backend/cuda/cuda_model.h"
#include "backend/cuda/decode_step.h"
#include "backend/cuda/pinned_host.h"
#include "backend/cuda/prefill_step.h"
#include "backend/cuda/sample.h"
#include "backend/cuda/token_mask.h"
#include "device/device.h"

namespace orcd::backend::cuda {

// Columns of one batched decode launch. A step with more decode tokens runs them in groups of this many, in order
// (a replayed sequence's earlier positions in an earlier group), which changes no column's arithmetic.
inline constexpr int kMaxColumns = 64;

class CudaKvPool final : public KvPool {
public:
    // Errors: InvalidArgument (no pages, page_size 0), the device's allocation errors.
    CudaKvPool(device::Device& device, const CudaModel& m, const CudaOptions& options, const KvPoolOptions& po);
    ~CudaKvPool() override;

    // Backend::step on this pool; the batch is already checked (check_batch_entries).
    void step(std::span<const BatchEntry> batch, std::span<BatchResult> results);

private:
    struct Stream {
        cudaStream_t s = nullptr;
        Stream();
        ~Stream();
    };
    struct Graph {
        cudaGraphExec_t exec = nullptr;
        ~Graph();
    };
    // Where an entry's decode columns are and what it wants of them.
    struct Columns {
        size_t entry;
        int first;  // index of the entry's first column in the step's column list
        int count;
    };

    int64_t n_ctx() const;  // positions one sequence can have in this pool (the model's context at most)
    KvCache view(const int32_t* pages) const;
    void ensure_decode_buffers(int n_cols);
    float* logits_for(size_t n);  // host memory for n floats of this step's logits (null when n is 0)
    void run_prefill(const BatchEntry& e, float* logits_out, BatchResult& r);
    void run_decode(std::span<const BatchEntry> batch, const std::vector<Columns>& entries, int total_cols,
                    const std::vector<float*>& logits_out, std::span<BatchResult> results);
    void launch_decode(int n_cols);
    DeviceSampler& sampler();
    DeviceTokenMask& token_mask();
    // A masked entry's final pick from its masked row (backend::allowed_pick, with the row's argmax on the device).
    TokenId repaired_pick(std::span<const uint64_t> allowed, TokenId picked, const float* row);

    device::Device& device_;
    const CudaModel& m_;
    const CudaOptions& options_;
    std::unique_ptr<device::DeviceMemory> kv_;
    Stream stream_;
    std::unique_ptr<device::DeviceMemory> act_;  // the decode buffers
    DecodeBuffers dec_;
    std::array<Graph, kMaxColumns + 1> graphs_;  // by column count, captured on first use after an eager step
    uint64_t eager_steps_ = 0;
    PinnedHost<int32_t> staging_;  // the decode inputs (dec_.input_bytes()), then kMaxColumns argmax ids
    std::unique_ptr<device::DeviceMemory> prefill_table_;  // one sequence's page table for a prefill
    std::unique_ptr<DeviceSampler> sampler_;
    std::unique_ptr<DeviceTokenMask> token_mask_;
    std::unique_ptr<PrefillWorkspace> prefill_ws_;  // after stream_: its cuBLAS handle goes before the stream
    PinnedHost<float> logits_;                      // the host logits the step's results point into (logits_for)
    size_t logits_cap_ = 0;                         // floats
};

}  // namespace orcd::backend::cuda
