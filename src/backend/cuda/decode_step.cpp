#include "backend/cuda/decode_step.h"

#include "backend/cuda/matvec.h"
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
    return b;
}

void enqueue_decode(const CudaModel& m, const DecodeBuffers& b, const KvCache& kv, cudaStream_t s) {
    const model::Config& c = *m.config;
    const int32_t* d_token = b.scalars;
    const int32_t* d_pos = b.scalars + 1;
    const int64_t E = c.n_embd, QD = c.q_dim(), KD = c.kv_dim(), F = c.n_ff;
    const int nh = static_cast<int>(c.n_heads), nkv = static_cast<int>(c.n_kv_heads);
    const int hd = static_cast<int>(c.head_dim), n_rot = static_cast<int>(c.rope_dim);
    auto run = [&](const Matmul& mm, const float* in, float* out) {
        ops::matvec(mm.type, mm.w, mm.rows, mm.cols, in, out + mm.out_offset, s);
    };

    ops::embedding_row(m.embd_type, m.token_embd, E, d_token, b.x, s);
    for (size_t li = 0; li < m.layers.size(); ++li) {
        const Layer& l = m.layers[li];
        ops::rms_norm(b.x, l.attn_norm, 1, E, c.rms_eps, b.h, s);
        for (const Matmul& mm : l.qkv) run(mm, b.h, b.qkv);
        float* q = b.qkv;
        float* k = b.qkv + QD;
        float* v = b.qkv + QD + KD;
        if (l.bias[0]) ops::add_bias(q, l.bias[0], 1, QD, s);
        if (l.bias[1]) ops::add_bias(k, l.bias[1], 1, KD, s);
        if (l.bias[2]) ops::add_bias(v, l.bias[2], 1, KD, s);
        ops::rope(q, 1, nh, hd, n_rot, d_pos, m.inv_freq, m.rope_layout, s);
        ops::rope(k, 1, nkv, hd, n_rot, d_pos, m.inv_freq, m.rope_layout, s);
        const ops::KvCacheView kvl = kv.layer(c, li);
        ops::kv_store(kvl, 1, k, v, d_pos, s);
        ops::attention_decode(q, kvl, nh, d_pos, b.attn, b.attn_ws, s);
        run(l.o, b.attn, b.tmp);
        ops::add(b.x, b.tmp, E, s);
        ops::rms_norm(b.x, l.ffn_norm, 1, E, c.rms_eps, b.h, s);
        for (const Matmul& mm : l.gate_up) run(mm, b.h, b.gu);
        ops::swiglu(b.gu, 1, F, b.ffn, s);
        run(l.down, b.ffn, b.tmp);
        ops::add(b.x, b.tmp, E, s);
    }
    ops::rms_norm(b.x, m.output_norm, 1, E, c.rms_eps, b.h, s);
    run(m.output, b.h, b.logits);
}

}  // namespace orcd::backend::cuda
