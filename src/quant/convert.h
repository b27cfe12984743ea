#pragma once
// Row conversion between float32 and every GGML tensor type the library knows: a CPU reference dequantizer for all of
// them, and simple, fast quantizers for the types the model writer needs. The block layouts and decoders live in
// formats/ (one header per format, registered in formats.h).
//
// Rows are contiguous: `n` elements (a multiple of the type's block size) and row_bytes(type, n) bytes of blocks.
// Buffers need no particular alignment.
#include <cstdint>

#include "gguf/types.h"

namespace orcd::quant {

using gguf::TensorType;

// Writes n floats decoded from src. Throws Error(InvalidArgument) when n is negative or not a multiple of the block.
void dequantize_row(TensorType type, const void* src, float* dst, int64_t n);

// Whether quantize_row supports the type. Today that is every type in types.h; the query exists so callers (the model
// writer, the CLI) need not change when a type without a quantizer is added.
bool can_quantize(TensorType type);

// Encodes n floats into row_bytes(type, n) bytes at dst. The quantizers pick every scale from the data's range and
// round it so the range stays representable, giving a guaranteed worst-case error (stated per format in quant.cpp);
// they do no search, so they run at hundreds of millions of elements per second. Deterministic: the same input
// gives the same bytes on every machine. Non-finite inputs give unspecified (but memory-safe) blocks.
// Throws Error(InvalidArgument) for a bad n and Error(UnsupportedTensorType) when !can_quantize(type).
void quantize_row(TensorType type, const float* src, void* dst, int64_t n);

}  // namespace orcd::quant
