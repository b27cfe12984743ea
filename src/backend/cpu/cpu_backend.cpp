#include "backend/cpu/cpu_backend.h"

#include <fmt/format.h>

#include <algorithm>
#include <cstring>
#include <vector>

#include "backend/cpu/matmul.h"
#include "backend/cpu/ops.h"
#include "backend/cpu/thread_pool.h"
#include "backend/check_batch.h"
#include "common/error.h"
#include "quant/convert.h"

namespace orcd::backend::cpu {

namespace {

using model::TensorId;

// The recipe features this forward pass implements (model/recipe.h). Llama 3 frequency factors and Phi-3's
// long-context RoPE scaling change the rotation; computing without them would give plausible but wrong output, so
// they are left out and such a model is refused at construction.
const model::FeatureSet kCpuFeatures = model::FeatureSet::all().remove(model::Feature::RopeFreqFactors);

struct Layer {
    std::vector<float> attn_norm, ffn_norm;
    WeightView q, k, v, o;
    std::vector<float> bq, bk, bv;  // empty when the model has no bias
    std::vector<float> q_norm, k_norm;  // [head_dim] each with Recipe::qk_norm, else empty
    WeightView gate, up, down;
};

// The model with every tensor turned into a typed view, once.
struct Weights {
    WeightView token_embd, output;
    std::vector<float> output_norm;
    std::vector<Layer> layers;
};

class CpuBackend;

class CpuSequence final : public Sequence {
public:
    CpuSequence(CpuBackend& backend, uint32_t n_ctx, KvCacheType kv_type);

    std::span<const float> prefill(std::span<const TokenId> tokens, bool all_logits) override;
    std::span<const float> decode(TokenId token) override { return prefill(std::span(&token, 1), false); }
    void reset() override { n_past_ = 0; }
    uint32_t n_past() const override { return n_past_; }
    uint32_t n_ctx() const override { return n_ctx_; }

private:
    // Runs tokens at positions n_past_.. (at most max_batch); writes logits rows for the last token or for all.
    void forward(std::span<const TokenId> tokens, bool all_logits, float* logits);
    KvLayerView kv_layer(size_t layer);

    CpuBackend& b_;
    uint32_t n_ctx_;
    KvCacheType kv_type_;
    uint32_t n_past_ = 0;
    std::vector<std::vector<std::byte>> k_, v_;  // per layer: [n_ctx][kv_dim] of f32 or f16
    std::vector<float> logits_;
    // Activations, token-major, resized per batch.
    std::vector<float> x_, h_, q_, k_cur_, v_cur_, attn_, gate_, up_;
};

class CpuBackend final : public Backend {
public:
    CpuBackend(model::Model model, const CpuOptions& options);

    std::string_view name() const override { return "cpu"; }
    const model::Config& config() const override { return model_.config; }
    std::unique_ptr<Sequence> new_sequence(const SequenceOptions& options) override {
        uint32_t n_ctx = options.n_ctx == 0 ? model_.config.context_length : options.n_ctx;
        if (n_ctx > model_.config.context_length) {
            throw Error(ErrorCode::InvalidArgument,
                        fmt::format("context of {} tokens exceeds the model's context length {}", n_ctx,
                                    model_.config.context_length));
        }
        return std::make_unique<CpuSequence>(*this, n_ctx, options.kv_type);
    }

    const model::Model model_;
    const CpuOptions options_;
    Weights w_;
    std::vector<double> inv_freq_;
    ThreadPool pool_;
};

std::vector<float> f32_vector(const model::TensorRef& t) {
    if (t.type != gguf::TensorType::F32) {
        throw Error(ErrorCode::UnsupportedTensorType,
                    fmt::format("tensor '{}': the CPU backend reads vectors as F32, found {}", t.name,
                                gguf::type_name(t.type)));
    }
    std::vector<float> v(t.n_bytes / sizeof(float));
    std::memcpy(v.data(), t.data.data(), v.size() * sizeof(float));
    return v;
}

CpuBackend::CpuBackend(model::Model model, const CpuOptions& options)
    : model_(std::move(model)), options_(options), pool_(options.n_threads) {
    model::check_backend_features(model_.recipe, model_.config.arch_name, "cpu", kCpuFeatures);
    const model::Config& c = model_.config;
    const model::ModelWeights& mw = model_.weights;
    auto matrix = [&](TensorId id) {
        const model::TensorRef& t = mw[id];
        WeightView v{t.type, t.data.data(), static_cast<int64_t>(t.rows()), static_cast<int64_t>(t.row_length())};
        check_matmul_weight(v, t.name.c_str());
        return v;
    };
    auto bias = [&](TensorId id) { return id.valid() ? f32_vector(mw[id]) : std::vector<float>{}; };
    w_.token_embd = matrix(mw.token_embd);
    w_.output = matrix(mw.output);
    w_.output_norm = f32_vector(mw[mw.output_norm]);
    for (const model::LayerWeights& lw : mw.layers) {
        Layer l;
        l.attn_norm = f32_vector(mw[lw.attn_norm]);
        l.ffn_norm = f32_vector(mw[lw.ffn_norm]);
        if (lw.fused_qkv()) {
            // phi3: rows are Q (q_dim), then K (kv_dim), then V (kv_dim); three row slices of one matrix.
            const WeightView qkv = matrix(lw.attn_qkv);
            l.q = qkv.slice_rows(0, c.q_dim());
            l.k = qkv.slice_rows(c.q_dim(), c.kv_dim());
            l.v = qkv.slice_rows(c.q_dim() + c.kv_dim(), c.kv_dim());
        } else {
            l.q = matrix(lw.attn_q);
            l.k = matrix(lw.attn_k);
            l.v = matrix(lw.attn_v);
        }
        l.bq = bias(lw.attn_q_bias);
        l.bk = bias(lw.attn_k_bias);
        l.bv = bias(lw.attn_v_bias);
        l.q_norm = bias(lw.attn_q_norm);
        l.k_norm = bias(lw.attn_k_norm);
        l.o = matrix(lw.attn_output);
        if (lw.fused_gate_up()) {
            // phi3: the first n_ff rows are the gate, the next n_ff the up projection.
            const WeightView gu = matrix(lw.ffn_up);
            l.gate = gu.slice_rows(0, c.n_ff);
            l.up = gu.slice_rows(c.n_ff, c.n_ff);
        } else {
            l.gate = matrix(lw.ffn_gate);
            l.up = matrix(lw.ffn_up);
        }
        l.down = matrix(lw.ffn_down);
        w_.layers.push_back(std::move(l));
    }
    inv_freq_ = rope_inv_freq(static_cast<int>(c.rope_dim), c.rope_theta);
}

CpuSequence::CpuSequence(CpuBackend& backend, uint32_t n_ctx, KvCacheType kv_type)
    : b_(backend), n_ctx_(n_ctx), kv_type_(kv_type) {
    const model::Config& c = b_.model_.config;
    const size_t elem = kv_type == KvCacheType::F32 ? 4 : 2;
    const size_t bytes = static_cast<size_t>(n_ctx) * c.kv_dim() * elem;
    k_.resize(c.n_layers);
    v_.resize(c.n_layers);
    for (uint32_t l = 0; l < c.n_layers; ++l) {
        k_[l].resize(bytes);
        v_[l].resize(bytes);
    }
}

KvLayerView CpuSequence::kv_layer(size_t layer) {
    const model::Config& c = b_.model_.config;
    return {kv_type_ == KvCacheType::F32 ? KvType::F32 : KvType::F16,
            k_[layer].data(),
            v_[layer].data(),
            n_ctx_,
            static_cast<int>(c.n_kv_heads),
            static_cast<int>(c.head_dim)};
}

std::span<const float> CpuSequence::prefill(std::span<const TokenId> tokens, bool all_logits) {
    const model::Config& c = b_.model_.config;
    check_batch(tokens, c.n_vocab, n_past_, n_ctx_);
    const size_t n_vocab = c.n_vocab;
    logits_.resize((all_logits ? tokens.size() : 1) * n_vocab);
    const size_t batch = std::max<uint32_t>(1, b_.options_.max_batch);
    for (size_t i = 0; i < tokens.size(); i += batch) {
        const auto chunk = tokens.subspan(i, std::min(batch, tokens.size() - i));
        const bool last = i + chunk.size() == tokens.size();
        if (all_logits) {
            forward(chunk, true, logits_.data() + i * n_vocab);
        } else {
            forward(chunk, false, last ? logits_.data() : nullptr);
        }
    }
    return logits_;
}

void CpuSequence::forward(std::span<const TokenId> tokens, bool all_logits, float* logits) {
    const model::Config& c = b_.model_.config;
    const model::Recipe& r = b_.model_.recipe;
    const Weights& w = b_.w_;
    ThreadPool& pool = b_.pool_;
    const Activations act = b_.options_.activations;
    const int64_t T = static_cast<int64_t>(tokens.size());
    const int64_t E = c.n_embd, QD = c.q_dim(), KD = c.kv_dim(), F = c.n_ff;
    const int64_t pos0 = n_past_;
    x_.resize(static_cast<size_t>(T * E));
    h_.resize(x_.size());
    q_.resize(static_cast<size_t>(T * QD));
    attn_.resize(q_.size());
    k_cur_.resize(static_cast<size_t>(T * KD));
    v_cur_.resize(k_cur_.size());
    gate_.resize(static_cast<size_t>(T * F));
    up_.resize(gate_.size());

    for (int64_t t = 0; t < T; ++t) {
        quant::dequantize_row(w.token_embd.type, w.token_embd.row(tokens[static_cast<size_t>(t)]), x_.data() + t * E,
                             E);
    }
    auto add_bias = [](float* y, const std::vector<float>& b, int64_t T_, int64_t n) {
        if (b.empty()) return;
        for (int64_t t = 0; t < T_; ++t) add(y + t * n, b.data(), n);
    };
    for (size_t li = 0; li < w.layers.size(); ++li) {
        const Layer& l = w.layers[li];
        // Attention block.
        rms_norm(x_.data(), l.attn_norm.data(), T, E, r.rms_eps, h_.data());
        matmul(l.q, h_.data(), T, q_.data(), pool, act);
        matmul(l.k, h_.data(), T, k_cur_.data(), pool, act);
        matmul(l.v, h_.data(), T, v_cur_.data(), pool, act);
        add_bias(q_.data(), l.bq, T, QD);
        add_bias(k_cur_.data(), l.bk, T, KD);
        add_bias(v_cur_.data(), l.bv, T, KD);
        if (r.qk_norm) {
            // Every head of every token is one row of head_dim values, normalized with the same weight vector.
            rms_norm(q_.data(), l.q_norm.data(), T * r.n_heads, r.head_dim, r.rms_eps, q_.data());
            rms_norm(k_cur_.data(), l.k_norm.data(), T * r.n_kv_heads, r.head_dim, r.rms_eps, k_cur_.data());
        }
        for (int64_t t = 0; t < T; ++t) {
            rope(q_.data() + t * QD, static_cast<int>(r.n_heads), static_cast<int>(r.head_dim),
                 static_cast<int>(r.rope_dim), pos0 + t, b_.inv_freq_, r.rope_layout);
            rope(k_cur_.data() + t * KD, static_cast<int>(r.n_kv_heads), static_cast<int>(r.head_dim),
                 static_cast<int>(r.rope_dim), pos0 + t, b_.inv_freq_, r.rope_layout);
        }
        const KvLayerView kv = kv_layer(li);
        kv_store(kv, pos0, T, k_cur_.data(), v_cur_.data());
        attention(q_.data(), kv, pos0, T, static_cast<int>(r.n_heads), attn_.data(), pool, r.sliding_window);
        matmul(l.o, attn_.data(), T, h_.data(), pool, act);
        add(x_.data(), h_.data(), T * E);
        // Feed-forward block (SwiGLU).
        rms_norm(x_.data(), l.ffn_norm.data(), T, E, r.rms_eps, h_.data());
        matmul(l.gate, h_.data(), T, gate_.data(), pool, act);
        matmul(l.up, h_.data(), T, up_.data(), pool, act);
        swiglu(gate_.data(), up_.data(), T * F, gate_.data());
        matmul(l.down, gate_.data(), T, h_.data(), pool, act);
        add(x_.data(), h_.data(), T * E);
    }
    n_past_ += static_cast<uint32_t>(T);
    if (!logits) return;
    // Final norm and LM head: for every token (perplexity) or only the last (generation).
    const int64_t first = all_logits ? 0 : T - 1;
    const int64_t n_out = T - first;
    rms_norm(x_.data() + first * E, w.output_norm.data(), n_out, E, r.rms_eps, h_.data());
    matmul(w.output, h_.data(), n_out, logits, pool, act);
}

}  // namespace

std::unique_ptr<Backend> make_cpu_backend(model::Model model, const CpuOptions& options) {
    return std::make_unique<CpuBackend>(std::move(model), options);
}

}  // namespace orcd::backend::cpu
