#include "gguf/types.h"

#include <array>
#include <cctype>
#include <stdexcept>

#include "common/join.h"

namespace orcd::gguf {

namespace {

#define ORCD_GGUF_TENSOR_TRAITS(name, id, elems, bytes, quantized) \
    TypeTraits{TensorType::name, #name, elems, bytes, quantized},
constexpr std::array kTypes = {ORCD_GGUF_TENSOR_TYPES(ORCD_GGUF_TENSOR_TRAITS)};
#undef ORCD_GGUF_TENSOR_TRAITS

struct ValueTypeInfo {
    ValueType type;
    std::string_view name;
    uint32_t size;
};
#define ORCD_GGUF_VALUE_INFO(enumerator, id, name, size) ValueTypeInfo{ValueType::enumerator, name, size},
constexpr std::array kValueTypes = {ORCD_GGUF_VALUE_TYPES(ORCD_GGUF_VALUE_INFO)};
#undef ORCD_GGUF_VALUE_INFO

// The ids are 0..12 with no gap, so an id indexes the table (checked here, at compile time).
constexpr bool ids_are_indices() {
    for (size_t i = 0; i < kValueTypes.size(); ++i) {
        if (static_cast<size_t>(kValueTypes[i].type) != i) return false;
    }
    return true;
}
static_assert(ids_are_indices());

// The tensor types' list is written in id order, so kTypes is too (readable_type_list relies on it).
constexpr bool tensor_types_in_id_order() {
    for (size_t i = 1; i < kTypes.size(); ++i) {
        if (kTypes[i - 1].type >= kTypes[i].type) return false;
    }
    return true;
}
static_assert(tensor_types_in_id_order());

// GGML's ids beyond the ones above: its other types, and the ones it has retired (4, 5, 31-33, 36-38). Only their
// names are known here, for errors.
struct OtherType {
    uint32_t id;
    std::string_view name;
};
constexpr std::array kOtherGgmlTypes = {
    OtherType{4, "Q4_2"},      OtherType{5, "Q4_3"},        OtherType{16, "IQ2_XXS"},    OtherType{17, "IQ2_XS"},
    OtherType{18, "IQ3_XXS"},  OtherType{19, "IQ1_S"},      OtherType{20, "IQ4_NL"},     OtherType{21, "IQ3_S"},
    OtherType{22, "IQ2_S"},    OtherType{23, "IQ4_XS"},     OtherType{24, "I8"},         OtherType{25, "I16"},
    OtherType{26, "I32"},      OtherType{27, "I64"},        OtherType{28, "F64"},        OtherType{29, "IQ1_M"},
    OtherType{31, "Q4_0_4_4"}, OtherType{32, "Q4_0_4_8"},   OtherType{33, "Q4_0_8_8"},   OtherType{34, "TQ1_0"},
    OtherType{35, "TQ2_0"},    OtherType{36, "IQ4_NL_4_4"}, OtherType{37, "IQ4_NL_4_8"}, OtherType{38, "IQ4_NL_8_8"},
    OtherType{39, "MXFP4"},
};

}  // namespace

std::string_view value_type_name(ValueType t) {
    return value_type_known(static_cast<uint32_t>(t)) ? kValueTypes[static_cast<uint32_t>(t)].name : "unknown";
}

bool value_type_known(uint32_t raw) { return raw < kValueTypes.size(); }

uint32_t value_type_size(ValueType t) {
    return value_type_known(static_cast<uint32_t>(t)) ? kValueTypes[static_cast<uint32_t>(t)].size : 0;
}

std::string_view ggml_type_name(uint32_t raw_type) {
    if (const std::optional<TypeTraits> t = type_traits(raw_type)) return t->name;
    for (const OtherType& o : kOtherGgmlTypes) {
        if (o.id == raw_type) return o.name;
    }
    return {};
}

std::string readable_type_list() {
    return join(kTypes, ", ", [](const TypeTraits& t) { return t.name; });
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
