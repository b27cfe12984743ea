#include "backend/cpu/ops.h"

#include "model/attention_window.h"

#include <algorithm>
#include <cmath>
#include <type_traits>

#include "common/error.h"
#include "common/half.h"

namespace orcd::backend::cpu {

void rms_norm(const float* x, const float* weight, int64_t n_tokens, int64_t n, float eps, float* out) {
    for (int64_t t = 0; t < n_tokens; ++t) {
        const float* xt = x + t * n;
        float* ot = out + t * n;
        double ss = 0.0;  // double: the sum of squares of thousands of values is where f32 loses digits
        for (int64_t i = 0; i < n; ++i) ss += static_cast<double>(xt[i]) * xt[i];
        const float scale = static_cast<float>(1.0 / std::sqrt(ss / static_cast<double>(n) + eps));
        for (int64_t i = 0; i < n; ++i) ot[i] = xt[i] * scale * weight[i];
    }
}

std::vector<double> rope_inv_freq(int n_rot, double theta) {
    std::vector<double> f(static_cast<size_t>(n_rot / 2));
    for (int i = 0; i < n_rot / 2; ++i) f[static_cast<size_t>(i)] = std::pow(theta, -2.0 * i / n_rot);
    return f;
}

void rope(float* x, int n_heads, int head_dim, int n_rot, int64_t pos, const std::vector<double>& inv_freq,
          RopeLayout layout) {
    const int half = n_rot / 2;
    // cos/sin once per token, shared by all heads.
    std::vector<float> c(static_cast<size_t>(half)), s(static_cast<size_t>(half));
    for (int i = 0; i < half; ++i) {
        const double a = static_cast<double>(pos) * inv_freq[static_cast<size_t>(i)];
        c[static_cast<size_t>(i)] = static_cast<float>(std::cos(a));
        s[static_cast<size_t>(i)] = static_cast<float>(std::sin(a));
    }
    for (int h = 0; h < n_heads; ++h) {
        float* xh = x + static_cast<int64_t>(h) * head_dim;
        for (int i = 0; i < half; ++i) {
            const int i0 = layout == RopeLayout::Interleaved ? 2 * i : i;
            const int i1 = layout == RopeLayout::Interleaved ? 2 * i + 1 : i + half;
            const float a = xh[i0], b = xh[i1];
            const float ci = c[static_cast<size_t>(i)], si = s[static_cast<size_t>(i)];
            xh[i0] = a * ci - b * si;
            xh[i1] = a * si + b * ci;
        }
    }
}

void softmax(float* x, int64_t n) {
    float mx = -INFINITY;
    for (int64_t i = 0; i < n; ++i) mx = std::max(mx, x[i]);
    double sum = 0.0;
    for (int64_t i = 0; i < n; ++i) {
        x[i] = std::exp(x[i] - mx);
        sum += x[i];
    }
    const float inv = static_cast<float>(1.0 / sum);
    for (int64_t i = 0; i < n; ++i) x[i] *= inv;
}

void swiglu(const float* gate, const float* up, int64_t n, float* out) {
    for (int64_t i = 0; i < n; ++i) {
        const float g = gate[i];
        out[i] = g / (1.f + std::exp(-g)) * up[i];
    }
}

void add(float* x, const float* y, int64_t n) {
    for (int64_t i = 0; i < n; ++i) x[i] += y[i];
}

void kv_store(const KvLayerView& kv, int64_t pos0, int64_t n_tokens, const float* k, const float* v) {
    const int64_t row = kv.row_len();
    for (int64_t t = 0; t < n_tokens; ++t) {
        const int64_t off = kv.row_offset(pos0 + t);
        const float* ks = k + t * row;
        const float* vs = v + t * row;
        if (kv.type == KvType::F32) {
            std::copy(ks, ks + row, static_cast<float*>(kv.k) + off);
            std::copy(vs, vs + row, static_cast<float*>(kv.v) + off);
        } else {
            auto* kd = static_cast<uint16_t*>(kv.k) + off;
            auto* vd = static_cast<uint16_t*>(kv.v) + off;
            for (int64_t i = 0; i < row; ++i) kd[i] = fp32_to_fp16(ks[i]), vd[i] = fp32_to_fp16(vs[i]);
        }
    }
}

namespace {

// Dot product with eight independent partial sums, a pattern the compiler vectorizes (a single running sum would
// force sequential float additions).
inline float dot8(const float* a, const float* b, int n) {
    float acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    int i = 0;
    for (; i + 8 <= n; i += 8) {
        for (int j = 0; j < 8; ++j) acc[j] += a[i + j] * b[i + j];
    }
    float s = ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7]));
    for (; i < n; ++i) s += a[i] * b[i];
    return s;
}

// Row `p` of KV head `kvh` as floats: a pointer into an f32 cache, or converted into buf from an f16 one.
template <typename T>
inline const float* kv_row(const T* base, const KvLayerView& kv, int64_t p, int kvh, int hd, float* buf) {
    const T* src = base + kv.row_offset(p) + static_cast<int64_t>(kvh) * hd;
    if constexpr (std::is_same_v<T, float>) {
        return src;
    } else {
        for (int d = 0; d < hd; ++d) buf[d] = fp16_to_fp32(src[d]);
        return buf;
    }
}

template <typename T>
void attention_impl(std::span<const AttentionSegment> segs, int n_heads, ThreadPool& pool, int64_t window) {
    if (segs.empty()) return;
    const int n_kv = segs[0].kv.n_kv_heads;
    const int hd = segs[0].kv.head_dim;
    const int group = n_heads / n_kv;
    const float scale = 1.f / std::sqrt(static_cast<float>(hd));
    // One task per (segment, token, KV head): the query heads of a GQA group read each K/V row once between them
    // (and an f16 row is converted once for the whole group). task_start[s] is segment s's first task.
    std::vector<int64_t> task_start(segs.size() + 1, 0);
    int64_t max_keys = 0;
    for (size_t s = 0; s < segs.size(); ++s) {
        task_start[s + 1] = task_start[s] + segs[s].n_tokens * n_kv;
        max_keys = std::max(max_keys, segs[s].pos0 + segs[s].n_tokens);
    }
    pool.parallel_for(task_start.back(), 1, [&](int64_t i0, int64_t i1) {
        std::vector<float> scores(static_cast<size_t>(group * max_keys));
        std::vector<float> acc(static_cast<size_t>(group) * hd);
        std::vector<float> buf(static_cast<size_t>(hd));
        size_t s = 0;
        for (int64_t i = i0; i < i1; ++i) {
            while (task_start[s + 1] <= i) ++s;
            const AttentionSegment& seg = segs[s];
            const KvLayerView& kv = seg.kv;
            const T* K = static_cast<const T*>(kv.k);
            const T* V = static_cast<const T*>(kv.v);
            const int64_t local = i - task_start[s];
            const int64_t t = local / n_kv;
            const int kvh = static_cast<int>(local % n_kv);
            const int64_t end = seg.pos0 + t + 1;  // causal: keys up to and including this token's position
            const int64_t begin = model::first_attended(end - 1, static_cast<uint32_t>(window));
            const int64_t n_keys = end - begin;
            const size_t stride = static_cast<size_t>(n_keys);
            const float* q0 = seg.q + t * n_heads * hd + static_cast<int64_t>(kvh) * group * hd;
            for (int64_t p = begin; p < end; ++p) {
                const float* kp = kv_row(K, kv, p, kvh, hd, buf.data());
                for (int g = 0; g < group; ++g) {
                    scores[static_cast<size_t>(g) * stride + static_cast<size_t>(p - begin)] =
                        dot8(q0 + static_cast<int64_t>(g) * hd, kp, hd) * scale;
                }
            }
            for (int g = 0; g < group; ++g) softmax(scores.data() + static_cast<size_t>(g) * stride, n_keys);
            std::fill(acc.begin(), acc.end(), 0.f);
            for (int64_t p = begin; p < end; ++p) {
                const float* vp = kv_row(V, kv, p, kvh, hd, buf.data());
                for (int g = 0; g < group; ++g) {
                    const float w = scores[static_cast<size_t>(g) * stride + static_cast<size_t>(p - begin)];
                    float* ag = acc.data() + static_cast<size_t>(g) * hd;
                    for (int d = 0; d < hd; ++d) ag[d] += w * vp[d];
                }
            }
            std::copy(acc.begin(), acc.end(), seg.out + t * n_heads * hd + static_cast<int64_t>(kvh) * group * hd);
        }
    });
}

}  // namespace

void attention(std::span<const AttentionSegment> segments, int n_heads, ThreadPool& pool, int64_t window) {
    if (segments.empty()) return;
    for (const AttentionSegment& s : segments) {
        if (s.kv.type != segments[0].kv.type || s.kv.n_kv_heads != segments[0].kv.n_kv_heads ||
            s.kv.head_dim != segments[0].kv.head_dim) {
            throw Error(ErrorCode::InvalidArgument, "attention: segments with different KV layouts");
        }
    }
    if (segments[0].kv.type == KvType::F32) {
        attention_impl<float>(segments, n_heads, pool, window);
    } else {
        attention_impl<uint16_t>(segments, n_heads, pool, window);
    }
}

void attention(const float* q, const KvLayerView& kv, int64_t pos0, int64_t n_tokens, int n_heads, float* out,
               ThreadPool& pool, int64_t window) {
    const AttentionSegment seg{q, kv, pos0, n_tokens, out};
    attention(std::span(&seg, 1), n_heads, pool, window);
}

}  // namespace orcd::backend::cpu
