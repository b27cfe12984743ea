#include "synth/presets.h"

#include <fmt/format.h>

#include "common/error.h"

namespace orcd::synth {

const std::vector<Preset>& presets() {
    // Full shapes are those of the published models (config.json of Qwen2.5-0.5B/1.5B-Instruct, Qwen3-0.6B,
    // Phi-3-mini-4k-instruct, TinyLlama-1.1B for a small llama). Phi-3-mini's GGUFs carry its sliding window of 2047
    // positions; the tiny phi3 has a window of 16, so that short tests already attend past it. Tiny variants keep each architecture's particulars (GQA ratio, biases, fused
    // tensors, tied embeddings) at a size that runs in milliseconds; their row lengths are multiples of 256 so that
    // K-quant types apply without fallback.
    static const std::vector<Preset> kPresets = {
        {"qwen2.5-0.5b", "qwen2", "Qwen2.5-0.5B-Instruct (synthetic)", 24, 896, 4864, 14, 2, 32768, 1e-6f, 1e6f, true,
         "ggml-vocab-qwen2.5.gguf"},
        {"qwen2.5-1.5b", "qwen2", "Qwen2.5-1.5B-Instruct (synthetic)", 28, 1536, 8960, 12, 2, 32768, 1e-6f, 1e6f, true,
         "ggml-vocab-qwen2.5.gguf"},
        {"phi3-mini-4k", "phi3", "Phi-3-mini-4k-instruct (synthetic)", 32, 3072, 8192, 32, 32, 4096, 1e-5f, 1e4f, false,
         "ggml-vocab-phi-3.gguf", 0, 2047},
        {"qwen3-0.6b", "qwen3", "Qwen3-0.6B (synthetic)", 28, 1024, 3072, 16, 8, 40960, 1e-6f, 1e6f, true,
         "ggml-vocab-qwen2.5.gguf", 128},
        {"llama", "llama", "TinyLlama-1.1B shape (synthetic)", 22, 2048, 5632, 32, 4, 2048, 1e-5f, 1e4f, false,
         "ggml-vocab-llama-spm.gguf"},
        {"qwen2.5-tiny", "qwen2", "Qwen2.5 tiny (synthetic)", 2, 256, 512, 4, 2, 2048, 1e-6f, 1e6f, true,
         "ggml-vocab-qwen2.5.gguf"},
        {"phi3-tiny", "phi3", "Phi-3 tiny (synthetic)", 2, 256, 512, 4, 4, 2048, 1e-5f, 1e4f, false,
         "ggml-vocab-phi-3.gguf", 0, 16},
        {"qwen3-tiny", "qwen3", "Qwen3 tiny (synthetic)", 2, 256, 512, 4, 2, 2048, 1e-6f, 1e6f, true,
         "ggml-vocab-qwen2.5.gguf", 128},
        {"llama-tiny", "llama", "Llama tiny (synthetic)", 2, 256, 512, 4, 2, 2048, 1e-5f, 1e4f, false,
         "ggml-vocab-llama-spm.gguf"},
    };
    return kPresets;
}

std::string preset_names() {
    std::string s;
    for (const Preset& p : presets()) s += (s.empty() ? "" : ", ") + p.name;
    return s;
}

const Preset& find_preset(std::string_view name) {
    for (const Preset& p : presets()) {
        if (p.name == name) return p;
    }
    throw Error(ErrorCode::InvalidArgument, fmt::format("unknown preset '{}' (available: {})", name, preset_names()));
}

}  // namespace orcd::synth
