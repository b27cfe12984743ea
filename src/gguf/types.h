#pragma once
// The GGUF value types and GGML tensor types, with each tensor type's block geometry. Numbers are the on-disk ids from
// the GGUF specification; they must never change.
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace orcd::gguf {

// Each list below is the one place its ids are written: the enum and the tables behind the functions are expanded
// from it, so adding a type is one line.

// The metadata value types: X(enumerator, id, name, bytes of one scalar; 0 for string and array), a table with
// several entries a line (kept so by hand).
// clang-format off
#define ORCD_GGUF_VALUE_TYPES(X)                                                      \
    X(U8, 0, "u8", 1)   X(I8, 1, "i8", 1)   X(U16, 2, "u16", 2) X(I16, 3, "i16", 2)   \
    X(U32, 4, "u32", 4) X(I32, 5, "i32", 4) X(F32, 6, "f32", 4) X(Bool, 7, "bool", 1) \
    X(String, 8, "string", 0) X(Array, 9, "array", 0)                                 \
    X(U64, 10, "u64", 8) X(I64, 11, "i64", 8) X(F64, 12, "f64", 8)
// clang-format on

// The tensor types: X(enumerator, id, elements a block (1 for plain float types), bytes a block, quantized). Block
// sizes follow the published block layouts (src/quant/formats/ has the structs they describe); the name is the
// enumerator's, GGML's own ("Q4_K").
#define ORCD_GGUF_TENSOR_TYPES(X)                 \
    X(F32, 0, 1, 4, false)                        \
    X(F16, 1, 1, 2, false)                        \
    X(Q4_0, 2, 32, 2 + 16, true)                  \
    X(Q4_1, 3, 32, 2 + 2 + 16, true)              \
    X(Q5_0, 6, 32, 2 + 4 + 16, true)              \
    X(Q5_1, 7, 32, 2 + 2 + 4 + 16, true)          \
    X(Q8_0, 8, 32, 2 + 32, true)                  \
    X(Q8_1, 9, 32, 4 + 32, true)                  \
    X(Q2_K, 10, 256, 16 + 64 + 2 + 2, true)       \
    X(Q3_K, 11, 256, 32 + 64 + 12 + 2, true)      \
    X(Q4_K, 12, 256, 2 + 2 + 12 + 128, true)      \
    X(Q5_K, 13, 256, 2 + 2 + 12 + 32 + 128, true) \
    X(Q6_K, 14, 256, 128 + 64 + 16 + 2, true)     \
    X(Q8_K, 15, 256, 4 + 256 + 32, true)          \
    X(BF16, 30, 1, 2, false)

#define ORCD_GGUF_ENUMERATOR(name, id, ...) name = id,
enum class ValueType : uint32_t { ORCD_GGUF_VALUE_TYPES(ORCD_GGUF_ENUMERATOR) };
enum class TensorType : uint32_t { ORCD_GGUF_TENSOR_TYPES(ORCD_GGUF_ENUMERATOR) };
#undef ORCD_GGUF_ENUMERATOR

std::string_view value_type_name(ValueType t);  // "u32", "string", "array", ... ; "unknown" for ids out of range
bool value_type_known(uint32_t raw);
// Size in bytes of one scalar of a fixed-size type (0 for string and array).
uint32_t value_type_size(ValueType t);

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

// The name GGML gives a tensor type id, the ids this library does not read included ("IQ4_XS", "TQ1_0", retired ones
// such as "Q4_2"), so that an error can say which type a file holds; empty for an id GGML does not define (up to its
// id 39, MXFP4).
std::string_view ggml_type_name(uint32_t raw_type);
// The tensor types this library reads, in id order: "F32, F16, Q4_0, ...".
std::string readable_type_list();

// Bytes of a row of n elements; n must be a multiple of the block size (checked by callers that read files).
inline uint64_t row_bytes(TensorType t, uint64_t n) {
    const TypeTraits& tt = traits(t);
    return n / tt.block_elems * tt.block_bytes;
}

}  // namespace orcd::gguf
