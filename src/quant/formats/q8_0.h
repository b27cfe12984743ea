#pragma once
// Q8_0: blocks of 32, y = d * q, q signed 8 bits.
#include <cstdint>

#include "gguf/types.h"
#include "quant/formats/block_format.h"
#include "quant/hd.h"
#ifdef __CUDACC__
#include "quant/cuda_bits.cuh"
#endif

namespace orcd::quant {

struct BlockQ8_0 {
    uint16_t d;
    int8_t qs[32];
};
static_assert(sizeof(BlockQ8_0) == 34);

struct Q8_0 : BlockFormat<BlockQ8_0, gguf::TensorType::Q8_0, 32> {
    ORCD_HD static void decode8(const Block& b, int k0, float* out) {
        scale_int8x8(half_to_float(b.d), b.qs + k0, out);
    }

    // The one chunk with signed u (see Chunk32).
    ORCD_HD static void unpack32(const Block& b, int, Chunk32& k) {
        const float d = half_to_float(b.d);
        for (int l = 0; l < 32; ++l) k.u[l] = b.qs[l];
        set_chunk_scales(k, d, d, 0, 0);
    }

#ifdef __CUDACC__
    __device__ static float dot4(const Block& b, int g, float4 x) {
        using namespace cuda_bits;
        uint32_t w[1];
        load_words(reinterpret_cast<const uint8_t*>(b.qs) + 4 * g, w);
        return half_to_float(b.d) * bytes_dot<128>(w[0] ^ 0x80808080u, x);  // int8 + 128 as unsigned bytes
    }

    // The int8 matvecs: a unit is the whole block, loaded once (q8_load) and multiplied with every column (Unit<> in
    // backend/cuda/matvec_q8_units.cuh).
    static constexpr int kQ8Units = 1;
    struct Q8Unit {
        uint32_t w[8];
        float d;
    };
    __device__ static Q8Unit q8_load(const Block& b, int) {
        Q8Unit q;
        cuda_bits::load_words(reinterpret_cast<const uint8_t*>(b.qs), q.w);
        q.d = half_to_float(b.d);
        return q;
    }
#endif
};

}  // namespace orcd::quant
