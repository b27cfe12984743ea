#include "gguf/types.h"

#include <array>
#include <cctype>
#include <stdexcept>

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

}  // namespace

std::string_view value_type_name(ValueType t) {
    return value_type_known(static_cast<uint32_t>(t)) ? kValueTypes[static_cast<uint32_t>(t)].name : "unknown";
}

bool value_type_known(uint32_t raw) { return raw < kValueTypes.size(); }

uint32_t value_type_size(ValueType t) {
    return value_type_known(static_cast<uint32_t>(t)) ? kValueTypes[static_cast<uint32_t>(t)].size : 0;
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
