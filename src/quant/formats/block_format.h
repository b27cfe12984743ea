#pragma once
// What each format's traits struct states first (formats/*.h): its block layout, its GGUF type and how many
// elements a block holds. The traits derive from it and add the decoders.
#include "gguf/types.h"

namespace orcd::quant {

template <typename B, gguf::TensorType kT, int kElems>
struct BlockFormat {
    using Block = B;
    static constexpr gguf::TensorType kType = kT;
    static constexpr int kBlockElems = kElems;
};

}  // namespace orcd::quant
