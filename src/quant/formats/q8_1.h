#pragma once
// Q8_1: as Q8_0 plus s = d * sum(qs), which dot-product kernels use to fold in another block's offset. Decoded for
// files that hold it; no kernel multiplies it.
#include <cstdint>

#include "gguf/types.h"
#include "quant/formats/block_format.h"
#include "quant/hd.h"

namespace orcd::quant {

struct BlockQ8_1 {
    uint16_t d;
    uint16_t s;
    int8_t qs[32];
};
static_assert(sizeof(BlockQ8_1) == 36);

struct Q8_1 : BlockFormat<BlockQ8_1, gguf::TensorType::Q8_1, 32> {
    ORCD_HD static void decode8(const Block& b, int k0, float* out) {
        scale_int8x8(half_to_float(b.d), b.qs + k0, out);  // s is redundant for reconstruction
    }
};

}  // namespace orcd::quant
