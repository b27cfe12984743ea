#include "backend/cuda/decode_step.h"

#include <algorithm>
#include <cstdlib>
#include <optional>
#include <vector>

#include "backend/cuda/matvec.h"
#include "backend/cuda/matvec_fused.h"
#include "backend/cuda/ops.h"

namespace orcd::backend::cuda {

namespace ops = ::orcd::cuda;

DecodeBuffers::Layout DecodeBuffers::plan(const model::Config& c, uint32_t n_ctx, Carver& cv) {
    Layout l{};
    l.scalars = cv.take(4 * sizeof(int32_t));
    l.x = cv.take(c.n_embd * 4ull);
    l.h = cv.take(c.n_embd * 4ull);
    l.tmp = cv.take(c.n_embd * 4ull);
    l.qkv = cv.take((c.q_dim() + 2ull * c.kv_dim()) * 4);
    l.attn = cv.take(c.q_dim() * 4ull);
    l.gu = cv.take(2ull * c.n_ff * 4);
    l.ffn = cv.take(c.n_ff * 4ull);
    l.logits = cv.take(c.n_vocab * 4ull);
    l.q8_cols = static_cast<int64_t>(std::max<uint64_t>({c.n_embd, c.n_ff, c.q_dim()}));
    l.q8 = cv.take(static_cast<uint64_t>(ops::q8_vector_bytes(l.q8_cols)));
    l.attn_ws = cv.take(ops::attention_workspace_bytes(n_ctx, static_cast<int>(c.n_heads),
                                                       static_cast<int>(c.head_dim)));
    return l;
}

DecodeBuffers DecodeBuffers::bind(const Layout& l, std::byte* base) {
    DecodeBuffers b;
    b.scalars = reinterpret_cast<int32_t*>(base + l.scalars);
    b.x = reinterpret_cast<float*>(base + l.x);
    b.h = reinterpret_cast<float*>(base + l.h);
    b.tmp = reinterpret_cast<float*>(base + l.tmp);
    b.qkv = reinterpret_cast<float*>(base + l.qkv);
    b.attn = reinterpret_cast<float*>(base + l.attn);
    b.gu = reinterpret_cast<float*>(base + l.gu);
    b.ffn = reinterpret_cast<float*>(base + l.ffn);
    b.logits = reinterpret_cast<float*>(base + l.logits);
    b.attn_ws = base + l.attn_ws;
    b.q8 = ops::q8_vector_at(base + l.q8, l.q8_cols);
    return b;
}

namespace {

// Matrices above this many bytes take the staged-tile kernel with unfused neighbours: on the device the fused
// kernel's direct loads lost to the staged tiles on Phi-3-mini's 6.5-80 MB matrices (all of Phi-3 unfused: 209 tok/s,
// fused up to 16 MiB: 206, all fused: 173), while they win on Qwen2.5-0.5B's <= 3.6 MB ones (600 -> 780 tok/s); see
// bench/cuda/NOTES.md, v5. ORCD_FUSED_MAX_BYTES overrides; it is read at every enqueue (that is, at graph capture),
// so a benchmark can compare settings on one loaded model.
constexpr uint64_t kDefaultFusedMaxBytes = 4ull << 20;
uint64_t fused_max_bytes() {
    const char* env = std::getenv("ORCD_FUSED_MAX_BYTES");
    return env && *env ? std::strtoull(env, nullptr, 10) : kDefaultFusedMaxBytes;
}

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

// The int8-activation matvec over `mats`, or nothing when a type has no dp4a kernel (then the f32 path runs).
std::optional<ops::Q8Matvec> q8(const std::vector<Matmul>& mats, const DecodeBuffers& b, ops::MatvecEpilogue epilogue,
                                float* y) {
    ops::Q8Matvec q;
    q.x = b.q8;
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

}  // namespace

void enqueue_decode(const CudaModel& m, const DecodeBuffers& b, const KvCache& kv, bool argmax, Activations act,
                    cudaStream_t s) {
    using ops::MatvecEpilogue;
    const model::Config& c = *m.config;
    const model::Recipe& r = *m.recipe;
    const int32_t* d_token = b.scalars;
    const int32_t* d_pos = b.scalars + 1;
    const int64_t E = c.n_embd, F = c.n_ff;
    const int nh = static_cast<int>(r.n_heads);
    const int n_rot = static_cast<int>(r.rope_dim);
    const float eps = r.rms_eps;
    auto run = [&](const Matmul& mm, const float* in, float* out) {
        ops::matvec(mm.type, mm.w, mm.rows, mm.cols, in, out + mm.out_offset, s);
    };
    // Int8: quantize the input (normalized when `norm` is set) once, then one dp4a matvec; false when not taken.
    const bool int8 = act == Activations::Int8;
    auto run_q8 = [&](const std::vector<Matmul>& mats, const float* in, const float* norm, MatvecEpilogue epi,
                      float* y) {
        if (!int8) return false;
        const auto q = q8(mats, b, epi, y);
        if (!q) return false;
        ops::quantize_q8(in, norm, eps, q->cols, b.q8, s);
        ops::q8_matvec(*q, s);
        return true;
    };

    // One projection by the fastest path its weights allow: quantize + dp4a matvec (int8 mode), else the fused f32
    // matvec, else `unfused` (separate norm, matvec and element-wise kernels).
    auto project = [&](const std::vector<Matmul>& mats, const float* in, const float* norm, MatvecEpilogue epi,
                       float* y, const auto& unfused) {
        if (run_q8(mats, in, norm, epi, y)) return;
        if (auto f = fused(mats, in, norm, eps, epi, y)) {
            ops::fused_matvec(*f, s);
            return;
        }
        unfused();
    };

    ops::embedding_row(m.embd_type, m.token_embd, E, d_token, b.x, s);
    for (size_t li = 0; li < m.layers.size(); ++li) {
        const Layer& l = m.layers[li];
        // x -> norm -> [q | k | v]
        project(l.qkv, b.x, l.attn_norm, MatvecEpilogue::Store, b.qkv, [&] {
            ops::rms_norm(b.x, l.attn_norm, 1, E, eps, b.h, s);
            for (const Matmul& mm : l.qkv) run(mm, b.h, b.qkv);
        });
        if (r.qk_norm) {
            const int64_t qd = static_cast<int64_t>(r.n_heads) * r.head_dim;
            const int hd = static_cast<int>(r.head_dim);
            ops::rms_norm_heads(b.qkv, 1, qd, nh, hd, l.q_norm, eps, s);
            ops::rms_norm_heads(b.qkv + qd, 1, qd, static_cast<int>(r.n_kv_heads), hd, l.k_norm, eps, s);
        }
        const ops::KvCacheView kvl = kv.layer(c, li);
        ops::qkv_rope_store(b.qkv, l.bias[0], l.bias[1], l.bias[2], nh, kvl, n_rot, d_pos, m.inv_freq, r.rope_layout,
                            s);
        ops::attention_decode(b.qkv, kvl, nh, d_pos, b.attn, b.attn_ws, s, r.sliding_window);
        // x += O attn
        project({l.o}, b.attn, nullptr, MatvecEpilogue::Accumulate, b.x, [&] {
            run(l.o, b.attn, b.tmp);
            ops::add(b.x, b.tmp, E, s);
        });
        // x -> norm -> silu(gate) * up
        project(l.gate_up, b.x, l.ffn_norm, MatvecEpilogue::SwiGLU, b.ffn, [&] {
            ops::rms_norm(b.x, l.ffn_norm, 1, E, eps, b.h, s);
            for (const Matmul& mm : l.gate_up) run(mm, b.h, b.gu);
            ops::swiglu(b.gu, 1, F, b.ffn, s);
        });
        // x += down ffn
        project({l.down}, b.ffn, nullptr, MatvecEpilogue::Accumulate, b.x, [&] {
            run(l.down, b.ffn, b.tmp);
            ops::add(b.x, b.tmp, E, s);
        });
    }
    project({m.output}, b.x, m.output_norm, MatvecEpilogue::Store, b.logits, [&] {
        ops::rms_norm(b.x, m.output_norm, 1, E, eps, b.h, s);
        run(m.output, b.h, b.logits);
    });
    if (argmax) ops::argmax(b.logits, c.n_vocab, b.scalars + 2, s);
}

}  // namespace orcd::backend::cuda
