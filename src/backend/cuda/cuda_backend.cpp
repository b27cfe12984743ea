#include "backend/cuda/cuda_backend.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include "backend/cuda/decode_step.h"
#include "backend/cuda/matvec.h"
#include "backend/cuda/ops.h"
#include "backend/cuda/prefill_step.h"
#include "backend/cuda/sample.h"
#include "backend/check_batch.h"
#include "common/error.h"
#include "device/cuda_check.h"
#include "device/cuda_device.h"
#include "loader/loader.h"

namespace orcd::backend::cuda {

namespace {

namespace ops = ::orcd::cuda;
using model::TensorId;

// The recipe features the decode and prefill steps implement (model/recipe.h); a model needing another is refused
// at construction, naming it. RoPE frequency factors (llama 3, phi3 long context) are not implemented.
const model::FeatureSet kCudaFeatures = model::FeatureSet::all().remove(model::Feature::RopeFreqFactors);

class CudaBackend;

// RAII for the stream and the instantiated graph.
struct StreamHandle {
    cudaStream_t s = nullptr;
    StreamHandle() { ORCD_CUDA_CHECK(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking)); }
    ~StreamHandle() {
        if (s) {
            ORCD_CUDA_WARN(cudaStreamSynchronize(s));
            ORCD_CUDA_WARN(cudaStreamDestroy(s));
        }
    }
    StreamHandle(const StreamHandle&) = delete;
    StreamHandle& operator=(const StreamHandle&) = delete;
};

struct GraphHandle {
    cudaGraphExec_t exec = nullptr;
    ~GraphHandle() {
        if (exec) ORCD_CUDA_WARN(cudaGraphExecDestroy(exec));
    }
};

// Page-locked host memory: device-to-host copies into it run at full PCIe speed without a staging copy.
template <typename T>
struct PinnedBuffer {
    T* p = nullptr;
    explicit PinnedBuffer(size_t n) { ORCD_CUDA_CHECK(cudaMallocHost(reinterpret_cast<void**>(&p), n * sizeof(T))); }
    ~PinnedBuffer() {
        if (p) ORCD_CUDA_WARN(cudaFreeHost(p));
    }
    PinnedBuffer(const PinnedBuffer&) = delete;
    PinnedBuffer& operator=(const PinnedBuffer&) = delete;
};

class CudaSequence final : public Sequence {
public:
    CudaSequence(CudaBackend& backend, uint32_t n_ctx);

    std::span<const float> prefill(std::span<const TokenId> tokens, bool all_logits) override;
    std::span<const float> decode(TokenId token) override;
    TokenId decode_greedy(TokenId token) override;
    TokenId decode_sample(TokenId token, const SampleStep& step) override;
    void reset() override { n_past_ = 0; }
    uint32_t n_past() const override { return n_past_; }
    uint32_t n_ctx() const override { return n_ctx_; }

private:
    // What a step picks on the device after the logits: nothing, their argmax, or the sampler's chain (staged first).
    enum class Pick { None = 0, Argmax = 1, Sample = 2 };
    // Runs one token at position n_past_ on the device and copies its logits to `out` (when not null); returns the
    // token `pick` chose on the device, or -1 with Pick::None.
    TokenId step(TokenId token, float* out, Pick pick = Pick::None);

    // Batched prefill of tokens (more than one) in micro-batches; fills logits_ as prefill() returns them.
    void prefill_batched(std::span<const TokenId> tokens, bool all_logits);

    CudaBackend& b_;
    uint32_t n_ctx_;
    uint32_t n_past_ = 0;
    uint64_t steps_ = 0;
    std::unique_ptr<device::DeviceMemory> kv_, act_;
    KvCache kv_view_;
    DecodeBuffers dec_;  // views into act_
    StreamHandle stream_;
    GraphHandle graph_[3];  // the step by Pick (none / argmax / sample), each captured on first use after step 1
    std::vector<float> logits_;
    PinnedBuffer<float> decode_logits_;  // [n_vocab]: decode()'s result
    PinnedBuffer<int32_t> token_out_;     // [1]: decode_greedy()'s or decode_sample()'s result
    std::unique_ptr<DeviceSampler> sampler_;  // decode_sample()'s workspace, made on its first call
    // Allocated on the first batched prefill; after stream_, so its cuBLAS handle goes before the stream it uses.
    std::unique_ptr<PrefillWorkspace> prefill_ws_;
};

class CudaBackend final : public Backend {
public:
    CudaBackend(model::Model model, const CudaOptions& options);

    std::string_view name() const override { return "cuda"; }
    const model::Config& config() const override { return lm_.config(); }
    std::unique_ptr<Sequence> new_sequence(const SequenceOptions& options) override {
        const uint32_t n_ctx = options.n_ctx == 0 ? config().context_length : options.n_ctx;
        if (n_ctx > config().context_length) {
            throw Error(ErrorCode::InvalidArgument,
                        fmt::format("context of {} tokens exceeds the model's context length {}", n_ctx,
                                    config().context_length));
        }
        return std::make_unique<CudaSequence>(*this, n_ctx);
    }

    device::Device& device() const { return lm_.device(); }

    // Read from the device's allocation ledger: sequences label their caches "KV cache ..." (CudaSequence); what is
    // neither the weight arena nor a cache (activations, the rope table, scratch) is workspace.
    DeviceMemoryReport device_memory() const override {
        DeviceMemoryReport r;
        const uint64_t live = device().live_bytes();
        r.weights = lm_.vram_bytes();
        r.kv_cache = device().live_bytes("KV cache");
        r.workspace = live - std::min(live, r.weights + r.kv_cache);
        return r;
    }

    // The weight arena (the loader's check: cudaPointerGetAttributes says device memory of this GPU, no host
    // pointer) and the rope table the forward pass also reads.
    std::optional<std::string> residency_problem() const override {
        try {
            lm_.check_residency();
            const device::Residency r = device().residency(inv_freq_->data());
            if (!r.ok()) {
                return fmt::format("the rope inverse-frequency table is not resident device memory: {}", r.detail);
            }
        } catch (const std::exception& e) {
            return std::string(e.what());
        }
        return std::nullopt;
    }

    const CudaOptions options_;
    loader::LoadedModel lm_;
    CudaModel m_;
    std::unique_ptr<device::DeviceMemory> inv_freq_;  // n_rot / 2 doubles, pointed to by m_.inv_freq
    std::unique_ptr<device::DeviceMemory> f16_weights_;  // WeightsMode::F16: the dequantized matrices m_ points at
};

loader::LoadedModel load(model::Model model, int gpu) {
    loader::LoadOptions lo;
    lo.reserve_runtime = false;  // each sequence allocates its own KV cache and activations
    return loader::load_model(std::move(model), device::open_cuda_device(gpu), lo);
}

CudaBackend::CudaBackend(model::Model model, const CudaOptions& options)
    : options_(options), lm_(load(std::move(model), options.gpu)) {
    const model::Config& c = lm_.config();
    const model::ModelWeights& mw = lm_.weights();
    auto matrix = [&](TensorId id, int64_t row0, int64_t n_rows, int64_t out_offset) {
        const model::TensorRef& t = mw[id];
        if (!ops::matvec_supported(t.type)) {
            throw Error(ErrorCode::UnsupportedTensorType,
                        fmt::format("tensor '{}': no CUDA matrix-vector kernel for {}", t.name,
                                    gguf::type_name(t.type)));
        }
        const int64_t cols = static_cast<int64_t>(t.row_length());
        const uint64_t rb = gguf::row_bytes(t.type, static_cast<uint64_t>(cols));
        return Matmul{t.type, lm_.tensor_data(id) + static_cast<uint64_t>(row0) * rb, n_rows, cols, out_offset};
    };
    auto whole = [&](TensorId id, int64_t out_offset) {
        return matrix(id, 0, static_cast<int64_t>(mw[id].rows()), out_offset);
    };
    auto vec = [&](TensorId id) -> const float* {
        if (!id.valid()) return nullptr;
        const model::TensorRef& t = mw[id];
        if (t.type != gguf::TensorType::F32) {
            throw Error(ErrorCode::UnsupportedTensorType,
                        fmt::format("tensor '{}': the CUDA backend reads norms and biases as F32, found {}", t.name,
                                    gguf::type_name(t.type)));
        }
        return reinterpret_cast<const float*>(lm_.tensor_data(id));
    };
    model::check_backend_features(lm_.model().recipe, c.arch_name, "cuda", kCudaFeatures);
    if (c.head_dim % 8 != 0 || c.n_heads % c.n_kv_heads != 0 || c.rope_dim % 2 != 0 || c.rope_dim > c.head_dim) {
        throw Error(ErrorCode::TensorShape,
                    fmt::format("the CUDA attention needs head_dim % 8 == 0, n_heads % n_kv_heads == 0 and an even "
                                "rope_dim <= head_dim; found head_dim {}, {} / {} heads, rope_dim {}",
                                c.head_dim, c.n_heads, c.n_kv_heads, c.rope_dim));
    }
    m_.config = &lm_.config();
    m_.recipe = &lm_.model().recipe;
    m_.embd_type = mw[mw.token_embd].type;
    if (!ops::embedding_supported(m_.embd_type)) {
        throw Error(ErrorCode::UnsupportedTensorType,
                    fmt::format("token_embd: no CUDA embedding lookup for {}", gguf::type_name(m_.embd_type)));
    }
    m_.token_embd = lm_.tensor_data(mw.token_embd);
    m_.output = whole(mw.output, 0);
    m_.output_norm = vec(mw.output_norm);
    const int64_t QD = c.q_dim(), KD = c.kv_dim(), F = c.n_ff;
    for (const model::LayerWeights& lw : mw.layers) {
        Layer l;
        l.attn_norm = vec(lw.attn_norm);
        l.ffn_norm = vec(lw.ffn_norm);
        if (lw.fused_qkv()) {
            l.qkv.push_back(whole(lw.attn_qkv, 0));  // rows already Q, K, V in order
        } else {
            l.qkv = {whole(lw.attn_q, 0), whole(lw.attn_k, QD), whole(lw.attn_v, QD + KD)};
        }
        l.bias[0] = vec(lw.attn_q_bias);
        l.bias[1] = vec(lw.attn_k_bias);
        l.bias[2] = vec(lw.attn_v_bias);
        l.q_norm = vec(lw.attn_q_norm);
        l.k_norm = vec(lw.attn_k_norm);
        l.o = whole(lw.attn_output, 0);
        if (lw.fused_gate_up()) {
            l.gate_up.push_back(whole(lw.ffn_up, 0));  // first n_ff rows gate, next n_ff up
        } else {
            l.gate_up = {whole(lw.ffn_gate, 0), whole(lw.ffn_up, F)};
        }
        l.down = whole(lw.ffn_down, 0);
        m_.layers.push_back(std::move(l));
    }
    // Rotary inverse frequencies in double, the same formula as the CPU reference (backend/cpu/ops.cpp).
    const int half = static_cast<int>(c.rope_dim / 2);
    std::vector<double> inv(static_cast<size_t>(half));
    for (int i = 0; i < half; ++i) {
        inv[static_cast<size_t>(i)] = std::pow(static_cast<double>(c.rope_theta), -2.0 * i / c.rope_dim);
    }
    inv_freq_ = device().allocate(inv.size() * sizeof(double), "rope inverse frequencies");
    ORCD_CUDA_CHECK(cudaMemcpy(inv_freq_->data(), inv.data(), inv.size() * sizeof(double), cudaMemcpyHostToDevice));
    m_.inv_freq = reinterpret_cast<const double*>(inv_freq_->data());
    if (options.weights == WeightsMode::F16) f16_weights_ = convert_weights_to_f16(m_, device());
}

CudaSequence::CudaSequence(CudaBackend& backend, uint32_t n_ctx)
    : b_(backend), n_ctx_(n_ctx), decode_logits_(backend.config().n_vocab), token_out_(1) {
    const model::Config& c = b_.config();
    kv_ = b_.device().allocate(KvCache::bytes(c, n_ctx), "KV cache (f16)");
    kv_view_ = KvCache{reinterpret_cast<uint16_t*>(kv_->data()), n_ctx};
    Carver cv;
    const DecodeBuffers::Layout layout = DecodeBuffers::plan(c, n_ctx, cv);
    act_ = b_.device().allocate(cv.size, "activations");
    dec_ = DecodeBuffers::bind(layout, act_->data());
}

TokenId CudaSequence::step(TokenId token, float* out, Pick pick) {
    const bool argmax = pick == Pick::Argmax;
    auto enqueue = [&] {
        enqueue_decode(b_.m_, dec_, kv_view_, argmax, b_.options_.activations, stream_.s);
        if (pick == Pick::Sample) sampler_->enqueue(dec_.logits, stream_.s);
    };
    const int32_t scalars[2] = {token, static_cast<int32_t>(n_past_)};
    // Pageable source: the copy is staged before this call returns, so `scalars` may go out of scope.
    ORCD_CUDA_CHECK(cudaMemcpyAsync(dec_.scalars, scalars, sizeof(scalars), cudaMemcpyHostToDevice, stream_.s));
    GraphHandle& graph = graph_[static_cast<int>(pick)];
    if (graph.exec) {
        ORCD_CUDA_CHECK(cudaGraphLaunch(graph.exec, stream_.s));
    } else if (b_.options_.use_graph && steps_ > 0) {
        // Captured after the first step, which ran eagerly and so initialized the kernels' one-time host state
        // (device attributes, occupancy queries, shared-memory limits) outside of any capture.
        ORCD_CUDA_CHECK(cudaStreamBeginCapture(stream_.s, cudaStreamCaptureModeThreadLocal));
        cudaGraph_t g = nullptr;
        try {
            enqueue();
        } catch (...) {
            cudaStreamEndCapture(stream_.s, &g);
            if (g) cudaGraphDestroy(g);
            throw;
        }
        ORCD_CUDA_CHECK(cudaStreamEndCapture(stream_.s, &g));
        const cudaError_t inst = cudaGraphInstantiate(&graph.exec, g, 0);
        ORCD_CUDA_WARN(cudaGraphDestroy(g));
        ORCD_CUDA_CHECK(inst);
        ORCD_CUDA_CHECK(cudaGraphLaunch(graph.exec, stream_.s));
    } else {
        enqueue();
    }
    if (out) {
        ORCD_CUDA_CHECK(cudaMemcpyAsync(out, dec_.logits, b_.config().n_vocab * sizeof(float), cudaMemcpyDeviceToHost,
                                        stream_.s));
    }
    if (pick != Pick::None) {
        const int32_t* picked = argmax ? dec_.scalars + 2 : sampler_->result();
        ORCD_CUDA_CHECK(cudaMemcpyAsync(token_out_.p, picked, sizeof(int32_t), cudaMemcpyDeviceToHost, stream_.s));
    }
    ORCD_CUDA_CHECK(cudaStreamSynchronize(stream_.s));
    ++n_past_;
    ++steps_;
    return pick != Pick::None ? *token_out_.p : -1;
}

std::span<const float> CudaSequence::decode(TokenId token) {
    check_batch(std::span(&token, 1), b_.config().n_vocab, n_past_, n_ctx_);
    step(token, decode_logits_.p);
    return {decode_logits_.p, b_.config().n_vocab};
}

TokenId CudaSequence::decode_greedy(TokenId token) {
    check_batch(std::span(&token, 1), b_.config().n_vocab, n_past_, n_ctx_);
    return step(token, nullptr, Pick::Argmax);
}

TokenId CudaSequence::decode_sample(TokenId token, const SampleStep& s) {
    check_batch(std::span(&token, 1), b_.config().n_vocab, n_past_, n_ctx_);
    if (!sampler_) sampler_ = std::make_unique<DeviceSampler>(b_.device(), b_.config().n_vocab, stream_.s);
    // The parameters, the window and u reach device memory ahead of the step on the same stream.
    sampler_->stage(s, stream_.s);
    return step(token, nullptr, Pick::Sample);
}

std::span<const float> CudaSequence::prefill(std::span<const TokenId> tokens, bool all_logits) {
    const model::Config& c = b_.config();
    check_batch(tokens, c.n_vocab, n_past_, n_ctx_);
    const size_t n_vocab = c.n_vocab;
    logits_.resize((all_logits ? tokens.size() : 1) * n_vocab);
    if (tokens.size() > 1 && b_.options_.batched_prefill && prefill_supported(b_.m_)) {
        prefill_batched(tokens, all_logits);
        return logits_;
    }
    for (size_t i = 0; i < tokens.size(); ++i) {
        const bool last = i + 1 == tokens.size();
        float* out = all_logits ? logits_.data() + i * n_vocab : (last ? logits_.data() : nullptr);
        step(tokens[i], out);
    }
    return logits_;
}

void CudaSequence::prefill_batched(std::span<const TokenId> tokens, bool all_logits) {
    if (!prefill_ws_) {
        const uint32_t ub = b_.options_.prefill_ubatch ? b_.options_.prefill_ubatch : prefill_ubatch();
        prefill_ws_ = std::make_unique<PrefillWorkspace>(b_.device(), b_.m_, ub, stream_.s);
    }
    const size_t n_vocab = b_.config().n_vocab;
    const size_t ub = prefill_ws_->max_tokens();
    for (size_t i0 = 0; i0 < tokens.size(); i0 += ub) {
        const size_t n = std::min(ub, tokens.size() - i0);
        const bool last = i0 + n == tokens.size();
        // TokenId is int32_t, so the span is the device buffer's layout.
        static_assert(sizeof(TokenId) == sizeof(int32_t));
        prefill_ws_->run(b_.m_, kv_view_, reinterpret_cast<const int32_t*>(tokens.data() + i0),
                         static_cast<int64_t>(n), n_past_, all_logits ? logits_.data() + i0 * n_vocab : nullptr,
                         !all_logits && last ? logits_.data() : nullptr);
        n_past_ += static_cast<uint32_t>(n);
    }
}

}  // namespace

std::unique_ptr<Backend> make_cuda_backend(model::Model model, const CudaOptions& options) {
    return std::make_unique<CudaBackend>(std::move(model), options);
}

}  // namespace orcd::backend::cuda
