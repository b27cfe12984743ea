#pragma once
// Q4_1: blocks of 32, y = d * q + m, q = 4 bits (nibble order in nibble32.h).
#include "quant/formats/nibble32.h"

namespace orcd::quant {

struct BlockQ4_1 {
    uint16_t d;
    uint16_t m;
    uint8_t qs[16];
};
static_assert(sizeof(BlockQ4_1) == 20);

using Q4_1 = Nibble32<BlockQ4_1, gguf::TensorType::Q4_1, 0, false, true>;

}  // namespace orcd::quant
