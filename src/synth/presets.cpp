#include "synth/presets.h"

#include <fmt/format.h>

#include "common/error.h"

namespace orcd::synth {

namespace {

// What every preset of an architecture shares: its particulars (norm epsilon, RoPE base, tied head, head size,
// sliding window).
struct Family {
    std::string architecture;
    float rms_eps;
    float rope_theta;
    bool tied_embeddings;
    uint32_t key_length = 0;
    uint32_t sliding_window = 0;
};

// A preset's own part: the model's shape.
struct Shape {
    uint32_t n_layer, n_embd, n_ff, n_head, n_head_kv, context_length;
};

Preset preset(std::string name, const Family& f, std::string model_name, const Shape& s) {
    return Preset{std::move(name), f.architecture,    std::move(model_name), s.n_layer,        s.n_embd,
                  s.n_ff,          s.n_head,          s.n_head_kv,           s.context_length, f.rms_eps,
                  f.rope_theta,    f.tied_embeddings, f.key_length,          f.sliding_window};
}

}  // namespace

const std::vector<Preset>& presets() {
    // Full shapes are those of the published models (config.json of Qwen2.5-0.5B/1.5B-Instruct, Qwen3-0.6B,
    // Phi-3-mini-4k-instruct, TinyLlama-1.1B for a small llama). Phi-3-mini's GGUFs carry its sliding window of 2047
    // positions; the tiny phi3 has a window of 16, so that short tests already attend past it. Tiny variants keep
    // each architecture's particulars (GQA ratio, biases, fused tensors, tied embeddings) at a size that runs in
    // milliseconds; their row lengths are multiples of 256 so that K-quant types apply without fallback.
    static const Family qwen2{"qwen2", 1e-6f, 1e6f, true};
    static const Family qwen3{"qwen3", 1e-6f, 1e6f, true, 128};
    static const Family phi3{"phi3", 1e-5f, 1e4f, false, 0, 2047};
    static const Family phi3_tiny{"phi3", 1e-5f, 1e4f, false, 0, 16};
    static const Family llama{"llama", 1e-5f, 1e4f, false};
    static const std::vector<Preset> kPresets = {
        preset("qwen2.5-0.5b", qwen2, "Qwen2.5-0.5B-Instruct (synthetic)", {24, 896, 4864, 14, 2, 32768}),
        preset("qwen2.5-1.5b", qwen2, "Qwen2.5-1.5B-Instruct (synthetic)", {28, 1536, 8960, 12, 2, 32768}),
        preset("phi3-mini-4k", phi3, "Phi-3-mini-4k-instruct (synthetic)", {32, 3072, 8192, 32, 32, 4096}),
        preset("qwen3-0.6b", qwen3, "Qwen3-0.6B (synthetic)", {28, 1024, 3072, 16, 8, 40960}),
        preset("llama", llama, "TinyLlama-1.1B shape (synthetic)", {22, 2048, 5632, 32, 4, 2048}),
        preset("qwen2.5-tiny", qwen2, "Qwen2.5 tiny (synthetic)", {2, 256, 512, 4, 2, 2048}),
        preset("phi3-tiny", phi3_tiny, "Phi-3 tiny (synthetic)", {2, 256, 512, 4, 4, 2048}),
        preset("qwen3-tiny", qwen3, "Qwen3 tiny (synthetic)", {2, 256, 512, 4, 2, 2048}),
        preset("llama-tiny", llama, "Llama tiny (synthetic)", {2, 256, 512, 4, 2, 2048}),
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
