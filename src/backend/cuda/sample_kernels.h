#pragma once
// Kernel launches of the device sampling chain (sample.cu), kept apart from DeviceSampler (sample.cpp) so that the
// .cu file needs no formatting library. Arguments are validated by the caller.
#include <cstddef>
#include <cstdint>
#include <cuda_runtime_api.h>

namespace orcd::backend::cuda::detail {

// What one step's chain reads from device memory (so one captured graph serves every step): the parameters, the
// draw, and the number of distinct in-vocabulary penalty ids that follow the header in the same upload.
struct SampleHeader {
    double u;
    float temperature, top_p, min_p, repeat_penalty;
    int32_t top_k;
    int32_t n_window;
};

// Fills ids with 0 .. n-1 (the sort's values; constant, written once).
void launch_iota(int32_t* ids, int64_t n, cudaStream_t s);
// Device scratch the sort needs for n keys (cub::DeviceRadixSort).
size_t sort_temp_bytes(int64_t n);

struct SampleBuffers {
    float* work;          // [n] the logits after the penalty
    const int32_t* iota;  // [n] 0 .. n-1
    float* keys;          // [n] work sorted descending
    int32_t* ids;         // [n] the ids in that order (stable: ties by id ascending)
    void* sort_temp;
    size_t sort_temp_bytes;
    const SampleHeader* header;
    const int32_t* window;  // [header->n_window] distinct ids in [0, n)
    int32_t* out;           // [1] the picked id
};

// Penalty -> sort -> top-k / top-p / min-p / temperature -> the pick by u, all on `s`; no host synchronization,
// capturable in a graph. Deterministic: fixed-order block scans and reductions, no atomics.
void launch_sample_chain(const float* logits, int64_t n, const SampleBuffers& b, cudaStream_t s);

}  // namespace orcd::backend::cuda::detail
