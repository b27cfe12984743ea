#pragma once
// Half-precision bits to float and back on the device, for kernels that keep f16/bf16 values as raw uint16_t (weights
// as they sit in GGUF, the f16 KV cache). Device code only; quant/hd.h has the host-and-device form the format
// decoders use.
#include <cuda_fp16.h>

#include <cstdint>

namespace orcd::cuda {

__device__ __forceinline__ float h2f(uint16_t bits) { return __half2float(__ushort_as_half(bits)); }
__device__ __forceinline__ float bf2f(uint16_t bits) { return __uint_as_float(static_cast<uint32_t>(bits) << 16); }
// Float to f16 bits, rounded to nearest even (the f16 KV cache, the prefill's GEMM operands, dequantized weights).
__device__ __forceinline__ uint16_t f2h(float v) { return __half_as_ushort(__float2half_rn(v)); }

}  // namespace orcd::cuda
