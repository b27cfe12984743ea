#pragma once
// Q8_K: blocks of 256, y = d * q with a float32 d; bsums[k] is the sum of qs over elements 16k..16k+15 (for dot
// products). Decoded for files that hold it; no kernel multiplies it.
#include <cstdint>

#include "gguf/types.h"
#include "quant/formats/block_format.h"
#include "quant/formats/k_common.h"
#include "quant/hd.h"

namespace orcd::quant {

struct BlockQ8_K {
    float d;
    int8_t qs[kQK_K];
    int16_t bsums[kQK_K / 16];
};
static_assert(sizeof(BlockQ8_K) == 292);

struct Q8_K : BlockFormat<BlockQ8_K, gguf::TensorType::Q8_K, kQK_K> {
    ORCD_HD static void decode8(const Block& b, int k0, float* out) { scale_int8x8(b.d, b.qs + k0, out); }
};

}  // namespace orcd::quant
