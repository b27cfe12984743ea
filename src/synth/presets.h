#pragma once
// Architecture presets for synthetic test models: the real hyperparameters of the reference models (and small
// variants for fast tests), so that random-weight files have the real tensor names, shapes and metadata keys.
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace orcd::synth {

struct Preset {
    std::string name;          // "qwen2.5-0.5b"
    std::string architecture;  // general.architecture: qwen2 | qwen3 | llama | phi3
    std::string model_name;    // general.name
    uint32_t n_layer;
    uint32_t n_embd;
    uint32_t n_ff;
    uint32_t n_head;
    uint32_t n_head_kv;
    uint32_t context_length;
    float rms_eps;
    float rope_theta;
    bool tied_embeddings;         // no output.weight: the LM head reuses token_embd
    uint32_t key_length = 0;      // <arch>.attention.key_length when the head size is not n_embd / n_head (qwen3)
    uint32_t sliding_window = 0;  // <arch>.attention.sliding_window when the model has one (phi3), else 0

    uint32_t head_dim() const { return key_length ? key_length : n_embd / n_head; }
};

const std::vector<Preset>& presets();
const Preset& find_preset(std::string_view name);  // throws InvalidArgument listing the presets
std::string preset_names();                        // "qwen2.5-0.5b, qwen2.5-1.5b, ..."

}  // namespace orcd::synth
