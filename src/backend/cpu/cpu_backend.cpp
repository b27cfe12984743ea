#include "backend/cpu/cpu_backend.h"

#include <fmt/format.h>

#include <algorithm>
#include <cstring>
#include <vector>

#include "backend/cpu/matmul.h"
#include "backend/cpu/ops.h"
#include "backend/cpu/thread_pool.h"
#include "backend/check_batch.h"
#include "backend/token_mask.h"
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
    std::vector<float> bq, bk, bv;      // empty when the model has no bias
    std::vector<float> q_norm, k_norm;  // [head_dim] each with Recipe::qk_norm, else empty
    WeightView gate, up, down;
};

// The model with every tensor turned into a typed view, once.
struct Weights {
    WeightView token_embd, output;
    std::vector<float> output_norm;
    std::vector<Layer> layers;
};

// The KV pool in host memory. Page q holds, for each layer l, K then V of page_size positions, each position a row of
// kv_dim values: page q, layer l, K row i starts at element q * page_stride + l * 2 * page_size * kv_dim + i * kv_dim
// (V: page_size * kv_dim further). A page is one contiguous block, so a sequence's scattered pages cost nothing.
class CpuKvPool final : public KvPool {
public:
    CpuKvPool(const KvPoolOptions& o, uint64_t page_bytes, const model::Config& c)
        : KvPool(o, page_bytes),
          elem_(o.kv_type == KvCacheType::F32 ? 4 : 2),
          kv_dim_(c.kv_dim()),
          n_kv_heads_(static_cast<int>(c.n_kv_heads)),
          head_dim_(static_cast<int>(c.head_dim)),
          data_(page_bytes * o.num_pages) {}

    // Layer `layer`'s view through a page table.
    KvLayerView layer(size_t layer, std::span<const uint32_t> pages) const {
        const int64_t ps = page_size();
        const int64_t layer_off = static_cast<int64_t>(layer) * 2 * ps * kv_dim_;  // elements
        std::byte* base = const_cast<std::byte*>(data_.data()) + layer_off * elem_;
        return {elem_ == 4 ? KvType::F32 : KvType::F16,
                base,
                base + ps * kv_dim_ * elem_,
                static_cast<int64_t>(pages.size()) * ps,
                n_kv_heads_,
                head_dim_,
                pages.data(),
                ps,
                static_cast<int64_t>(page_bytes() / elem_)};
    }

private:
    int64_t elem_, kv_dim_;
    int n_kv_heads_, head_dim_;
    std::vector<std::byte> data_;
};

class CpuBackend final : public Backend {
public:
    CpuBackend(model::Model model, const CpuOptions& options);

    std::string_view name() const override { return "cpu"; }
    const model::Config& config() const override { return model_.config; }
    uint64_t kv_page_bytes(uint32_t page_size, KvCacheType kv_type) const override {
        const uint64_t elem = kv_type == KvCacheType::F32 ? 4 : 2;
        return 2ull * model_.config.n_layers * page_size * model_.config.kv_dim() * elem;
    }
    std::unique_ptr<KvPool> new_kv_pool(const KvPoolOptions& o) override {
        if (o.num_pages == 0 || o.page_size == 0) {
            throw Error(
                ErrorCode::InvalidArgument,
                fmt::format("KV pool of {} pages of {} positions: both must be positive", o.num_pages, o.page_size));
        }
        return std::make_unique<CpuKvPool>(o, kv_page_bytes(o.page_size, o.kv_type), model_.config);
    }
    void step(KvPool& pool, std::span<const BatchEntry> batch, std::span<BatchResult> results) override;

    const model::Model model_;
    const CpuOptions options_;
    Weights w_;
    std::vector<double> inv_freq_;
    ThreadPool pool_;

private:
    // Runs the layers over x_ (rows of every entry, back to back; row_pos[t] is row t's position).
    void forward_layers(const CpuKvPool& kv, std::span<const BatchEntry> batch, std::span<const int64_t> row0);

    // Activations of the step, token-major, resized per step (one step at a time: Backend is single-threaded).
    std::vector<float> x_, h_, q_, k_cur_, v_cur_, attn_, gate_, up_, out_rows_, logits_;
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

void CpuBackend::forward_layers(const CpuKvPool& kv, std::span<const BatchEntry> batch, std::span<const int64_t> row0) {
    const model::Config& c = model_.config;
    const model::Recipe& r = model_.recipe;
    const Weights& w = w_;
    const Activations act = options_.activations;
    const int64_t T = row0.back();
    const int64_t E = c.n_embd, QD = c.q_dim(), KD = c.kv_dim(), F = c.n_ff;
    auto add_bias = [](float* y, const std::vector<float>& b, int64_t T_, int64_t n) {
        if (b.empty()) return;
        for (int64_t t = 0; t < T_; ++t) add(y + t * n, b.data(), n);
    };
    std::vector<AttentionSegment> segs(batch.size());
    for (size_t li = 0; li < w.layers.size(); ++li) {
        const Layer& l = w.layers[li];
        // Attention block. Every matrix product takes all rows of the step at once (each weight row read once);
        // each row's arithmetic is its own (matmul.h), so a row's result does not depend on the others.
        rms_norm(x_.data(), l.attn_norm.data(), T, E, r.rms_eps, h_.data());
        matmul(l.q, h_.data(), T, q_.data(), pool_, act);
        matmul(l.k, h_.data(), T, k_cur_.data(), pool_, act);
        matmul(l.v, h_.data(), T, v_cur_.data(), pool_, act);
        add_bias(q_.data(), l.bq, T, QD);
        add_bias(k_cur_.data(), l.bk, T, KD);
        add_bias(v_cur_.data(), l.bv, T, KD);
        if (r.qk_norm) {
            // Every head of every token is one row of head_dim values, normalized with the same weight vector.
            rms_norm(q_.data(), l.q_norm.data(), T * r.n_heads, r.head_dim, r.rms_eps, q_.data());
            rms_norm(k_cur_.data(), l.k_norm.data(), T * r.n_kv_heads, r.head_dim, r.rms_eps, k_cur_.data());
        }
        for (size_t e = 0; e < batch.size(); ++e) {
            const BatchEntry& be = batch[e];
            const int64_t t0 = row0[e], n = row0[e + 1] - row0[e];
            for (int64_t t = 0; t < n; ++t) {
                const int64_t pos = be.first_position + t;
                rope(q_.data() + (t0 + t) * QD, static_cast<int>(r.n_heads), static_cast<int>(r.head_dim),
                     static_cast<int>(r.rope_dim), pos, inv_freq_, r.rope_layout);
                rope(k_cur_.data() + (t0 + t) * KD, static_cast<int>(r.n_kv_heads), static_cast<int>(r.head_dim),
                     static_cast<int>(r.rope_dim), pos, inv_freq_, r.rope_layout);
            }
            const KvLayerView view = kv.layer(li, be.pages);
            kv_store(view, be.first_position, n, k_cur_.data() + t0 * KD, v_cur_.data() + t0 * KD);
            segs[e] = {q_.data() + t0 * QD, view, be.first_position, n, attn_.data() + t0 * QD};
        }
        attention(segs, static_cast<int>(r.n_heads), pool_, r.sliding_window);
        matmul(l.o, attn_.data(), T, h_.data(), pool_, act);
        add(x_.data(), h_.data(), T * E);
        // Feed-forward block (SwiGLU).
        rms_norm(x_.data(), l.ffn_norm.data(), T, E, r.rms_eps, h_.data());
        matmul(l.gate, h_.data(), T, gate_.data(), pool_, act);
        matmul(l.up, h_.data(), T, up_.data(), pool_, act);
        swiglu(gate_.data(), up_.data(), T * F, gate_.data());
        matmul(l.down, gate_.data(), T, h_.data(), pool_, act);
        add(x_.data(), h_.data(), T * E);
    }
}

void CpuBackend::step(KvPool& pool, std::span<const BatchEntry> batch, std::span<BatchResult> results) {
    const model::Config& c = model_.config;
    check_batch_entries(pool, batch, results, c.n_vocab, c.context_length);
    auto* kv = dynamic_cast<CpuKvPool*>(&pool);
    if (!kv) throw Error(ErrorCode::InvalidArgument, "step: the KV pool was not made by the CPU backend");
    for (const BatchEntry& e : batch) {
        if (e.want == Want::Sample) check_sample_step(e.sample);
    }
    if (batch.empty()) return;
    const model::Recipe& r = model_.recipe;
    const int64_t E = c.n_embd;
    std::vector<int64_t> row0(batch.size() + 1, 0);  // entry e's rows: [row0[e], row0[e + 1])
    for (size_t e = 0; e < batch.size(); ++e) row0[e + 1] = row0[e] + static_cast<int64_t>(batch[e].tokens.size());
    const int64_t T = row0.back();
    x_.resize(static_cast<size_t>(T * E));
    h_.resize(x_.size());
    q_.resize(static_cast<size_t>(T * c.q_dim()));
    attn_.resize(q_.size());
    k_cur_.resize(static_cast<size_t>(T * c.kv_dim()));
    v_cur_.resize(k_cur_.size());
    gate_.resize(static_cast<size_t>(T * c.n_ff));
    up_.resize(gate_.size());
    for (size_t e = 0; e < batch.size(); ++e) {
        for (size_t t = 0; t < batch[e].tokens.size(); ++t) {
            quant::dequantize_row(w_.token_embd.type, w_.token_embd.row(batch[e].tokens[t]),
                                  x_.data() + (row0[e] + static_cast<int64_t>(t)) * E, E);
        }
    }
    forward_layers(*kv, batch, row0);

    // Final norm and LM head only for the rows some entry wants: every row of an AllLogits entry, the last row of
    // a Logits/Argmax/Sample one.
    std::vector<int64_t> out_row0(batch.size() + 1, 0);
    for (size_t e = 0; e < batch.size(); ++e) {
        const Want want = batch[e].want;
        const int64_t n = want == Want::Nothing ? 0 : want == Want::AllLogits ? row0[e + 1] - row0[e] : 1;
        out_row0[e + 1] = out_row0[e] + n;
    }
    const int64_t n_out = out_row0.back();
    const size_t n_vocab = c.n_vocab;
    out_rows_.resize(static_cast<size_t>(n_out * E));
    for (size_t e = 0; e < batch.size(); ++e) {
        const int64_t n = out_row0[e + 1] - out_row0[e];
        const int64_t first = row0[e + 1] - n;
        std::copy(x_.data() + first * E, x_.data() + row0[e + 1] * E, out_rows_.data() + out_row0[e] * E);
    }
    logits_.resize(static_cast<size_t>(n_out) * n_vocab);
    if (n_out > 0) {
        rms_norm(out_rows_.data(), w_.output_norm.data(), n_out, E, r.rms_eps, out_rows_.data());
        matmul(w_.output, out_rows_.data(), n_out, logits_.data(), pool_, options_.activations);
    }
    for (size_t e = 0; e < batch.size(); ++e) {
        const int64_t n = out_row0[e + 1] - out_row0[e];
        const std::span<const float> lg(logits_.data() + static_cast<size_t>(out_row0[e]) * n_vocab,
                                        static_cast<size_t>(n) * n_vocab);
        BatchResult& res = results[e];
        res = {};
        switch (batch[e].want) {
            case Want::Nothing: break;
            case Want::Logits:
            case Want::AllLogits: res.logits = lg; break;
            case Want::Argmax:
            case Want::Sample: {
                // The row is the step's own scratch (not returned), so a mask is applied in place. A late mask is
                // resolved here, after the forward pass, as the CUDA backend resolves it after enqueuing its own.
                const std::span<float> row(logits_.data() + static_cast<size_t>(out_row0[e]) * n_vocab, n_vocab);
                const SampleStep* sample = batch[e].want == Want::Sample ? &batch[e].sample : nullptr;
                res.token = pick_on_host(row, sample, entry_mask(batch[e], c.n_vocab));
                break;
            }
        }
    }
}

}  // namespace

std::unique_ptr<Backend> make_cpu_backend(model::Model model, const CpuOptions& options) {
    return std::make_unique<CpuBackend>(std::move(model), options);
}

}  // namespace orcd::backend::cpu
