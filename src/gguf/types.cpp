#include "gguf/types.h"

#include <array>
#include <cctype>
#include <stdexcept>

namespace orcd::gguf {

namespace {

// Block sizes follow the published block layouts (see src/quant/formats/ for the structs they describe).
constexpr std::array kTypes = {
    TypeTraits{TensorType::F32, "F32", 1, 4, false},
    TypeTraits{TensorType::F16, "F16", 1, 2, false},
    TypeTraits{TensorType::Q4_0, "Q4_0", 32, 2 + 16, true},
    TypeTraits{TensorType::Q4_1, "Q4_1", 32, 2 + 2 + 16, true},
    TypeTraits{TensorType::Q5_0, "Q5_0", 32, 2 + 4 + 16, true},
    TypeTraits{TensorType::Q5_1, "Q5_1", 32, 2 + 2 + 4 + 16, true},
    TypeTraits{TensorType::Q8_0, "Q8_0", 32, 2 + 32, true},
    TypeTraits{TensorType::Q8_1, "Q8_1", 32, 4 + 32, true},
    TypeTraits{TensorType::Q2_K, "Q2_K", 256, 16 + 64 + 2 + 2, true},
    TypeTraits{TensorType::Q3_K, "Q3_K", 256, 32 + 64 + 12 + 2, true},
    TypeTraits{TensorType::Q4_K, "Q4_K", 256, 2 + 2 + 12 + 128, true},
    TypeTraits{TensorType::Q5_K, "Q5_K", 256, 2 + 2 + 12 + 32 + 128, true},
    TypeTraits{TensorType::Q6_K, "Q6_K", 256, 128 + 64 + 16 + 2, true},
    TypeTraits{TensorType::Q8_K, "Q8_K", 256, 4 + 256 + 32, true},
    TypeTraits{TensorType::BF16, "BF16", 1, 2, false},
};

}  // namespace

std::string_view value_type_name(ValueType t) {
    switch (t) {
        case ValueType::U8: return "u8";
        case ValueType::I8: return "i8";
        case ValueType::U16: return "u16";
        case ValueType::I16: return "i16";
        case ValueType::U32: return "u32";
        case ValueType::I32: return "i32";
        case ValueType::F32: return "f32";
        case ValueType::Bool: return "bool";
        case ValueType::String: return "string";
        case ValueType::Array: return "array";
        case ValueType::U64: return "u64";
        case ValueType::I64: return "i64";
        case ValueType::F64: return "f64";
    }
    return "unknown";
}

bool value_type_known(uint32_t raw) { return raw <= static_cast<uint32_t>(ValueType::F64); }

uint32_t value_type_size(ValueType t) {
    switch (t) {
        case ValueType::U8:
        case ValueType::I8:
        case ValueType::Bool: return 1;
        case ValueType::U16:
        case ValueType::I16: return 2;
        case ValueType::U32:
        case ValueType::I32:
        case ValueType::F32: return 4;
        case ValueType::U64:
        case ValueType::I64:
        case ValueType::F64: return 8;
        case ValueType::String:
        case ValueType::Array: return 0;
    }
    return 0;
}

std::optional<TypeTraits> type_traits(uint32_t raw_type) {
    for (const TypeTraits& t : kTypes) {
        if (static_cast<uint32_t>(t.type) == raw_type) return t;
    }
    return std::nullopt;
}

const TypeTraits& traits(TensorType t) {
    for (const TypeTraits& tt : kTypes) {
        if (tt.type == t) return tt;
    }
    throw std::logic_error("traits() called with a tensor type the library does not define");
}

std::optional<TensorType> type_from_name(std::string_view name) {
    for (const TypeTraits& t : kTypes) {
        if (t.name.size() != name.size()) continue;
        bool same = true;
        for (size_t i = 0; i < name.size(); ++i) {
            if (std::toupper(static_cast<unsigned char>(name[i])) != t.name[i]) {
                same = false;
                break;
            }
        }
        if (same) return t.type;
    }
    return std::nullopt;
}

}  // namespace orcd::gguf
