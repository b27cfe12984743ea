#pragma once
// Q5_0: blocks of 32, y = d * (q - 16), q = 5 bits: the low 4 as Q4_0, the fifth bit of element j is bit j of qh read
// little-endian.
#include "quant/formats/nibble32.h"

namespace orcd::quant {

struct BlockQ5_0 {
    uint16_t d;
    uint8_t qh[4];
    uint8_t qs[16];
};
static_assert(sizeof(BlockQ5_0) == 22);

using Q5_0 = Nibble32<BlockQ5_0, gguf::TensorType::Q5_0, 16, true, false>;

}  // namespace orcd::quant
