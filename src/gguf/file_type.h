#pragma once
// What a file's quantization is, for people: llama.cpp's `general.file_type` name where the file declares one, and the
// measured mix of tensor types by bytes (e.g. "Q5_0 45%, Q8_0 37%, Q4_K 9%, Q6_K 8%, F32 <1%").
#include <cstdint>
#include <map>
#include <optional>
#include <string>

#include "gguf/file.h"

namespace orcd::gguf {

// llama.cpp's LLAMA_FTYPE_* value -> its short name ("Q4_K_M"), nullopt for unknown values.
std::optional<std::string> file_type_name(uint64_t ftype);

struct TypeMix {
    std::map<TensorType, uint64_t> bytes_by_type;
    uint64_t total_bytes = 0;
    std::string declared;  // from general.file_type, empty when absent or unknown
    std::string mix;       // "Q5_0 45%, Q8_0 37%, ..." largest first

    // "Q4_K_M-like: Q5_0 45%, ..." — the declared name (or the largest type) followed by the mix.
    std::string summary() const;
    // Short kind for health reports: the declared name, else the largest type's name.
    std::string kind() const;
};

TypeMix type_mix(const File& f);

}  // namespace orcd::gguf
