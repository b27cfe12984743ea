#include "backend/cuda/cuda_backend.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <future>
#include <vector>

#include "backend/cuda/cublas_library.h"
#include "backend/cuda/decode_persistent.h"
#include "backend/cuda/kv_pool.h"
#include "backend/cuda/matvec.h"
#include "backend/cuda/ops.h"
#include "backend/cuda/prefill_step.h"
#include "backend/cuda/tuning.h"
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

class CudaBackend final : public Backend {
public:
    CudaBackend(model::Model model, const CudaOptions& options, const loader::ProgressFn& progress);

    std::string_view name() const override { return "cuda"; }
    const model::Config& config() const override { return lm_.config(); }
    uint64_t kv_page_bytes(uint32_t page_size, KvCacheType) const override {
        return KvCache::page_bytes(config(), page_size);
    }
    std::unique_ptr<KvPool> new_kv_pool(const KvPoolOptions& options) override {
        return std::make_unique<CudaKvPool>(device(), m_, options_, options);
    }
    void step(KvPool& pool, std::span<const BatchEntry> batch, std::span<BatchResult> results) override {
        auto* p = dynamic_cast<CudaKvPool*>(&pool);
        if (!p) throw Error(ErrorCode::InvalidArgument, "step: the KV pool was not made by the cuda backend");
        check_batch_entries(pool, batch, results, config().n_vocab, config().context_length);
        p->step(batch, results);
    }

    device::Device& device() const { return lm_.device(); }

    // Read from the device's allocation ledger: KV pools label their pages "KV cache ..." (CudaKvPool); what is
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

    // Settles options_.decode_kernel: the persistent step where asked for (refused, by name, for a model it cannot
    // run) or where the tuning override asks for it and the model allows it.
    void resolve_decode_kernel();

    CudaOptions options_;  // decode_kernel resolved against the model and the tuning override
    // cuBLAS (the prefill's matrix products) is opened on another thread while the weights load: its libraries'
    // initialization takes a visible part of a second.
    std::future<void> cublas_opened_;
    loader::LoadedModel lm_;
    CudaModel m_;
    std::unique_ptr<device::DeviceMemory> inv_freq_;     // n_rot / 2 doubles, pointed to by m_.inv_freq
    std::unique_ptr<device::DeviceMemory> f16_weights_;  // WeightsMode::F16: the dequantized matrices m_ points at
};

loader::LoadedModel load(model::Model model, int gpu, const loader::ProgressFn& progress) {
    loader::LoadOptions lo;
    lo.progress = progress;
    lo.reserve_runtime = false;  // each KV pool allocates its pages and activations
    return loader::load_model(std::move(model), device::open_cuda_device(gpu), lo);
}

CudaBackend::CudaBackend(model::Model model, const CudaOptions& options, const loader::ProgressFn& progress)
    : options_(options),
      cublas_opened_(std::async(std::launch::async, [] { ops::cublas(); })),
      lm_(load(std::move(model), options.gpu, progress)) {
    cublas_opened_.get();  // a missing cuBLAS fails the backend here, by name, not at the first prompt
    const model::Config& c = lm_.config();
    const model::ModelWeights& mw = lm_.weights();
    auto matrix = [&](TensorId id, int64_t row0, int64_t n_rows, int64_t out_offset) {
        const model::TensorRef& t = mw[id];
        if (!ops::matvec_supported(t.type)) {
            throw Error(
                ErrorCode::UnsupportedTensorType,
                fmt::format("tensor '{}': no CUDA matrix-vector kernel for {}", t.name, gguf::type_name(t.type)));
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
    resolve_decode_kernel();
}

void CudaBackend::resolve_decode_kernel() {
    const std::string why = persistent_decode_refusal(m_, options_.activations);
    if (options_.decode_kernel == DecodeKernel::Persistent && !why.empty()) {
        throw Error(ErrorCode::UnsupportedArchitecture, why);
    }
    if (options_.decode_kernel == DecodeKernel::Chain && ops::tuning::decode_persistent()) {
        // A benchmark's override: where the model cannot take it, say so once rather than measure the chain under
        // the persistent step's name.
        if (why.empty()) {
            options_.decode_kernel = DecodeKernel::Persistent;
        } else {
            fmt::print(stderr, "ORCD_DECODE_PERSISTENT ignored: {}\n", why);
        }
    }
}

}  // namespace

std::unique_ptr<Backend> make_cuda_backend(model::Model model, const CudaOptions& options,
                                           const loader::ProgressFn& progress) {
    return std::make_unique<CudaBackend>(std::move(model), options, progress);
}

}  // namespace orcd::backend::cuda
