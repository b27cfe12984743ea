#pragma once
// The kernel launch of the device sampling chain (sample.cu), kept apart from DeviceSampler (sample.cpp) so that the
// .cu file needs no formatting library. Arguments are validated by the caller.
#include <cstddef>
#include <cstdint>
#include <cuda_runtime_api.h>

namespace orcd::backend::cuda::detail {

// One row of a batched pick, as uploaded (all rows' headers, then all rows' penalty ids, in one copy): where its
// logits are, where its id goes, the parameters and the draw, and its distinct in-vocabulary penalty ids.
struct SampleRow {
    const float* logits;  // [n] device
    int32_t* out;         // [1] device: the picked id
    float* work;          // [n] device scratch for the penalized copy; null when the row has no penalty
    double u;
    float temperature, top_p, min_p, repeat_penalty;
    int32_t top_k;
    int32_t n_window;       // ids at window_offset in the batch's id array
    int64_t window_offset;  // distinct, in [0, n)
};

// Once the survivors are at most this many, the sampler orders them by their running sums directly instead of
// descending the key's digits (the same picks, bit for bit: sample.cu's short_crossing says why).
constexpr int kShortListCap = 256;

// The device scratch launch_sample_rows needs for n_rows rows (a split row's barrier, extremes, counts, histograms and
// survivors). Zero it once when allocated: every launch leaves it zero again (the last block of a split row clears
// its row's part), so a launch needs no clear before it.
size_t sample_scratch_bytes(int n_rows);

// At most this many rows travel in the launch's parameters (launch_sample_rows_inline): no upload before the launch.
constexpr int kInlineRows = 32;

// How many blocks of the sampler the current device holds at once (0 when it cannot tell).
int sample_block_capacity();

// The blocks a row's vocabulary passes are split over, from the vocabulary, the rows and the capacity alone (never from
// anything that changes a pick): at most half the capacity in all, so that every block of a row is resident at once.
int sample_slices(int n_rows, int64_t n, int capacity);

// Samples rows[0 .. n_rows) (device memory) of a vocabulary of n in one launch (rows x slices blocks; `scratch` as
// sample_scratch_bytes says) on `s`: the penalty, top-k, top-p, min-p, temperature and the pick by u, without sorting the
// vocabulary. No host synchronization; deterministic (integer masses and counts, fixed-order block reductions), the
// same picks for every `slices` and every `short_cap` (the survivor count at or under which the short path runs,
// clamped to kShortListCap; 0 also turns off top-k's short way after one level: tests pass 0 to force the digit descent
// over the vocabulary everywhere and compare). Returns the enqueueing's error.
cudaError_t launch_sample_rows(const SampleRow* rows, const int32_t* window_ids, int n_rows, int64_t n, void* scratch,
                               int slices, cudaStream_t s, int short_cap = kShortListCap);

// The same with the rows' headers read from host memory into the launch's parameters (n_rows <= kInlineRows, else
// cudaErrorInvalidValue): one enqueued operation instead of a copy and a launch. window_ids stay device memory.
cudaError_t launch_sample_rows_inline(const SampleRow* host_rows, const int32_t* window_ids, int n_rows, int64_t n,
                                      void* scratch, int slices, cudaStream_t s, int short_cap = kShortListCap);

}  // namespace orcd::backend::cuda::detail
