#pragma once
// Q5_K: as Q4_K with a fifth bit per element in qh (layout and decoders in k4.h).
#include "quant/formats/k4.h"

namespace orcd::quant {

struct BlockQ5_K {
    uint16_t d;
    uint16_t dmin;
    uint8_t scales[kKScaleSize];
    uint8_t qh[kQK_K / 8];
    uint8_t qs[kQK_K / 2];
};
static_assert(sizeof(BlockQ5_K) == 176);

using Q5_K = K4<BlockQ5_K, gguf::TensorType::Q5_K, true>;

}  // namespace orcd::quant
