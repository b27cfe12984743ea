#include "model/recipe.h"

#include <fmt/format.h>

#include "common/error.h"

namespace orcd::model {

std::string_view feature_name(Feature f) {
    switch (f) {
        case Feature::FusedQkv: return "fused QKV projection";
        case Feature::QkvBias: return "QKV bias";
        case Feature::QkNorm: return "q/k RMSNorm";
        case Feature::RopeInterleaved: return "interleaved RoPE";
        case Feature::RopeNeox: return "NeoX RoPE";
        case Feature::RopeFreqFactors: return "RoPE frequency factors";
        case Feature::SlidingWindow: return "sliding-window attention";
        case Feature::FusedGateUp: return "fused gate+up projection";
        case Feature::TiedHead: return "tied LM head";
        case Feature::kCount: break;
    }
    return "unknown feature";
}

FeatureSet FeatureSet::all() {
    FeatureSet s;
    for (size_t i = 0; i < static_cast<size_t>(Feature::kCount); ++i) s.add(static_cast<Feature>(i));
    return s;
}

std::string FeatureSet::names() const {
    std::string out;
    for (size_t i = 0; i < static_cast<size_t>(Feature::kCount); ++i) {
        if (!bits_.test(i)) continue;
        if (!out.empty()) out += ", ";
        out += feature_name(static_cast<Feature>(i));
    }
    return out.empty() ? "none" : out;
}

FeatureSet Recipe::features() const {
    FeatureSet s;
    if (fused_qkv) s.add(Feature::FusedQkv);
    if (qkv_bias) s.add(Feature::QkvBias);
    if (qk_norm) s.add(Feature::QkNorm);
    s.add(rope_layout == RopeLayout::NeoX ? Feature::RopeNeox : Feature::RopeInterleaved);
    if (rope_freq_factors) s.add(Feature::RopeFreqFactors);
    if (sliding_window > 0) s.add(Feature::SlidingWindow);
    if (fused_gate_up) s.add(Feature::FusedGateUp);
    if (tied_head) s.add(Feature::TiedHead);
    return s;
}

Recipe make_recipe(const Config& c, const ModelWeights& w) {
    Recipe r;
    r.rms_eps = c.rms_eps;
    r.rope_layout = c.rope_layout;
    r.rope_dim = c.rope_dim;
    r.rope_theta = c.rope_theta;
    r.rope_freq_factors = w.rope_freqs.valid() || w.rope_factors_long.valid() || w.rope_factors_short.valid();
    r.n_heads = c.n_heads;
    r.n_kv_heads = c.n_kv_heads;
    r.head_dim = c.head_dim;
    r.sliding_window = c.sliding_window.value_or(0);
    r.tied_head = w.output_tied;
    for (const LayerWeights& l : w.layers) {
        r.fused_qkv |= l.fused_qkv();
        r.qkv_bias |= l.attn_q_bias.valid() || l.attn_k_bias.valid() || l.attn_v_bias.valid();
        r.qk_norm |= l.attn_q_norm.valid();
        r.fused_gate_up |= l.fused_gate_up();
    }
    // The layer above normalizes q and k before RoPE but after nothing else: a bias would have to be added before
    // the norm, which no architecture in the registry does and no backend implements.
    if (r.qk_norm && r.qkv_bias) {
        throw Error(ErrorCode::UnsupportedArchitecture,
                    fmt::format("architecture {}: q/k norms together with QKV biases are not supported", c.arch_name));
    }
    return r;
}

void check_backend_features(const Recipe& recipe, std::string_view arch_name, std::string_view backend,
                            const FeatureSet& implemented) {
    const FeatureSet needed = recipe.features();
    FeatureSet missing;
    bool any = false;
    for (size_t i = 0; i < static_cast<size_t>(Feature::kCount); ++i) {
        const auto f = static_cast<Feature>(i);
        if (needed.has(f) && !implemented.has(f)) {
            missing.add(f);
            any = true;
        }
    }
    if (!any) return;
    throw Error(ErrorCode::UnsupportedArchitecture,
                fmt::format("the {} backend cannot run this {} model: it does not implement {} (the model needs: {})",
                            backend, arch_name, missing.names(), needed.names()));
}

}  // namespace orcd::model
