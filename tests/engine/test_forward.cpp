// The CPU forward pass of each architecture against a plain f64 transcription of the model's equations (no KV cache,
// every position recomputed, weights decoded by quant::dequantize_row), then the consistency of prefill, chunked
// prefill and token-by-token decode through the cache. The architectures' semantics are checked against Hugging Face
// transformers separately (test_hf_reference.cpp).
#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "backend/cpu/cpu_backend.h"
#include "quant/convert.h"
#include "model/model.h"
#include "tiny_models.h"

namespace orcd {
namespace {

using backend::TokenId;
using Mat = std::vector<double>;  // row-major [rows][cols]

struct RefMatrix {
    Mat w;
    int64_t rows = 0, cols = 0;
};

RefMatrix load(const model::Model& m, model::TensorId id) {
    const model::TensorRef& t = m.weights[id];
    RefMatrix r;
    r.rows = static_cast<int64_t>(t.rows());
    r.cols = static_cast<int64_t>(t.row_length());
    std::vector<float> f(static_cast<size_t>(r.rows * r.cols));
    const uint64_t rb = gguf::row_bytes(t.type, t.row_length());
    for (int64_t i = 0; i < r.rows; ++i) {
        quant::dequantize_row(t.type, t.data.data() + i * rb, f.data() + i * r.cols, r.cols);
    }
    r.w.assign(f.begin(), f.end());
    return r;
}

// y = W[row0 : row0 + n] x
std::vector<double> mv(const RefMatrix& m, const std::vector<double>& x, int64_t row0 = 0, int64_t n = -1) {
    if (n < 0) n = m.rows;
    std::vector<double> y(static_cast<size_t>(n));
    for (int64_t r = 0; r < n; ++r) {
        double s = 0;
        for (int64_t c = 0; c < m.cols; ++c) s += m.w[(row0 + r) * m.cols + c] * x[c];
        y[r] = s;
    }
    return y;
}

std::vector<double> rmsnorm(const std::vector<double>& x, const RefMatrix& w, double eps) {
    double ss = 0;
    for (double v : x) ss += v * v;
    const double s = 1 / std::sqrt(ss / x.size() + eps);
    std::vector<double> y(x.size());
    for (size_t i = 0; i < x.size(); ++i) y[i] = x[i] * s * w.w[i];
    return y;
}

// Rotates each head of v (n_heads x head_dim) at position pos as the GGUF layout says.
void rope_ref(std::vector<double>& v, int n_heads, const model::Config& c, int64_t pos) {
    const int hd = static_cast<int>(c.head_dim), nr = static_cast<int>(c.rope_dim);
    for (int h = 0; h < n_heads; ++h) {
        for (int i = 0; i < nr / 2; ++i) {
            const double ang = pos * std::pow(double(c.rope_theta), -2.0 * i / nr);
            const bool inter = c.rope_layout == model::RopeLayout::Interleaved;
            double& a = v[h * hd + (inter ? 2 * i : i)];
            double& b = v[h * hd + (inter ? 2 * i + 1 : i + nr / 2)];
            const double a2 = a * std::cos(ang) - b * std::sin(ang), b2 = a * std::sin(ang) + b * std::cos(ang);
            a = a2, b = b2;
        }
    }
}

// Logits of every position of `tokens`, [T][n_vocab].
std::vector<std::vector<double>> reference_forward(const model::Model& m, const std::vector<TokenId>& tokens) {
    const model::Config& c = m.config;
    const auto& W = m.weights;
    const int64_t T = static_cast<int64_t>(tokens.size()), E = c.n_embd, hd = c.head_dim;
    const RefMatrix emb = load(m, W.token_embd);
    std::vector<std::vector<double>> x(T);
    for (int64_t t = 0; t < T; ++t) x[t].assign(emb.w.begin() + tokens[t] * E, emb.w.begin() + (tokens[t] + 1) * E);
    for (const auto& L : W.layers) {
        const RefMatrix an = load(m, L.attn_norm), fn = load(m, L.ffn_norm), wo = load(m, L.attn_output),
                        wd = load(m, L.ffn_down);
        std::vector<std::vector<double>> q(T), k(T), v(T);
        for (int64_t t = 0; t < T; ++t) {
            const auto h = rmsnorm(x[t], an, c.rms_eps);
            if (L.fused_qkv()) {
                const RefMatrix qkv = load(m, L.attn_qkv);
                q[t] = mv(qkv, h, 0, c.q_dim());
                k[t] = mv(qkv, h, c.q_dim(), c.kv_dim());
                v[t] = mv(qkv, h, c.q_dim() + c.kv_dim(), c.kv_dim());
            } else {
                q[t] = mv(load(m, L.attn_q), h);
                k[t] = mv(load(m, L.attn_k), h);
                v[t] = mv(load(m, L.attn_v), h);
            }
            auto addb = [&](std::vector<double>& y, model::TensorId id) {
                if (!id.valid()) return;
                const RefMatrix b = load(m, id);
                for (size_t i = 0; i < y.size(); ++i) y[i] += b.w[i];
            };
            addb(q[t], L.attn_q_bias);
            addb(k[t], L.attn_k_bias);
            addb(v[t], L.attn_v_bias);
            // qwen3: each head of q and k RMS-normalized over its head_dim values, one weight vector for all heads.
            auto head_norm = [&](std::vector<double>& y, model::TensorId id) {
                if (!id.valid()) return;
                const RefMatrix w = load(m, id);
                for (size_t h0 = 0; h0 < y.size(); h0 += static_cast<size_t>(hd)) {
                    std::vector<double> head(y.begin() + h0, y.begin() + h0 + hd);
                    head = rmsnorm(head, w, c.rms_eps);
                    std::copy(head.begin(), head.end(), y.begin() + h0);
                }
            };
            head_norm(q[t], L.attn_q_norm);
            head_norm(k[t], L.attn_k_norm);
            rope_ref(q[t], static_cast<int>(c.n_heads), c, t);
            rope_ref(k[t], static_cast<int>(c.n_kv_heads), c, t);
        }
        for (int64_t t = 0; t < T; ++t) {
            std::vector<double> att(c.q_dim());
            for (uint32_t h = 0; h < c.n_heads; ++h) {
                const uint32_t g = h / c.gqa_group();
                // A sliding window of W keeps the W most recent positions, this one included.
                const int64_t W = c.sliding_window.value_or(0);
                const int64_t p0 = W > 0 ? std::max<int64_t>(0, t - W + 1) : 0;
                std::vector<double> s(t + 1, 0.0);
                double mx = -1e300;
                for (int64_t p = p0; p <= t; ++p) {
                    double d = 0;
                    for (int64_t i = 0; i < hd; ++i) d += q[t][h * hd + i] * k[p][g * hd + i];
                    mx = std::max(mx, s[p] = d / std::sqrt(double(hd)));
                }
                double z = 0;
                for (int64_t p = p0; p <= t; ++p) z += (s[p] = std::exp(s[p] - mx));
                for (int64_t p = p0; p <= t; ++p) {
                    for (int64_t i = 0; i < hd; ++i) att[h * hd + i] += s[p] / z * v[p][g * hd + i];
                }
            }
            const auto o = mv(wo, att);
            for (int64_t i = 0; i < E; ++i) x[t][i] += o[i];
            const auto h = rmsnorm(x[t], fn, c.rms_eps);
            std::vector<double> gate, up;
            if (L.fused_gate_up()) {
                const RefMatrix gu = load(m, L.ffn_up);
                gate = mv(gu, h, 0, c.n_ff);
                up = mv(gu, h, c.n_ff, c.n_ff);
            } else {
                gate = mv(load(m, L.ffn_gate), h);
                up = mv(load(m, L.ffn_up), h);
            }
            for (size_t i = 0; i < gate.size(); ++i) gate[i] = gate[i] / (1 + std::exp(-gate[i])) * up[i];
            const auto d = mv(wd, gate);
            for (int64_t i = 0; i < E; ++i) x[t][i] += d[i];
        }
    }
    const RefMatrix on = load(m, W.output_norm), out = load(m, W.output);
    std::vector<std::vector<double>> logits(T);
    for (int64_t t = 0; t < T; ++t) logits[t] = mv(out, rmsnorm(x[t], on, c.rms_eps));
    return logits;
}

const std::vector<TokenId> kPrompt = {1, 17, 250, 3, 99, 511, 42, 42, 7, 300, 128, 64};

double max_rel_error(std::span<const float> got, const std::vector<double>& want) {
    double scale = 0, err = 0;
    for (double v : want) scale = std::max(scale, std::fabs(v));
    for (size_t i = 0; i < want.size(); ++i) err = std::max(err, std::fabs(got[i] - want[i]));
    return err / scale;
}

size_t argmax(std::span<const float> v) { return std::max_element(v.begin(), v.end()) - v.begin(); }
size_t argmax(const std::vector<double>& v) { return std::max_element(v.begin(), v.end()) - v.begin(); }

class Forward : public testing::TestWithParam<const char*> {};

TEST_P(Forward, F32ModelMatchesF64ReferenceAtEveryPosition) {
    const model::Model m = model::open_model(test::tiny_model(GetParam(), synth::FileType::F32));
    const auto ref = reference_forward(m, kPrompt);
    auto be = backend::cpu::make_cpu_backend(m, {.n_threads = 2});
    auto seq = be->new_sequence({.n_ctx = 64});
    const auto logits = seq->prefill(kPrompt, /*all_logits=*/true);
    const size_t V = m.config.n_vocab;
    ASSERT_EQ(logits.size(), kPrompt.size() * V);
    for (size_t t = 0; t < kPrompt.size(); ++t) {
        const auto row = logits.subspan(t * V, V);
        EXPECT_LT(max_rel_error(row, ref[t]), 1e-5) << "position " << t;
        EXPECT_EQ(argmax(row), argmax(ref[t])) << "position " << t;
    }
    EXPECT_EQ(seq->n_past(), kPrompt.size());
}

TEST_P(Forward, PrefillChunkedPrefillAndDecodeAgree) {
    const model::Model m = model::open_model(test::tiny_model(GetParam(), synth::FileType::F32));
    const size_t V = m.config.n_vocab;
    auto be = backend::cpu::make_cpu_backend(m, {.n_threads = 2});
    auto seq = be->new_sequence({.n_ctx = 64});
    const auto first = seq->prefill(kPrompt, true);
    const std::vector<float> one_batch(first.begin(), first.end());

    // Token by token through decode.
    seq->reset();
    for (size_t t = 0; t < kPrompt.size(); ++t) {
        const auto l = t == 0 ? seq->prefill(std::span(&kPrompt[0], 1)) : seq->decode(kPrompt[t]);
        ASSERT_EQ(l.size(), V);
        for (size_t i = 0; i < V; ++i) ASSERT_NEAR(l[i], one_batch[t * V + i], 1e-4) << "pos " << t << " id " << i;
    }
    // Prefill in chunks of 5 (batches straddling the cache), last-token logits only.
    auto chunked = backend::cpu::make_cpu_backend(m, {.n_threads = 2, .max_batch = 5});
    auto s2 = chunked->new_sequence({.n_ctx = 64});
    const auto last = s2->prefill(kPrompt);
    ASSERT_EQ(last.size(), V);
    for (size_t i = 0; i < V; ++i) ASSERT_NEAR(last[i], one_batch[(kPrompt.size() - 1) * V + i], 1e-4);
    // Two prefills (a prompt continued) equal one.
    auto s3 = be->new_sequence({.n_ctx = 64});
    s3->prefill(std::span(kPrompt).first(7));
    const auto cont = s3->prefill(std::span(kPrompt).subspan(7), true);
    for (size_t i = 0; i < cont.size(); ++i) ASSERT_NEAR(cont[i], one_batch[7 * V + i], 1e-4);
}

TEST_P(Forward, F16CacheAndQuantizedWeightsStayClose) {
    const model::Model m = model::open_model(test::tiny_model(GetParam(), synth::FileType::F32));
    const auto ref = reference_forward(m, kPrompt);
    auto be = backend::cpu::make_cpu_backend(m, {.n_threads = 2});
    auto seq = be->new_sequence({.n_ctx = 64, .kv_type = backend::KvCacheType::F16});
    const size_t V = m.config.n_vocab, T = kPrompt.size();
    const auto l16 = seq->prefill(kPrompt, true);
    EXPECT_LT(max_rel_error(l16.subspan((T - 1) * V, V), ref[T - 1]), 5e-3);
    // The same weights written as Q8_0: close, not equal.
    const model::Model q = model::open_model(test::tiny_model(GetParam(), synth::FileType::Q8_0));
    auto bq = backend::cpu::make_cpu_backend(q, {.n_threads = 2});
    auto sq = bq->new_sequence({.n_ctx = 64});
    const auto lq = sq->prefill(kPrompt);
    const double e = max_rel_error(lq, ref[T - 1]);
    EXPECT_LT(e, 0.05);
    EXPECT_GT(e, 1e-6);
}

TEST_P(Forward, RejectsOverflowAndBadTokensWithoutChangingTheSequence) {
    const model::Model m = model::open_model(test::tiny_model(GetParam(), synth::FileType::F32));
    auto be = backend::cpu::make_cpu_backend(m, {.n_threads = 1});
    auto seq = be->new_sequence({.n_ctx = 8});
    seq->prefill(std::span(kPrompt).first(5));
    try {
        seq->prefill(std::span(kPrompt).subspan(5, 4));
        FAIL() << "expected ContextOverflow";
    } catch (const Error& e) {
        EXPECT_EQ(e.code(), ErrorCode::ContextOverflow);
    }
    EXPECT_EQ(seq->n_past(), 5u);
    const std::vector<TokenId> bad = {static_cast<TokenId>(m.config.n_vocab)};
    EXPECT_THROW(seq->prefill(bad), Error);
    EXPECT_EQ(seq->n_past(), 5u);
    EXPECT_THROW(be->new_sequence({.n_ctx = m.config.context_length + 1}), Error);
}

// phi3-tiny past its sliding window of 16: the CPU backend against the reference, which drops the keys older than
// the window; and the same model with the window switched off in its recipe gives other logits from position 16 on
// (so the window is really applied), the same ones before it.
TEST(SlidingWindow, Phi3PastTheWindowMatchesTheReferenceAndTheWindowChangesTheOutput) {
    model::Model m = model::open_model(test::tiny_model("phi3-tiny", synth::FileType::F32));
    ASSERT_EQ(m.config.sliding_window, 16u) << "the phi3-tiny preset writes phi3.attention.sliding_window = 16";
    ASSERT_EQ(m.recipe.sliding_window, 16u);
    std::vector<TokenId> prompt;
    for (int i = 0; i < 40; ++i) prompt.push_back(static_cast<TokenId>((i * 37 + 11) % 512));
    const auto ref = reference_forward(m, prompt);
    const size_t V = m.config.n_vocab;
    auto be = backend::cpu::make_cpu_backend(m, {.n_threads = 2});
    auto seq = be->new_sequence({.n_ctx = 64});
    const auto got = seq->prefill(prompt, true);
    const std::vector<float> windowed(got.begin(), got.end());
    for (size_t t = 0; t < prompt.size(); ++t) {
        const auto row = std::span<const float>(windowed).subspan(t * V, V);
        EXPECT_LT(max_rel_error(row, ref[t]), 1e-5) << "position " << t;
        EXPECT_EQ(argmax(row), argmax(ref[t])) << "position " << t;
    }
    // Token-by-token decode applies the same window.
    seq->reset();
    for (size_t t = 0; t < prompt.size(); ++t) {
        const auto l = t == 0 ? seq->prefill(std::span(&prompt[0], 1)) : seq->decode(prompt[t]);
        for (size_t i = 0; i < V; ++i) ASSERT_NEAR(l[i], windowed[t * V + i], 1e-4) << "pos " << t << " id " << i;
    }

    m.recipe.sliding_window = 0;
    auto full = backend::cpu::make_cpu_backend(m, {.n_threads = 2});
    auto s2 = full->new_sequence({.n_ctx = 64});
    const auto unwindowed = s2->prefill(prompt, true);
    for (size_t t = 0; t < prompt.size(); ++t) {
        double diff = 0;
        for (size_t i = 0; i < V; ++i) {
            diff = std::max(diff, double(std::fabs(unwindowed[t * V + i] - windowed[t * V + i])));
        }
        if (t < 16) {
            EXPECT_EQ(diff, 0.0) << "position " << t << " is within the window";
        } else {
            EXPECT_GT(diff, 1e-3) << "position " << t << " attends past the window without it";
        }
    }
}

INSTANTIATE_TEST_SUITE_P(Archs, Forward, testing::Values("qwen2.5-tiny", "qwen3-tiny", "phi3-tiny", "llama-tiny"),
                         [](const auto& info) {
                             std::string s = info.param;
                             for (char& ch : s)
                                 if (!isalnum(static_cast<unsigned char>(ch))) ch = '_';
                             return s;
                         });

}  // namespace
}  // namespace orcd
