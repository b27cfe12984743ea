// The element-wise and attention ops against plain f64 formulas written here, independently of ops.cpp.
#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <vector>

#include "backend/cpu/ops.h"
#include "common/half.h"

namespace orcd::backend::cpu {
namespace {

std::vector<float> normal(size_t n, std::mt19937& rng, float sigma = 1.f) {
    std::normal_distribution<float> dist(0.f, sigma);
    std::vector<float> v(n);
    for (auto& x : v) x = dist(rng);
    return v;
}

void expect_close(double got, double want, double rel, const char* what) {
    EXPECT_LE(std::fabs(got - want), rel * std::max(1.0, std::fabs(want)))
        << what << ": got " << got << " want " << want;
}

TEST(RmsNorm, MatchesF64) {
    std::mt19937 rng(1);
    const int64_t n = 896, T = 3;
    auto x = normal(n * T, rng, 2.f), w = normal(n, rng);
    std::vector<float> out(x.size());
    rms_norm(x.data(), w.data(), T, n, 1e-6f, out.data());
    for (int64_t t = 0; t < T; ++t) {
        double ss = 0;
        for (int64_t i = 0; i < n; ++i) ss += double(x[t * n + i]) * x[t * n + i];
        const double s = 1.0 / std::sqrt(ss / n + 1e-6);
        for (int64_t i = 0; i < n; ++i) expect_close(out[t * n + i], x[t * n + i] * s * w[i], 1e-6, "rms_norm");
    }
    // In place gives the same.
    rms_norm(x.data(), w.data(), T, n, 1e-6f, x.data());
    EXPECT_EQ(x, out);
}

// Reference rotation of pair (a, b) by angle pos * theta^(-2i/n_rot), in f64.
void rotate_ref(double& a, double& b, int i, int n_rot, int64_t pos, double theta) {
    const double ang = double(pos) * std::pow(theta, -2.0 * i / n_rot);
    const double a2 = a * std::cos(ang) - b * std::sin(ang), b2 = a * std::sin(ang) + b * std::cos(ang);
    a = a2, b = b2;
}

TEST(Rope, BothLayoutsMatchF64AndLeaveUnrotatedDimsAlone) {
    std::mt19937 rng(2);
    const int heads = 3, hd = 64, n_rot = 32;
    const double theta = 1e6;
    const auto inv = rope_inv_freq(n_rot, theta);
    for (RopeLayout layout : {RopeLayout::Interleaved, RopeLayout::NeoX}) {
        for (int64_t pos : {0, 1, 17, 4000}) {
            auto x = normal(heads * hd, rng);
            auto y = x;
            rope(y.data(), heads, hd, n_rot, pos, inv, layout);
            for (int h = 0; h < heads; ++h) {
                for (int i = 0; i < n_rot / 2; ++i) {
                    const int i0 = layout == RopeLayout::Interleaved ? 2 * i : i;
                    const int i1 = layout == RopeLayout::Interleaved ? 2 * i + 1 : i + n_rot / 2;
                    double a = x[h * hd + i0], b = x[h * hd + i1];
                    rotate_ref(a, b, i, n_rot, pos, theta);
                    expect_close(y[h * hd + i0], a, 2e-6, "rope a");
                    expect_close(y[h * hd + i1], b, 2e-6, "rope b");
                }
                for (int d = n_rot; d < hd; ++d) EXPECT_EQ(y[h * hd + d], x[h * hd + d]);
            }
        }
    }
}

TEST(Rope, ScoresDependOnlyOnRelativePosition) {
    // The property attention relies on: <rope(q, m), rope(k, n)> is a function of m - n.
    std::mt19937 rng(3);
    const int hd = 64;
    const auto inv = rope_inv_freq(hd, 10000.0);
    const auto q = normal(hd, rng), k = normal(hd, rng);
    auto score = [&](int64_t m, int64_t n) {
        auto a = q, b = k;
        rope(a.data(), 1, hd, hd, m, inv, RopeLayout::NeoX);
        rope(b.data(), 1, hd, hd, n, inv, RopeLayout::NeoX);
        double s = 0;
        for (int d = 0; d < hd; ++d) s += double(a[d]) * b[d];
        return s;
    };
    expect_close(score(10, 3), score(107, 100), 1e-4, "relative");
    expect_close(score(5, 5), score(0, 0), 1e-5, "same");
}

TEST(Softmax, MatchesF64AndHandlesLargeValues) {
    std::vector<float> x = {1000.f, 999.f, -5.f, 0.f};
    std::vector<double> want(x.size());
    double mx = 1000, s = 0;
    for (size_t i = 0; i < x.size(); ++i) s += std::exp(double(x[i]) - mx);
    for (size_t i = 0; i < x.size(); ++i) want[i] = std::exp(double(x[i]) - mx) / s;
    softmax(x.data(), static_cast<int64_t>(x.size()));
    for (size_t i = 0; i < x.size(); ++i) expect_close(x[i], want[i], 1e-6, "softmax");
}

TEST(SwiGlu, MatchesF64) {
    std::mt19937 rng(4);
    auto g = normal(4864, rng, 3.f), u = normal(4864, rng);
    std::vector<float> out(g.size());
    swiglu(g.data(), u.data(), static_cast<int64_t>(g.size()), out.data());
    for (size_t i = 0; i < g.size(); ++i) {
        const double gv = g[i];
        expect_close(out[i], gv / (1 + std::exp(-gv)) * u[i], 1e-6, "swiglu");
    }
}

TEST(Add, AddsInPlace) {
    std::vector<float> a = {1, 2, 3}, b = {0.5f, -2, 4};
    add(a.data(), b.data(), 3);
    EXPECT_EQ(a, (std::vector<float>{1.5f, 0, 7}));
}

// Naive causal GQA attention in f64 over the same K/V values (as stored: f16-rounded for an f16 cache).
std::vector<double> attention_ref(const std::vector<float>& q, const std::vector<float>& K, const std::vector<float>& V,
                                  int64_t pos0, int64_t T, int n_heads, int n_kv, int hd, int64_t window = 0) {
    std::vector<double> out(static_cast<size_t>(T * n_heads * hd));
    for (int64_t t = 0; t < T; ++t) {
        for (int h = 0; h < n_heads; ++h) {
            const int kvh = h / (n_heads / n_kv);
            const int64_t n_keys = pos0 + t + 1;
            std::vector<double> s(static_cast<size_t>(n_keys), -INFINITY);
            double mx = -1e300;
            // Sliding window: query i sees keys j with i - window < j <= i.
            for (int64_t p = window > 0 ? std::max<int64_t>(0, n_keys - window) : 0; p < n_keys; ++p) {
                double d = 0;
                for (int i = 0; i < hd; ++i) d += double(q[(t * n_heads + h) * hd + i]) * K[(p * n_kv + kvh) * hd + i];
                s[p] = d / std::sqrt(double(hd));
                mx = std::max(mx, s[p]);
            }
            double z = 0;
            for (auto& v : s) z += (v = std::exp(v - mx));
            for (int i = 0; i < hd; ++i) {
                double acc = 0;
                for (int64_t p = 0; p < n_keys; ++p) acc += s[p] / z * V[(p * n_kv + kvh) * hd + i];
                out[(t * n_heads + h) * hd + i] = acc;
            }
        }
    }
    return out;
}

void check_attention(KvType type, int64_t window = 0) {
    std::mt19937 rng(5);
    // Qwen2.5-0.5B's geometry: 14 query heads over 2 KV heads of 64.
    const int n_heads = 14, n_kv = 2, hd = 64;
    const int64_t n_ctx = 40, pos0 = 29, T = 7;  // a prefill chunk after 29 cached positions (e.g. a second turn)
    const int64_t kv_row = n_kv * hd;
    auto K = normal(static_cast<size_t>(n_ctx * kv_row), rng), V = normal(K.size(), rng);
    if (type == KvType::F16) {
        for (auto& v : K) v = fp16_to_fp32(fp32_to_fp16(v));
        for (auto& v : V) v = fp16_to_fp32(fp32_to_fp16(v));
    }
    std::vector<float> kbuf(K.size() * 2), vbuf(K.size() * 2);  // big enough for either element type
    KvLayerView kv{type, kbuf.data(), vbuf.data(), n_ctx, n_kv, hd};
    kv_store(kv, 0, pos0 + T, K.data(), V.data());
    // Poison the positions after the chunk: causal attention must never read them.
    std::vector<float> junk(static_cast<size_t>((n_ctx - pos0 - T) * kv_row), 1e4f);
    kv_store(kv, pos0 + T, n_ctx - pos0 - T, junk.data(), junk.data());

    auto q = normal(static_cast<size_t>(T * n_heads * hd), rng);
    std::vector<float> out(q.size());
    ThreadPool pool(2);
    attention(q.data(), kv, pos0, T, n_heads, out.data(), pool, window);
    const auto want = attention_ref(q, K, V, pos0, T, n_heads, n_kv, hd, window);
    for (size_t i = 0; i < out.size(); ++i) expect_close(out[i], want[i], 1e-5, "attention");
}

TEST(Attention, GqaCausalF32Cache) { check_attention(KvType::F32); }
TEST(Attention, GqaCausalF16Cache) { check_attention(KvType::F16); }
TEST(Attention, SlidingWindow) { check_attention(KvType::F32, 5); }

}  // namespace
}  // namespace orcd::backend::cpu
