#include "synth/presets.h"

#include <fmt/format.h>

#include "common/error.h"

namespace orcd::synth {

namespace {

// What every preset of an architecture shares: its particulars (norm epsilon, RoPE base, tied head, head size,
// sliding window). A preset adds a name and the shape.
Preset family(std::string architecture, float rms_eps, float rope_theta, bool tied, uint32_t key_length = 0,
              uint32_t sliding_window = 0) {
    Preset p{};
    p.architecture = std::move(architecture);
    p.rms_eps = rms_eps;
    p.rope_theta = rope_theta;
    p.tied_embeddings = tied;
    p.key_length = key_length;
    p.sliding_window = sliding_window;
    return p;
}

Preset shaped(Preset p, std::string name, std::string model_name, uint32_t n_layer, uint32_t n_embd, uint32_t n_ff,
              uint32_t n_head, uint32_t n_head_kv, uint32_t context_length) {
    p.name = std::move(name);
    p.model_name = std::move(model_name);
    p.n_layer = n_layer;
    p.n_embd = n_embd;
    p.n_ff = n_ff;
    p.n_head = n_head;
    p.n_head_kv = n_head_kv;
    p.context_length = context_length;
    return p;
}

}  // namespace

const std::vector<Preset>& presets() {
    // Full shapes are those of the published models (config.json of Qwen2.5-0.5B/1.5B-Instruct, Qwen3-0.6B,
    // Phi-3-mini-4k-instruct, TinyLlama-1.1B for a small llama). Phi-3-mini's GGUFs carry its sliding window of 2047
    // positions; the tiny phi3 has a window of 16, so that short tests already attend past it. Tiny variants keep
    // each architecture's particulars (GQA ratio, biases, fused tensors, tied embeddings) at a size that runs in
    // milliseconds; their row lengths are multiples of 256 so that K-quant types apply without fallback.
    static const Preset qwen2 = family("qwen2", 1e-6f, 1e6f, true);
    static const Preset qwen3 = family("qwen3", 1e-6f, 1e6f, true, 128);
    static const Preset phi3 = family("phi3", 1e-5f, 1e4f, false, 0, 2047);
    static const Preset phi3_tiny = family("phi3", 1e-5f, 1e4f, false, 0, 16);
    static const Preset llama = family("llama", 1e-5f, 1e4f, false);
    static const std::vector<Preset> kPresets = {
        shaped(qwen2, "qwen2.5-0.5b", "Qwen2.5-0.5B-Instruct (synthetic)", 24, 896, 4864, 14, 2, 32768),
        shaped(qwen2, "qwen2.5-1.5b", "Qwen2.5-1.5B-Instruct (synthetic)", 28, 1536, 8960, 12, 2, 32768),
        shaped(phi3, "phi3-mini-4k", "Phi-3-mini-4k-instruct (synthetic)", 32, 3072, 8192, 32, 32, 4096),
        shaped(qwen3, "qwen3-0.6b", "Qwen3-0.6B (synthetic)", 28, 1024, 3072, 16, 8, 40960),
        shaped(llama, "llama", "TinyLlama-1.1B shape (synthetic)", 22, 2048, 5632, 32, 4, 2048),
        shaped(qwen2, "qwen2.5-tiny", "Qwen2.5 tiny (synthetic)", 2, 256, 512, 4, 2, 2048),
        shaped(phi3_tiny, "phi3-tiny", "Phi-3 tiny (synthetic)", 2, 256, 512, 4, 4, 2048),
        shaped(qwen3, "qwen3-tiny", "Qwen3 tiny (synthetic)", 2, 256, 512, 4, 2, 2048),
        shaped(llama, "llama-tiny", "Llama tiny (synthetic)", 2, 256, 512, 4, 2, 2048),
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
