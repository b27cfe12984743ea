#pragma once
// Q5_1: blocks of 32, y = d * q + m, q = 5 bits packed as Q5_0.
#include "quant/formats/nibble32.h"

namespace orcd::quant {

struct BlockQ5_1 {
    uint16_t d;
    uint16_t m;
    uint8_t qh[4];
    uint8_t qs[16];
};
static_assert(sizeof(BlockQ5_1) == 24);

using Q5_1 = Nibble32<BlockQ5_1, gguf::TensorType::Q5_1, 0, true, true>;

}  // namespace orcd::quant
