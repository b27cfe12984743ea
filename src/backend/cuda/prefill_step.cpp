#include "backend/cuda/prefill_step.h"

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <cstdlib>
#include <mutex>
#include <vector>

#include "backend/cuda/matvec.h"
#include "backend/cuda/ops.h"
#include "backend/cuda/prefill_ops.h"
#include "backend/cuda/tuning.h"
#include "common/error.h"
#include "device/cuda_check.h"

namespace orcd::backend::cuda {

namespace ops = ::orcd::cuda;
using gguf::TensorType;

namespace {

// 1024: at 512 the attention grid of a small model (14 heads x 8 query tiles) is under one wave of the H100 and the
// weights are dequantized twice as often at depth; 2048 gains little more (bench/cuda/NOTES.md, "Prefill").
constexpr uint32_t kDefaultUbatch = 1024;
constexpr int64_t kLogitTokens = 256;           // token rows per all-logits GEMM (bounds the logits staging buffer)
constexpr size_t kGemmWorkspace = 32ull << 20;  // cuBLAS's recommendation for Hopper

// ---- Phase profiling (ORCD_PREFILL_PROFILE=1) ------------------------------------------------------------------------
enum class Phase { Dequant, Gemm, Attention, Other };

bool profiling() { return ops::tuning::prefill_profile(); }

std::mutex g_prof_mu;
PrefillPhaseTimes g_prof;

// Events recorded at the end of each phase interval; intervals are attributed after the batch's synchronization.
class PhaseMarks {
public:
    explicit PhaseMarks(cudaStream_t s) : s_(s), on_(profiling()) {
        if (on_) mark(Phase::Other);
    }
    ~PhaseMarks() {
        for (cudaEvent_t e : events_) cudaEventDestroy(e);
    }
    void mark(Phase p) {
        if (!on_) return;
        cudaEvent_t e = nullptr;
        ORCD_CUDA_CHECK(cudaEventCreate(&e));
        events_.push_back(e);
        phases_.push_back(p);
        ORCD_CUDA_CHECK(cudaEventRecord(e, s_));
    }
    // After the stream is synchronized.
    void collect(int64_t n_tokens) {
        if (!on_) return;
        PrefillPhaseTimes t;
        for (size_t i = 1; i < events_.size(); ++i) {
            float ms = 0;
            ORCD_CUDA_CHECK(cudaEventElapsedTime(&ms, events_[i - 1], events_[i]));
            switch (phases_[i]) {
                case Phase::Dequant: t.dequant += ms; break;
                case Phase::Gemm: t.gemm += ms; break;
                case Phase::Attention: t.attention += ms; break;
                case Phase::Other: t.other += ms; break;
            }
        }
        std::lock_guard lock(g_prof_mu);
        g_prof.dequant += t.dequant;
        g_prof.gemm += t.gemm;
        g_prof.attention += t.attention;
        g_prof.other += t.other;
        g_prof.tokens += static_cast<uint64_t>(n_tokens);
    }

private:
    cudaStream_t s_;
    bool on_;
    std::vector<cudaEvent_t> events_;
    std::vector<Phase> phases_;
};

thread_local PhaseMarks* t_marks = nullptr;
void mark(Phase p) {
    if (t_marks) t_marks->mark(p);
}

int64_t matrix_elems(const Matmul& mm) { return mm.rows * mm.cols; }

// f(mm) for a layer's matrices in the order the prefill uses them: Q, K, V (or QKV), O, gate, up (or gate+up), down.
template <class F>
void for_each_matrix(const Layer& l, F&& f) {
    for (const Matmul& mm : l.qkv) f(mm);
    f(l.o);
    for (const Matmul& mm : l.gate_up) f(mm);
    f(l.down);
}

}  // namespace

PrefillPhaseTimes prefill_phase_times() {
    std::lock_guard lock(g_prof_mu);
    return g_prof;
}
void reset_prefill_phase_times() {
    std::lock_guard lock(g_prof_mu);
    g_prof = {};
}

uint32_t prefill_ubatch() { return ops::tuning::prefill_ubatch(kDefaultUbatch); }

bool prefill_supported(const CudaModel& m) {
    return ops::attention_prefill_supported(static_cast<int>(m.config->head_dim));
}

PrefillWorkspace::PrefillWorkspace(device::Device& device, const CudaModel& m, uint32_t max_tokens, cudaStream_t stream)
    : s_(stream), max_tokens_(max_tokens) {
    const model::Config& c = *m.config;
    const uint64_t B = max_tokens, E = c.n_embd, QD = c.q_dim(), KD = c.kv_dim(), F = c.n_ff, V = c.n_vocab;
    // The dequantization scratch holds the largest layer's matrices that are not already f16, back to back (a layer
    // is dequantized in one launch); the LM head is dequantized in row chunks that fit it.
    int64_t scratch = 0;
    for (const Layer& l : m.layers) {
        int64_t layer = 0;
        for_each_matrix(l, [&](const Matmul& mm) {
            if (mm.type != TensorType::F16) layer += matrix_elems(mm);
        });
        scratch = std::max(scratch, layer);
    }
    const int64_t min_chunk = 1024;
    vocab_chunk_ = std::min<int64_t>(static_cast<int64_t>(V), std::max<int64_t>(min_chunk, scratch / E));
    if (m.output.type != TensorType::F16) scratch = std::max<int64_t>(scratch, vocab_chunk_ * static_cast<int64_t>(E));

    Carver cv;
    const uint64_t o_tokens = cv.take(B * 4), o_x = cv.take(B * E * 4), o_h16 = cv.take(B * E * 2),
                   o_qkv = cv.take(B * (QD + 2 * KD) * 4), o_q16 = cv.take(B * QD * 2), o_a16 = cv.take(B * QD * 2),
                   o_gu = cv.take(B * 2 * F * 4), o_f16 = cv.take(B * F * 2), o_hlast = cv.take(E * 4),
                   o_logits = cv.take(V * 4),
                   o_lchunk = cv.take(std::min<uint64_t>(B, kLogitTokens) * static_cast<uint64_t>(vocab_chunk_) * 4),
                   o_wdq = cv.take(static_cast<uint64_t>(scratch) * 2), o_ws = cv.take(kGemmWorkspace);
    mem_ = device.allocate(cv.size, "prefill workspace");
    std::byte* base = mem_->data();
    tokens_ = reinterpret_cast<int32_t*>(base + o_tokens);
    x_ = reinterpret_cast<float*>(base + o_x);
    h16_ = reinterpret_cast<uint16_t*>(base + o_h16);
    qkv_ = reinterpret_cast<float*>(base + o_qkv);
    q16_ = reinterpret_cast<uint16_t*>(base + o_q16);
    a16_ = reinterpret_cast<uint16_t*>(base + o_a16);
    gu_ = reinterpret_cast<float*>(base + o_gu);
    f16_ = reinterpret_cast<uint16_t*>(base + o_f16);
    hlast_ = reinterpret_cast<float*>(base + o_hlast);
    logits_ = reinterpret_cast<float*>(base + o_logits);
    lchunk_ = reinterpret_cast<float*>(base + o_lchunk);
    wdq_ = scratch > 0 ? reinterpret_cast<uint16_t*>(base + o_wdq) : nullptr;
    gemm_ = std::make_unique<ops::Gemm>(stream, base + o_ws, kGemmWorkspace);
}

uint64_t PrefillWorkspace::bytes() const { return mem_ ? mem_->size() : 0; }

const uint16_t* PrefillWorkspace::weights_f16(const Matmul& mm, int64_t row0, int64_t n_rows) {
    if (mm.type == TensorType::F16) return static_cast<const uint16_t*>(mm.w) + row0 * mm.cols;
    const uint64_t rb = gguf::row_bytes(mm.type, static_cast<uint64_t>(mm.cols));
    ops::dequantize_to_f16(mm.type, static_cast<const std::byte*>(mm.w) + static_cast<uint64_t>(row0) * rb, n_rows,
                           mm.cols, wdq_, s_);
    mark(Phase::Dequant);
    return wdq_;
}

void PrefillWorkspace::stage_layer(const Layer& l, LayerF16& out) {
    // At most 7 block-format matrices a layer (q, k, v, o, gate, up, down): one launch's worth, and no heap.
    std::array<ops::DequantJob, ops::kMaxDequantJobs> batch;
    size_t n_batch = 0;
    uint16_t* at = wdq_;
    auto place = [&](const Matmul& mm) -> const uint16_t* {
        if (mm.type == TensorType::F16) return static_cast<const uint16_t*>(mm.w);
        uint16_t* dst = at;
        at += matrix_elems(mm);  // a whole number of 32-element blocks: the next stays 16-byte aligned
        if (gguf::traits(mm.type).block_elems > 1) {
            batch.at(n_batch++) = {mm.type, mm.w, mm.rows, mm.cols, dst};
        } else {
            ops::dequantize_to_f16(mm.type, mm.w, mm.rows, mm.cols, dst, s_);  // F32, BF16: a launch of their own
        }
        return dst;
    };
    out.qkv.clear();
    out.gate_up.clear();
    for (const Matmul& mm : l.qkv) out.qkv.push_back(place(mm));
    out.o = place(l.o);
    for (const Matmul& mm : l.gate_up) out.gate_up.push_back(place(mm));
    out.down = place(l.down);
    if (n_batch > 0) ops::dequantize_many_to_f16(std::span(batch).first(n_batch), s_);
    mark(Phase::Dequant);
}

void PrefillWorkspace::project(std::span<const Matmul> mms, std::span<const uint16_t* const> w16, const uint16_t* x,
                               int64_t n, float* y, int64_t ldy, bool accumulate) {
    for (size_t i = 0; i < mms.size();) {
        // Extend the run while the next matrix continues both the weights and the output rows of this one.
        size_t end = i + 1;
        int64_t rows = mms[i].rows;
        while (end < mms.size() && mms[end].cols == mms[i].cols &&
               w16[end] == w16[end - 1] + matrix_elems(mms[end - 1]) &&
               mms[end].out_offset == mms[end - 1].out_offset + mms[end - 1].rows) {
            rows += mms[end].rows;
            ++end;
        }
        gemm_->run(w16[i], rows, mms[i].cols, x, n, y + mms[i].out_offset, ldy, accumulate);
        mark(Phase::Gemm);
        i = end;
    }
}

void PrefillWorkspace::run(const CudaModel& m, const KvCache& kv, const int32_t* tokens, int64_t n, int64_t pos0,
                           float* all_logits, Last last, float* last_host) {
    if (n <= 0 || n > max_tokens_) {
        throw Error(ErrorCode::InvalidArgument,
                    fmt::format("prefill micro-batch of {} tokens (expected 1 .. {})", n, max_tokens_));
    }
    if (last == Last::Host && !last_host) {
        throw Error(ErrorCode::Internal, "prefill: the last token's logits to host memory, but no buffer");
    }
    const model::Config& c = *m.config;
    const model::Recipe& r = *m.recipe;
    const int64_t E = c.n_embd, QD = c.q_dim(), KD = c.kv_dim(), F = c.n_ff, V = c.n_vocab;
    const int nh = static_cast<int>(r.n_heads);
    const int n_rot = static_cast<int>(r.rope_dim);
    const int64_t QKVD = QD + 2 * KD;

    PhaseMarks marks(s_);
    t_marks = &marks;
    struct Reset {
        ~Reset() { t_marks = nullptr; }
    } reset;

    // Pageable source: staged before the call returns.
    ORCD_CUDA_CHECK(cudaMemcpyAsync(tokens_, tokens, static_cast<size_t>(n) * 4, cudaMemcpyHostToDevice, s_));
    ops::embedding_rows(m.embd_type, m.token_embd, E, tokens_, n, x_, s_);
    LayerF16 w;
    for (size_t li = 0; li < m.layers.size(); ++li) {
        const Layer& l = m.layers[li];
        stage_layer(l, w);
        ops::rms_norm_to_f16(x_, l.attn_norm, n, E, c.rms_eps, h16_, s_);
        mark(Phase::Other);
        project(l.qkv, w.qkv, h16_, n, qkv_, QKVD, false);
        if (r.qk_norm) {
            const int hd = static_cast<int>(r.head_dim);
            ops::rms_norm_heads(qkv_, n, QKVD, nh, hd, l.q_norm, r.rms_eps, s_);
            ops::rms_norm_heads(qkv_ + QD, n, QKVD, static_cast<int>(r.n_kv_heads), hd, l.k_norm, r.rms_eps, s_);
        }
        const ops::KvCacheView kvl = kv.layer(c, li);
        ops::qkv_rope_store(qkv_, QKVD, n, nh, {l.bias[0], l.bias[1], l.bias[2]}, n_rot, pos0, m.inv_freq,
                            r.rope_layout, kvl, q16_, s_);
        mark(Phase::Other);
        ops::attention_prefill(q16_, kvl, nh, pos0, n, a16_, s_, r.sliding_window);
        mark(Phase::Attention);
        project({&l.o, 1}, {&w.o, 1}, a16_, n, x_, E, true);  // x += O attn (the residual, in the GEMM's epilogue)
        ops::rms_norm_to_f16(x_, l.ffn_norm, n, E, c.rms_eps, h16_, s_);
        mark(Phase::Other);
        project(l.gate_up, w.gate_up, h16_, n, gu_, 2 * F, false);
        ops::swiglu_to_f16(gu_, n, F, f16_, s_);
        mark(Phase::Other);
        project({&l.down, 1}, {&w.down, 1}, f16_, n, x_, E, true);  // x += down(swiglu)
    }
    if (all_logits) {
        ops::rms_norm_to_f16(x_, m.output_norm, n, E, c.rms_eps, h16_, s_);
        mark(Phase::Other);
        for (int64_t v0 = 0; v0 < V; v0 += vocab_chunk_) {
            const int64_t rows = std::min(vocab_chunk_, V - v0);
            const uint16_t* w = weights_f16(m.output, v0, rows);
            for (int64_t t0 = 0; t0 < n; t0 += kLogitTokens) {
                const int64_t nt = std::min(kLogitTokens, n - t0);
                gemm_->run(w, rows, E, h16_ + t0 * E, nt, lchunk_, rows, false);
                mark(Phase::Gemm);
                ORCD_CUDA_CHECK(cudaMemcpy2DAsync(all_logits + t0 * V + v0, static_cast<size_t>(V) * 4, lchunk_,
                                                  static_cast<size_t>(rows) * 4, static_cast<size_t>(rows) * 4,
                                                  static_cast<size_t>(nt), cudaMemcpyDeviceToHost, s_));
                mark(Phase::Other);
            }
        }
    }
    if (last != Last::None) {
        ops::rms_norm(x_ + (n - 1) * E, m.output_norm, 1, E, c.rms_eps, hlast_, s_);
        ops::matvec(m.output.type, m.output.w, m.output.rows, m.output.cols, hlast_, logits_, s_);
        if (last == Last::Host) {
            ORCD_CUDA_CHECK(
                cudaMemcpyAsync(last_host, logits_, static_cast<size_t>(V) * 4, cudaMemcpyDeviceToHost, s_));
        }
        mark(Phase::Other);
    }
    ORCD_CUDA_CHECK(cudaStreamSynchronize(s_));
    marks.collect(n);
}

std::unique_ptr<device::DeviceMemory> convert_weights_to_f16(CudaModel& m, device::Device& device) {
    std::vector<Matmul*> all;
    auto add = [&](Matmul& mm) {
        if (mm.type != TensorType::F16) all.push_back(&mm);  // F16 matrices are used where they are
    };
    add(m.output);
    for (Layer& l : m.layers) {
        for (Matmul& mm : l.qkv) add(mm);
        add(l.o);
        for (Matmul& mm : l.gate_up) add(mm);
        add(l.down);
    }
    if (all.empty()) return nullptr;
    Carver cv;
    std::vector<uint64_t> at;
    at.reserve(all.size());
    for (const Matmul* mm : all) at.push_back(cv.take(static_cast<uint64_t>(matrix_elems(*mm)) * 2));
    auto mem = device.allocate(cv.size, "f16 weights (--weights f16)");
    for (size_t i = 0; i < all.size(); ++i) {
        Matmul& mm = *all[i];
        auto* dst = reinterpret_cast<uint16_t*>(mem->data() + at[i]);
        ops::dequantize_to_f16(mm.type, mm.w, mm.rows, mm.cols, dst, nullptr);
        mm.type = TensorType::F16;
        mm.w = dst;
    }
    ORCD_CUDA_CHECK(cudaDeviceSynchronize());
    return mem;
}

}  // namespace orcd::backend::cuda
