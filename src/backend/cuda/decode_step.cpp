#include "backend/cuda/decode_step.h"

#include <algorithm>
#include <cstdlib>
#include <optional>
#include <vector>

#include "backend/cuda/decode_persistent.h"
#include "backend/cuda/dequant.h"
#include "backend/cuda/matvec.h"
#include "backend/cuda/matvec_fused.h"
#include "backend/cuda/ops.h"
#include "backend/cuda/tuning.h"

namespace orcd::backend::cuda {

namespace ops = ::orcd::cuda;

namespace {
int64_t round4(int64_t n) { return (n + 3) / 4 * 4; }  // column strides keep 16-byte alignment
}  // namespace

DecodeBuffers::Layout DecodeBuffers::plan(const model::Config& c, int64_t n_ctx, int max_cols, int64_t max_table,
                                          Carver& cv, bool persistent) {
    Layout l{};
    const uint64_t n = static_cast<uint64_t>(max_cols);
    l.max_cols = max_cols;
    l.max_table = max_table;
    l.inputs = cv.take((3 * n + static_cast<uint64_t>(max_table)) * sizeof(int32_t));
    l.argmax = cv.take(n * sizeof(int32_t));
    l.x = cv.take(n * c.n_embd * 4);  // stride n_embd exactly: the batched embedding writes rows back to back
    l.h = cv.take(n * round4(c.n_embd) * 4);
    l.tmp = cv.take(n * round4(c.n_embd) * 4);
    l.qkv = cv.take(n * round4(c.q_dim() + 2ll * c.kv_dim()) * 4);
    l.attn = cv.take(n * round4(c.q_dim()) * 4);
    l.gu = cv.take(n * round4(2ll * c.n_ff) * 4);
    l.ffn = cv.take(n * round4(c.n_ff) * 4);
    l.logits = cv.take(n * round4(c.n_vocab) * 4);
    l.q8_cols = static_cast<int64_t>(std::max<uint64_t>({c.n_embd, c.n_ff, c.q_dim()}));
    l.q8 = cv.take(n * static_cast<uint64_t>(ops::q8_vector_bytes(l.q8_cols)));
    l.attn_ws = cv.take(
        ops::attention_workspace_bytes(n_ctx, static_cast<int>(c.n_heads), static_cast<int>(c.head_dim), max_cols));
    l.has_persistent = persistent;
    l.persistent = persistent ? cv.take(persistent_decode_bytes(c)) : 0;
    return l;
}

DecodeBuffers DecodeBuffers::bind(const model::Config& c, const Layout& l, std::byte* base) {
    DecodeBuffers b;
    b.max_cols = l.max_cols;
    b.max_table = l.max_table;
    b.inputs = reinterpret_cast<int32_t*>(base + l.inputs);
    b.tokens = b.inputs;
    b.pos = b.inputs + l.max_cols;
    b.table = b.inputs + 2 * l.max_cols;
    b.tables = b.inputs + 3 * l.max_cols;
    b.argmax = reinterpret_cast<int32_t*>(base + l.argmax);
    b.x = reinterpret_cast<float*>(base + l.x);
    b.h = reinterpret_cast<float*>(base + l.h);
    b.tmp = reinterpret_cast<float*>(base + l.tmp);
    b.qkv = reinterpret_cast<float*>(base + l.qkv);
    b.attn = reinterpret_cast<float*>(base + l.attn);
    b.gu = reinterpret_cast<float*>(base + l.gu);
    b.ffn = reinterpret_cast<float*>(base + l.ffn);
    b.logits = reinterpret_cast<float*>(base + l.logits);
    b.s_x = c.n_embd;
    b.s_qkv = round4(c.q_dim() + 2ll * c.kv_dim());
    b.s_attn = round4(c.q_dim());
    b.s_gu = round4(2ll * c.n_ff);
    b.s_ffn = round4(c.n_ff);
    b.s_logits = round4(c.n_vocab);
    b.attn_ws = base + l.attn_ws;
    b.q8_base = base + l.q8;
    b.persistent = l.has_persistent ? base + l.persistent : nullptr;
    return b;
}

namespace {

// Matrices above this many bytes take the staged-tile kernel with unfused neighbours: on the device the fused
// kernel's direct loads lost to the staged tiles on Phi-3-mini's 6.5-80 MB matrices (all of Phi-3 unfused: 209 tok/s,
// fused up to 16 MiB: 206, all fused: 173), while they win on Qwen2.5-0.5B's <= 3.6 MB ones (600 -> 780 tok/s); see
// bench/cuda/NOTES.md, v5. ORCD_FUSED_MAX_BYTES overrides; it is read at every enqueue (that is, at graph capture),
// so a benchmark can compare settings on one loaded model.
constexpr uint64_t kDefaultFusedMaxBytes = 4ull << 20;
uint64_t fused_max_bytes() { return ops::tuning::fused_max_bytes(kDefaultFusedMaxBytes); }

// The fused matvec over `mats` (their rows concatenated), or nothing when it cannot take them.
std::optional<ops::FusedMatvec> fused(const std::vector<Matmul>& mats, const float* x, const float* norm, float eps,
                                      ops::MatvecEpilogue epilogue, float* y) {
    ops::FusedMatvec f;
    f.x = x;
    f.norm = norm;
    f.eps = eps;
    f.epilogue = epilogue;
    f.y = y;
    if (mats.empty() || mats.size() > 3) return std::nullopt;
    for (const Matmul& mm : mats) {
        if (mm.cols != mats[0].cols ||
            gguf::row_bytes(mm.type, static_cast<uint64_t>(mm.cols)) * static_cast<uint64_t>(mm.rows) >
                fused_max_bytes()) {
            return std::nullopt;
        }
        f.src[f.n_src++] = {mm.type, mm.w, mm.rows};
    }
    f.cols = mats[0].cols;
    if (!ops::fused_matvec_supported(f)) return std::nullopt;
    return f;
}

// q8_matvec_over with column 0's input laid out for its row length (the others follow q8_vector_bytes(cols) apart).
std::optional<ops::Q8Matvec> q8(const std::vector<Matmul>& mats, const DecodeBuffers& b, ops::MatvecEpilogue epilogue,
                                float* y) {
    auto q = q8_matvec_over(mats, epilogue, y);
    if (q) q->x = ops::q8_vector_at(b.q8_base, q->cols);
    return q;
}

}  // namespace

std::optional<ops::Q8Matvec> q8_matvec_over(const std::vector<Matmul>& mats, ops::MatvecEpilogue epilogue, float* y) {
    ops::Q8Matvec q;
    q.epilogue = epilogue;
    q.y = y;
    if (mats.empty() || mats.size() > 3) return std::nullopt;
    for (const Matmul& mm : mats) {
        if (mm.cols != mats[0].cols) return std::nullopt;
        q.src[q.n_src++] = {mm.type, mm.w, mm.rows};
    }
    q.cols = mats[0].cols;
    if (q.cols % ops::kQ8Block != 0 || !ops::q8_matvec_supported(q)) return std::nullopt;
    return q;
}

void enqueue_decode(const CudaModel& m, const DecodeBuffers& b, const KvCache& kv, int n_cols, Activations act,
                    cudaStream_t s) {
    using ops::MatvecEpilogue;
    const model::Config& c = *m.config;
    const model::Recipe& r = *m.recipe;
    const int64_t E = c.n_embd, F = c.n_ff;
    const int nh = static_cast<int>(r.n_heads);
    const int n_rot = static_cast<int>(r.rope_dim);
    const float eps = r.rms_eps;
    const ops::DecodeColumns cols{b.pos, b.table};
    auto run = [&](const Matmul& mm, const float* in, float* out) {
        ops::matvec(mm.type, mm.w, mm.rows, mm.cols, in, out + mm.out_offset, s);
    };
    const bool int8 = act == Activations::Int8;
    // b.persistent is set only for int8 activations (persistent_decode_refusal refuses f32 before any buffer exists).
    if (n_cols == 1 && b.persistent != nullptr) {
        enqueue_persistent_decode(m, b, s);
        return;
    }

    // One projection of every column (input column c at in + c * in_stride, output at y + c * y_stride) by the
    // fastest path its weights allow: quantize + one dp4a matvec over all columns (int8 mode); else, column by
    // column, the fused f32 matvec, else `unfused(c)` (separate norm, matvec and element-wise kernels).
    auto project = [&](const std::vector<Matmul>& mats, const float* in, int64_t in_stride, const float* norm,
                       MatvecEpilogue epi, float* y, int64_t y_stride, const auto& unfused) {
        if (int8) {
            if (auto q = q8(mats, b, epi, y)) {
                ops::quantize_q8_columns(in, in_stride, n_cols, norm, eps, q->cols, q->x, s);
                q->n_cols = n_cols;
                q->y_stride = y_stride;
                ops::q8_matvec(*q, s);
                return;
            }
        }
        for (int col = 0; col < n_cols; ++col) {
            if (auto f = fused(mats, in + col * in_stride, norm, eps, epi, y + col * y_stride)) {
                ops::fused_matvec(*f, s);
            } else {
                unfused(col);
            }
        }
    };

    ops::embedding_rows(m.embd_type, m.token_embd, E, b.tokens, n_cols, b.x, s);
    for (size_t li = 0; li < m.layers.size(); ++li) {
        const Layer& l = m.layers[li];
        // x -> norm -> [q | k | v]
        project(l.qkv, b.x, b.s_x, l.attn_norm, MatvecEpilogue::Store, b.qkv, b.s_qkv, [&](int col) {
            float* h = b.h + col * b.s_x;
            ops::rms_norm(b.x + col * b.s_x, l.attn_norm, 1, E, eps, h, s);
            for (const Matmul& mm : l.qkv) run(mm, h, b.qkv + col * b.s_qkv);
        });
        if (r.qk_norm) {
            const int64_t qd = static_cast<int64_t>(r.n_heads) * r.head_dim;
            const int hd = static_cast<int>(r.head_dim);
            ops::rms_norm_heads(b.qkv, n_cols, b.s_qkv, nh, hd, l.q_norm, eps, s);
            ops::rms_norm_heads(b.qkv + qd, n_cols, b.s_qkv, static_cast<int>(r.n_kv_heads), hd, l.k_norm, eps, s);
        }
        const ops::KvCacheView kvl = kv.layer(c, li);
        // Every column's K/V is stored before any column attends: a replayed sequence's columns see each other.
        ops::qkv_rope_store(b.qkv, b.s_qkv, n_cols, l.bias[0], l.bias[1], l.bias[2], nh, kvl, n_rot, cols, m.inv_freq,
                            r.rope_layout, s);
        // x += O attn. In int8 mode the attention's last kernel writes O's int8 input itself (the bits quantize_q8
        // gives on its output, one launch fewer).
        if (auto o = int8 ? q8({l.o}, b, MatvecEpilogue::Accumulate, b.x) : std::nullopt) {
            ops::attention_decode_q8(b.qkv, b.s_qkv, n_cols, kvl, nh, cols, o->x, b.attn_ws, s, r.sliding_window);
            o->n_cols = n_cols;
            o->y_stride = b.s_x;
            ops::q8_matvec(*o, s);
        } else {
            ops::attention_decode(b.qkv, b.s_qkv, n_cols, kvl, nh, cols, b.attn, b.s_attn, b.attn_ws, s,
                                  r.sliding_window);
            project({l.o}, b.attn, b.s_attn, nullptr, MatvecEpilogue::Accumulate, b.x, b.s_x, [&](int col) {
                float* tmp = b.tmp + col * b.s_x;
                run(l.o, b.attn + col * b.s_attn, tmp);
                ops::add(b.x + col * b.s_x, tmp, E, s);
            });
        }
        // x -> norm -> silu(gate) * up
        project(l.gate_up, b.x, b.s_x, l.ffn_norm, MatvecEpilogue::SwiGLU, b.ffn, b.s_ffn, [&](int col) {
            float* h = b.h + col * b.s_x;
            float* gu = b.gu + col * b.s_gu;
            ops::rms_norm(b.x + col * b.s_x, l.ffn_norm, 1, E, eps, h, s);
            for (const Matmul& mm : l.gate_up) run(mm, h, gu);
            ops::swiglu(gu, 1, F, b.ffn + col * b.s_ffn, s);
        });
        // x += down ffn
        project({l.down}, b.ffn, b.s_ffn, nullptr, MatvecEpilogue::Accumulate, b.x, b.s_x, [&](int col) {
            float* tmp = b.tmp + col * b.s_x;
            run(l.down, b.ffn + col * b.s_ffn, tmp);
            ops::add(b.x + col * b.s_x, tmp, E, s);
        });
    }
    project({m.output}, b.x, b.s_x, m.output_norm, MatvecEpilogue::Store, b.logits, b.s_logits, [&](int col) {
        float* h = b.h + col * b.s_x;
        ops::rms_norm(b.x + col * b.s_x, m.output_norm, 1, E, eps, h, s);
        run(m.output, h, b.logits + col * b.s_logits);
    });
    ops::argmax(b.logits, c.n_vocab, b.argmax, s, n_cols, b.s_logits);
}

}  // namespace orcd::backend::cuda
