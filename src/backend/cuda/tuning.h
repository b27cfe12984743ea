#pragma once
// The CUDA backend's tuning overrides: the one place the process environment is read for kernel choices. Each knob
// has a fixed default backed by a benchmark (named where the default is defined); the variables exist so that the
// bandwidth and prefill benchmarks can compare settings on one loaded model without a rebuild. An unset, malformed or
// out-of-range value means "no override". docs/PERF.md ("Tuning overrides") lists them.
#include <cstdint>

namespace orcd::cuda::tuning {

// ORCD_MATVEC_TILE_BYTES: the staged-tile matvec's tile size in bytes, 1024..22528. Read once per process.
int64_t matvec_tile_bytes(int64_t fallback);
// ORCD_MATVEC_WPR: warps per row of the fused matvec, 1, 2, 4 or 8; 0 when not set. Read once per process.
int matvec_warps_per_row();
// ORCD_Q8_TPR: threads per row of the q8 matvec, a power of two in 8..256; 0 when not set. Read once per process.
int q8_threads_per_row();
// ORCD_Q8_MAX_NC: the most columns one q8 matvec thread accumulates at once, 8 or 16; 0 when not set. Read once per
// process.
int q8_max_columns();
// ORCD_Q8_MMA_MIN_COLS: the fewest columns the q8 matvec runs on tensor cores (matvec_q8_mma.cu), 1..1000000 (a
// number above every batch keeps the dp4a kernel); 0 when not set. Read once per process.
int q8_mma_min_columns();
// ORCD_Q8_MMA_BLOCK_COLS: columns a block of the q8 tensor-core matvec, 8, 16 or 32; 0 when not set. Read once per
// process.
int q8_mma_block_columns();
// ORCD_Q8_MMA_WARPS: warps a block of the q8 tensor-core matvec, 4, 8 or 16; 0 when not set. Read once per process.
int q8_mma_warps();
// ORCD_Q8_MMA_CLUSTER: blocks a tile of the q8 tensor-core matvec (a thread block cluster), 1, 2, 4 or 8; 0 when not
// set. Read once per process.
int q8_mma_cluster();
// ORCD_Q8_MMA_STAGE: what the q8 tensor-core matvec stages in shared memory, bits: 1 the tile's weight rows
// (cp.async), 2 the block's activation columns, 4 a second weight buffer (blocks that loop over tiles load the next
// tile while computing this one); 0 nothing (operands read from global memory, one block a tile). -1 when not set
// (the default: bits 3, 1 or 0 by the blocks an SM they leave, q8_mma_shape). Read once per process.
int q8_mma_stage();
// ORCD_FUSED_MAX_BYTES: matrices above this many bytes take the staged-tile matvec instead of the fused one. Read at
// every call (that is, at each graph capture), so one loaded model can be benchmarked under several settings.
uint64_t fused_max_bytes(uint64_t fallback);
// ORCD_PREFILL_UBATCH: tokens per prefill micro-batch, 16..8192. Read once per process.
uint32_t prefill_ubatch(uint32_t fallback);
// ORCD_PDL: 0 launches the decode kernels without programmatic dependent launch (pdl.cuh), each after its
// predecessor has drained; any other value or unset keeps it on. Read once per process.
bool pdl();
// ORCD_DECODE_PERSISTENT: set (and not "0") to run the single column's decode step as one persistent kernel
// (decode_persistent.h) where the model allows it, as CudaOptions::decode_kernel = Persistent does. Read once per
// process.
bool decode_persistent();
// ORCD_PERSISTENT_BLOCKS_PER_SM: blocks a SM of the persistent decode kernel, 1..8 (capped by what is resident at
// once). Read once per process.
int persistent_blocks_per_sm(int fallback);
// ORCD_PERSISTENT_FOLD: set (and not "0") to let every block of the persistent decode kernel that needs the normalized,
// quantized x compute it itself instead of a phase and a barrier of their own (the same bits). Read once per process.
bool persistent_fold();
// ORCD_SAMPLE_SLICE_MIN: the fewest vocabulary entries one block of the device sampler passes over (a row is split
// into more blocks as this falls), 1024..1048576. Read once per process.
int sample_slice_min(int fallback);
// ORCD_PREFILL_PROFILE: set (and not "0") to time prefill's phases (bench prefill prints them). Read once per process.
bool prefill_profile();

}  // namespace orcd::cuda::tuning
