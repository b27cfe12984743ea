#pragma once
// The boundary between the engine and a compute backend (backend/cpu, backend/cuda). A Backend holds one model's
// weights where it computes (the CPU backend reads them straight from the mapped file; the CUDA backend from the
// device arena), runs the model's recipe (model/recipe.h) and refuses one whose features it does not implement; a
// Sequence holds one sequence's KV cache and position. Several sequences may share one backend, but a Backend and its
// Sequences are used from one thread at a time.
#include <cmath>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "backend/sample_chain.h"
#include "model/config.h"

namespace orcd::backend {

enum class KvCacheType : uint8_t { F32, F16 };

// How a quantized weight row meets the activation, one definition for every backend. Int8 (the default, as
// llama.cpp does): the activation is quantized once to 8-bit blocks of 32 and the dot products run in integers
// (cpu/quant_dot.h states the error bound; the CUDA decode matvecs use __dp4a, cuda/matvec_q8.h). F32: the
// dequantized weights meet the f32 activation, so the only error is f32 rounding — slower, and the exact reference
// backends are compared against at full size. Float weight types ignore it; the CUDA batched prefill multiplies f16
// activations on tensor cores in either mode (the mode governs its decode matvecs).
enum class Activations : uint8_t { Int8, F32 };

// How a backend holds the weight matrices: the file's quantized bytes, or (CUDA only, for comparison) also an f16
// copy dequantized once at load, which decode and prefill then read. The CPU backend has only the quantized mode.
enum class WeightsMode : uint8_t { Quantized, F16 };

struct SequenceOptions {
    uint32_t n_ctx = 0;  // positions the KV cache holds; 0 = the model's context length
    KvCacheType kv_type = KvCacheType::F32;
};

class Sequence {
public:
    virtual ~Sequence() = default;

    // Appends tokens at positions n_past() .. n_past() + tokens.size() - 1 as one batch (matrix-matrix products) and
    // returns the logits of the last token ([n_vocab]), or with all_logits of every token ([tokens.size()][n_vocab],
    // row t predicting the token after tokens[t]). The span is valid until the next call on this sequence.
    // Errors: ContextOverflow when the tokens do not fit the cache, InvalidArgument for an empty batch or a token id
    // outside the vocabulary. On error the sequence is unchanged.
    virtual std::span<const float> prefill(std::span<const TokenId> tokens, bool all_logits = false) = 0;
    // One token at position n_past(); returns its logits ([n_vocab]).
    virtual std::span<const float> decode(TokenId token) = 0;
    // decode(token), then the index of its largest logit (ties: the lowest index; NaN never wins), which is what
    // greedy sampling without penalties picks. A backend that keeps the logits on a device overrides this to find
    // the argmax there, so only the token crosses to the host.
    virtual TokenId decode_greedy(TokenId token) {
        const std::span<const float> logits = decode(token);
        TokenId best = -1;
        for (size_t i = 0; i < logits.size(); ++i) {
            if (std::isnan(logits[i])) continue;
            if (best < 0 || logits[i] > logits[static_cast<size_t>(best)]) best = static_cast<TokenId>(i);
        }
        return best < 0 ? 0 : best;
    }
    // decode(token), then the sampling chain of `step` on its logits with the caller's draw step.u (sample_chain.h),
    // which is what non-greedy sampling (or greedy with a repetition penalty) picks. A backend that keeps the logits
    // on a device overrides this to run the chain there, so only the token crosses to the host; it picks what the
    // host chain picks for the same u, except where u lies within f32 rounding of a cumulative boundary.
    virtual TokenId decode_sample(TokenId token, const SampleStep& step) {
        return sample_on_host(decode(token), step);
    }
    // Forgets every position (the cache memory is kept).
    virtual void reset() = 0;

    virtual uint32_t n_past() const = 0;
    virtual uint32_t n_ctx() const = 0;
};

// Device memory a backend holds right now, in bytes, as its allocations add up (not as a plan predicts).
struct DeviceMemoryReport {
    uint64_t weights = 0;    // the model's weights
    uint64_t kv_cache = 0;   // the KV caches of the live sequences
    uint64_t workspace = 0;  // everything else: activations, scratch, constant tables
    uint64_t total() const { return weights + kv_cache + workspace; }
};

class Backend {
public:
    virtual ~Backend() = default;
    virtual std::string_view name() const = 0;  // "cpu", "cuda"
    virtual const model::Config& config() const = 0;
    uint32_t n_vocab() const { return config().n_vocab; }
    // Errors: InvalidArgument when n_ctx exceeds the model's context length; allocation errors of the backend.
    virtual std::unique_ptr<Sequence> new_sequence(const SequenceOptions& options) = 0;

    // The two calls below are safe from any thread, also while another thread runs a sequence: the server's
    // /health, /metrics and background residency check ask them while a job decodes.

    // Device memory in use. The CPU backend computes in host memory (the mapped file): all zeros.
    virtual DeviceMemoryReport device_memory() const { return {}; }
    // Re-verifies that every weight allocation is still device memory of the backend's device, with no host
    // mapping: nullopt when it is, else what is wrong. Never throws (a failed query is a problem, reported as one).
    // The CPU backend's weights stay in the file mapping for its lifetime: always nullopt.
    virtual std::optional<std::string> residency_problem() const { return std::nullopt; }
    bool check_residency() const { return !residency_problem(); }
};

}  // namespace orcd::backend
