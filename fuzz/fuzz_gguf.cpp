// libFuzzer target for the GGUF parser: any input must parse or raise orcd::Error; a parsed file's every tensor span
// and string must be readable, and the hyperparameter checks and the model config either accept it or raise
// orcd::Error (never crash or read out of bounds on hostile values).
#include <cstddef>
#include <cstdint>
#include <span>

#include "gguf/file.h"
#include "model/config.h"
#include "model/hparams_check.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    try {
        const auto f = orcd::gguf::File::parse(std::span(reinterpret_cast<const std::byte*>(data), size), "fuzz");
        volatile uint64_t sink = 0;
        for (const auto& kv : f.metadata()) {
            if (!kv.value.str.empty()) sink = sink + static_cast<unsigned char>(kv.value.str.back());
            for (auto s : kv.value.arr.strings) sink = sink + s.size();
        }
        for (const auto& t : f.tensors()) {
            const auto d = f.tensor_data(t);
            if (!d.empty()) sink = sink + static_cast<unsigned char>(d.front()) + static_cast<unsigned char>(d.back());
        }
        for (const auto& v : orcd::model::check_hparams(f)) sink = sink + v.message().size();
        (void)orcd::model::load_config(f);
    } catch (const orcd::Error&) {}
    return 0;
}
