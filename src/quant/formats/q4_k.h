#pragma once
// Q4_K: super-blocks of 256, 8 sub-blocks of 32, y = d * sc * q - dmin * m, q = 4 bits (layout and decoders in k4.h).
#include "quant/formats/k4.h"

namespace orcd::quant {

struct BlockQ4_K {
    uint16_t d;
    uint16_t dmin;
    uint8_t scales[kKScaleSize];
    uint8_t qs[kQK_K / 2];
};
static_assert(sizeof(BlockQ4_K) == 144);

using Q4_K = K4<BlockQ4_K, gguf::TensorType::Q4_K, false>;

}  // namespace orcd::quant
