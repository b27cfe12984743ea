#pragma once
// What the row converters (dequantize.cpp, quantize.cpp) share: checking a row's length and moving blocks in and out
// of unaligned row buffers.
#include <cstdint>
#include <cstring>
#include <optional>
#include <string>

#include "common/error.h"
#include "gguf/types.h"

namespace orcd::quant::detail {

using gguf::TensorType;
using gguf::TypeTraits;

[[noreturn]] inline void throw_bad_length(TensorType type, int64_t n, const char* operation) {
    throw Error(ErrorCode::InvalidArgument, std::string(operation) + ": row of " + std::to_string(n) +
                                                " elements of type " + std::string(gguf::type_name(type)) +
                                                " is not a non-negative multiple of its block size " +
                                                std::to_string(gguf::traits(type).block_elems));
}

inline int64_t block_count(TensorType type, int64_t n, const char* operation) {
    const std::optional<TypeTraits> tt = gguf::type_traits(static_cast<uint32_t>(type));
    if (!tt) {
        throw Error(ErrorCode::UnsupportedTensorType, std::string(operation) + ": tensor type id " +
                                                          std::to_string(static_cast<uint32_t>(type)) + " is unknown");
    }
    const int64_t block = tt->block_elems;
    if (n < 0 || n % block != 0) throw_bad_length(type, n, operation);
    return n / block;
}

// Blocks are copied in and out with memcpy: rows come from mmap'd files and arbitrary caller buffers, so the bytes
// are neither guaranteed to be aligned for the struct nor to hold a live object of its type.
template <typename Block>
inline Block load_block(const void* row, int64_t index) {
    Block b;
    std::memcpy(&b, static_cast<const unsigned char*>(row) + index * static_cast<int64_t>(sizeof(Block)), sizeof(b));
    return b;
}

template <typename Block>
inline void store_block(void* row, int64_t index, const Block& b) {
    std::memcpy(static_cast<unsigned char*>(row) + index * static_cast<int64_t>(sizeof(Block)), &b, sizeof(b));
}

}  // namespace orcd::quant::detail
