#pragma once
// The GGUF value types and GGML tensor types, with each tensor type's block geometry. Numbers are the on-disk ids from
// the GGUF specification; they must never change.
#include <cstdint>
#include <optional>
#include <string_view>

namespace orcd::gguf {

enum class ValueType : uint32_t {
    U8 = 0,
    I8 = 1,
    U16 = 2,
    I16 = 3,
    U32 = 4,
    I32 = 5,
    F32 = 6,
    Bool = 7,
    String = 8,
    Array = 9,
    U64 = 10,
    I64 = 11,
    F64 = 12,
};
std::string_view value_type_name(ValueType t);  // "u32", "string", "array", ... ; "unknown" for ids out of range
bool value_type_known(uint32_t raw);
// Size in bytes of one scalar of a fixed-size type (0 for string and array).
uint32_t value_type_size(ValueType t);

enum class TensorType : uint32_t {
    F32 = 0,
    F16 = 1,
    Q4_0 = 2,
    Q4_1 = 3,
    Q5_0 = 6,
    Q5_1 = 7,
    Q8_0 = 8,
    Q8_1 = 9,
    Q2_K = 10,
    Q3_K = 11,
    Q4_K = 12,
    Q5_K = 13,
    Q6_K = 14,
    Q8_K = 15,
    BF16 = 30,
};

struct TypeTraits {
    TensorType type;
    std::string_view name;  // GGML's name: "F32", "Q4_K", ...
    uint32_t block_elems;   // elements per block (1 for plain float types)
    uint32_t block_bytes;   // bytes per block
    bool quantized;
};

// Traits of a type id read from a file; nullopt for ids this library does not know (the reader rejects those).
std::optional<TypeTraits> type_traits(uint32_t raw_type);
const TypeTraits& traits(TensorType t);  // for a known TensorType value
inline std::string_view type_name(TensorType t) { return traits(t).name; }
std::optional<TensorType> type_from_name(std::string_view name);  // case-insensitive "q4_k" -> Q4_K

// Bytes of a row of n elements; n must be a multiple of the block size (checked by callers that read files).
inline uint64_t row_bytes(TensorType t, uint64_t n) {
    const TypeTraits& tt = traits(t);
    return n / tt.block_elems * tt.block_bytes;
}

}  // namespace orcd::gguf
