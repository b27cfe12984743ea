// The reference dequantizer: every quantized format through its header's decode8 (formats/), the float types by
// widening.
#include <cstring>
#include <string>

#include "common/error.h"
#include "common/half.h"
#include "quant/convert.h"
#include "quant/formats.h"
#include "quant/row_blocks.h"

namespace orcd::quant {

namespace {

template <typename F>
void dequantize_blocks(const void* src, float* dst, int64_t n_blocks) {
    for (int64_t i = 0; i < n_blocks; ++i) {
        const typename F::Block b = detail::load_block<typename F::Block>(src, i);
        float* y = dst + i * F::kBlockElems;
        for (int k0 = 0; k0 < F::kBlockElems; k0 += 8) F::decode8(b, k0, y + k0);
    }
}

template <float (*convert)(uint16_t)>
void widen_halves(const void* src, float* dst, int64_t n) {
    const auto* in = static_cast<const unsigned char*>(src);
    for (int64_t i = 0; i < n; ++i) {
        uint16_t h;
        std::memcpy(&h, in + 2 * i, 2);
        dst[i] = convert(h);
    }
}

}  // namespace

void dequantize_row(TensorType type, const void* src, float* dst, int64_t n) {
    const int64_t blocks = detail::block_count(type, n, "dequantize_row");
    if (blocks == 0) return;  // src/dst may be null for an empty row, which memcpy does not allow
    switch (type) {
        case TensorType::F32: std::memcpy(dst, src, static_cast<size_t>(n) * sizeof(float)); return;
        case TensorType::F16: widen_halves<fp16_to_fp32>(src, dst, n); return;
        case TensorType::BF16: widen_halves<bf16_to_fp32>(src, dst, n); return;
        default: break;
    }
    if (visit_format(type, [&](auto f) { dequantize_blocks<decltype(f)>(src, dst, blocks); })) return;
    throw Error(ErrorCode::UnsupportedTensorType,
                "dequantize_row: tensor type id " + std::to_string(static_cast<uint32_t>(type)) + " is not supported");
}

}  // namespace orcd::quant
