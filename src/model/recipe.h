#pragma once
// The model recipe: what one decoder layer of a model computes, stated as data once, so that every backend runs the
// same description instead of re-encoding the architecture. It is derived from the architecture's table (arch.cpp:
// which tensors exist, which RoPE layout) and the file's hyperparameters and resolved weights; a backend reads it to
// decide which ops run, and declares the features it implements so that loading refuses a model it would compute
// wrongly (check_backend_features), naming the feature.
//
// The layer every recipe describes (a pre-norm llama-family decoder block):
//   h = RMSNorm(x) * attn_norm
//   q, k, v = h Wq, h Wk, h Wv            (one fused QKV matrix or three; optional biases added)
//   q, k = per-head RMSNorm(q) * q_norm    (only with qk_norm, before RoPE; qwen3)
//   q, k = RoPE(q, k)                      (layout and theta from the recipe)
//   a = softmax(q k^T / sqrt(head_dim), causal, optionally a sliding window) v      (grouped-query heads)
//   x = x + a Wo
//   h = RMSNorm(x) * ffn_norm
//   x = x + (silu(h Wgate) * (h Wup)) Wdown   (SwiGLU; gate and up fused in one matrix or two)
// and after the last layer: logits = RMSNorm(x) * output_norm  Wout  (Wout = the token embedding when tied).
#include <bitset>
#include <cstdint>
#include <initializer_list>
#include <string>
#include <string_view>

#include "model/attention_window.h"
#include "model/config.h"
#include "model/rope_layout.h"
#include "model/weights.h"

namespace orcd::model {

// What a recipe may ask of a backend beyond the plain layer above. A backend declares the ones it implements.
enum class Feature : uint8_t {
    FusedQkv,         // one [q | k | v] projection matrix (phi3)
    QkvBias,          // biases on the q/k/v projections (qwen2)
    QkNorm,           // per-head RMSNorm of q and k before RoPE (qwen3)
    RopeInterleaved,  // RoPE on adjacent pairs (llama)
    RopeNeox,         // RoPE on halves (qwen2, qwen3, phi3)
    RopeFreqFactors,  // per-frequency RoPE factors (llama 3 rope_freqs, phi3 rope_factors_long/short)
    SlidingWindow,    // attention limited to the last `sliding_window` positions (phi3)
    FusedGateUp,      // one [gate | up] FFN matrix (phi3)
    TiedHead,         // the LM head is the token embedding
    kCount,
};
std::string_view feature_name(Feature f);  // "sliding window", for messages

class FeatureSet {
public:
    FeatureSet() = default;
    FeatureSet(std::initializer_list<Feature> features) {
        for (Feature f : features) add(f);
    }
    static FeatureSet all();
    FeatureSet& add(Feature f) {
        bits_.set(static_cast<size_t>(f));
        return *this;
    }
    FeatureSet& remove(Feature f) {
        bits_.reset(static_cast<size_t>(f));
        return *this;
    }
    bool has(Feature f) const { return bits_.test(static_cast<size_t>(f)); }
    std::string names() const;  // "fused QKV, sliding window" (empty set: "none")

private:
    std::bitset<static_cast<size_t>(Feature::kCount)> bits_;
};

struct Recipe {
    // Norms: RMSNorm everywhere, one epsilon (<arch>.attention.layer_norm_rms_epsilon), also for the q/k norms.
    float rms_eps = 0.0f;
    // Projections. Per-layer form (fused or separate) is each LayerWeights' own; these say whether any layer uses it.
    bool fused_qkv = false;
    bool qkv_bias = false;
    bool qk_norm = false;
    // RoPE.
    RopeLayout rope_layout = RopeLayout::Interleaved;
    uint32_t rope_dim = 0;
    float rope_theta = 10000.0f;
    bool rope_freq_factors = false;
    // Attention: grouped-query heads (n_heads a multiple of n_kv_heads), scores scaled by 1/sqrt(head_dim).
    uint32_t n_heads = 0, n_kv_heads = 0, head_dim = 0;
    uint32_t sliding_window = 0;  // 0 = none; the convention: model/attention_window.h
    // Feed-forward: SwiGLU always; gate and up fused or separate.
    bool fused_gate_up = false;
    // Head.
    bool tied_head = false;

    FeatureSet features() const;  // the features this recipe needs
};

// Builds the recipe from the architecture's table, the hyperparameters and the resolved weights.
Recipe make_recipe(const Config& config, const ModelWeights& weights);

// Refuses a recipe that needs a feature `backend` (its name, for the message) does not implement: UnsupportedArchitecture
// naming the architecture, the backend and every missing feature.
void check_backend_features(const Recipe& recipe, std::string_view arch_name, std::string_view backend,
                            const FeatureSet& implemented);

}  // namespace orcd::model
