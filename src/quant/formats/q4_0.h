#pragma once
// Q4_0: blocks of 32, y = d * (q - 8), q = 4 bits (nibble order in nibble32.h).
#include "quant/formats/nibble32.h"

namespace orcd::quant {

struct BlockQ4_0 {
    uint16_t d;
    uint8_t qs[16];
};
static_assert(sizeof(BlockQ4_0) == 18);

using Q4_0 = Nibble32<BlockQ4_0, gguf::TensorType::Q4_0, 8, false, false>;

}  // namespace orcd::quant
