#pragma once
// The batched prefill on the device: a micro-batch of n tokens at positions pos0 .. pos0 + n - 1 runs as matrix-matrix
// products on tensor cores. Per layer: the layer's quantized matrices dequantized to f16 (one launch; F16 ones are read
// in place); RMSNorm -> f16; Q/K/V (one GEMM when their f16 copies lie back to back); bias + RoPE + KV store fused;
// causal flash attention over the cache -> f16; O projection accumulated into the residual by the GEMM itself (beta =
// 1); the same for gate/up (one GEMM as Q/K/V) -> SwiGLU -> f16 -> down. Logits: the last token's through the decode
// matvec on the quantized LM head, or every token's (perplexity) through GEMMs over row chunks of the LM head.
// Internal to the CUDA backend.
#include <cstdint>
#include <cuda_runtime_api.h>
#include <memory>
#include <span>
#include <vector>

#include "backend/cuda/cuda_model.h"
#include "backend/cuda/gemm.h"
#include "device/device.h"

namespace orcd::backend::cuda {

// Tokens per micro-batch: bounds the workspace; ORCD_PREFILL_UBATCH (16 .. 8192) overrides it for tuning runs.
uint32_t prefill_ubatch();

// Whether the batched path can run this model (the attention kernel's head dimensions).
bool prefill_supported(const CudaModel& m);

// One sequence's prefill buffers, carved from one device allocation (counted by the device like the KV cache).
class PrefillWorkspace {
public:
    PrefillWorkspace(device::Device& device, const CudaModel& m, uint32_t max_tokens, cudaStream_t stream);

    uint32_t max_tokens() const { return max_tokens_; }

    // What a run computes of its last token's logits: none, the device row only (last_logits_device(), for a pick
    // made on the device), or that row copied to host memory as well.
    enum class Last { None, Device, Host };

    // Runs tokens[0 .. n) (n <= max_tokens) at positions pos0 ..; the cache must have room. Logits: all_logits
    // ([n][n_vocab] host memory, every row; may be null) and the last token's as `last` says (Host: into
    // last_host, [n_vocab]). Synchronizes the stream before returning.
    void run(const CudaModel& m, const KvCache& kv, const int32_t* tokens, int64_t n, int64_t pos0, float* all_logits,
             Last last, float* last_host = nullptr);

    uint64_t bytes() const;
    // The last run's last-token logits ([n_vocab], device), when it was asked for them (Last::Device or Host).
    const float* last_logits_device() const { return logits_; }
    float* last_logits_device() { return logits_; }  // a token mask is applied in place (token_mask.h)

private:
    // A layer's matrices as f16, each where its GEMM reads it.
    struct LayerF16 {
        std::vector<const uint16_t*> qkv, gate_up;
        const uint16_t *o = nullptr, *down = nullptr;
    };
    // F16 matrices where they are; the others dequantized into the scratch back to back, in the layer's order, the
    // block formats in one launch.
    void stage_layer(const Layer& l, LayerF16& out);
    const uint16_t* weights_f16(const Matmul& mm, int64_t row0, int64_t n_rows);
    // y (+)= W x for matrices that write consecutive ranges of y's rows (Q, K, V; gate, up): one GEMM when their f16
    // copies lie back to back (the staged ones do), else one each.
    void project(std::span<const Matmul> mms, std::span<const uint16_t* const> w16, const uint16_t* x, int64_t n,
                 float* y, int64_t ldy, bool accumulate);

    cudaStream_t s_;
    uint32_t max_tokens_;
    int64_t vocab_chunk_ = 0;  // LM-head rows per all-logits GEMM
    std::unique_ptr<device::DeviceMemory> mem_;
    int32_t* tokens_ = nullptr;
    float *x_ = nullptr, *qkv_ = nullptr, *gu_ = nullptr, *hlast_ = nullptr, *logits_ = nullptr, *lchunk_ = nullptr;
    uint16_t *h16_ = nullptr, *q16_ = nullptr, *a16_ = nullptr, *f16_ = nullptr, *wdq_ = nullptr;
    std::unique_ptr<::orcd::cuda::Gemm> gemm_;
};

// Per-phase device time of the batched prefill, summed over calls while ORCD_PREFILL_PROFILE=1 (events between the
// phases; off by default since the events cost a little). Milliseconds.
struct PrefillPhaseTimes {
    double dequant = 0, gemm = 0, attention = 0, other = 0;
    uint64_t tokens = 0;
};
PrefillPhaseTimes prefill_phase_times();
void reset_prefill_phase_times();

// `--weights f16`: dequantizes every matrix of `m` into one new f16 allocation and points the model at it (type F16,
// which matvec and the prefill GEMMs read directly). Returns the allocation, which must outlive `m`'s use.
std::unique_ptr<device::DeviceMemory> convert_weights_to_f16(CudaModel& m, device::Device& device);

}  // namespace orcd::backend::cuda
