#pragma once
// What the two int8 matvec kernels share (matvec_q8.cu: dp4a, every batch; matvec_q8_mma.cu: tensor cores, batches
// from a threshold on): their parameters and the mma kernel's launcher. Both compute every column's output
// bit for bit alike (matvec_q8_units.cuh, and the reduction order described in matvec_q8_mma.cu).
#include <cstdint>
#include <cuda_runtime_api.h>

#include "backend/cuda/matvec_common.cuh"
#include "backend/cuda/matvec_q8.h"

namespace orcd::cuda {

struct Q8Params {
    const int8_t* xq;
    const float* xd;
    const int32_t* xs;
    int64_t x_stride;  // bytes between the columns' Q8Vectors (q, d and s alike)
    int cols;
    int n_src;
    MatvecSource src[3];
    int epilogue;  // MatvecEpilogue
    float* y;
    int64_t y_stride;
    int64_t n_out;
    int n_cols;
    int tpr;  // threads per output row of the dp4a kernel: 8 .. 256, a power of two (the mma kernel's leaves)
};

// The kernel parameters of op, checked as q8_matvec checks them (threads per row by its shape). Throws as q8_matvec.
Q8Params q8_matvec_params(const Q8Matvec& op);

// Whether the mma kernel can run p: every 16-row tile of the output (and of the up half, for SwiGLU) holds rows of
// one type (source boundaries between types fall on multiples of 16).
bool q8_mma_can_run(const Q8Params& p);
// How the mma kernel splits p: columns a block (8, 16 or 32), warps a block (4, 8 or 16) and blocks a tile (a thread
// block cluster of 1, 2, 4 or 8 that shares the tile's leaves). None changes a bit.
struct Q8MmaShape {
    int block_cols = 8;
    int warps = 16;
    int cluster = 1;
    // What a block stages in shared memory (kQ8MmaStage* bits; none with clusters), and the most blocks the launch
    // runs (0: as many as fit on the device at once; blocks loop over the tiles). Neither changes a bit.
    int stage = 0;
    int max_blocks = 0;
};
inline constexpr int kQ8MmaStageWeights = 1, kQ8MmaStageColumns = 2, kQ8MmaStageDouble = 4;
// The shape for p: block_cols / warps / cluster when given (8 / 16 / 32, 4 / 8 / 16, 1 / 2 / 4 / 8: tests), else the
// tuning overrides (ORCD_Q8_MMA_BLOCK_COLS, ORCD_Q8_MMA_WARPS, ORCD_Q8_MMA_CLUSTER), else by the matrix's tiles and
// the batch. Block columns are capped by tpr (shared memory), warps by the leaves a block has.
// stage: the kQ8MmaStage* bits wanted (-1: the ORCD_Q8_MMA_STAGE override, else all), dropped (double buffer first,
// then the columns, then the weights) until the block's shared memory fits; max_blocks as Q8MmaShape's.
Q8MmaShape q8_mma_shape(const Q8Params& p, int block_cols, int warps, int cluster, int stage = -1, int max_blocks = 0);
// Enqueues the mma kernel for p (q8_mma_can_run(p) must hold) in the given shape (from q8_mma_shape).
void q8_mma_launch(const Q8Params& p, Q8MmaShape shape, cudaStream_t stream);

}  // namespace orcd::cuda
