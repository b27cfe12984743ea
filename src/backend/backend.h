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

// A token mask that may still be being computed when a step starts (BatchEntry::allowed_later): a constrained
// sequence's mask depends only on its output so far, so it can be computed while the step's forward pass runs. The
// backend calls resolve() once per step, after it has started the forward pass (CUDA: the decode kernels enqueued)
// and before the entry's pick, from the thread that called step().
class LateTokenMask {
public:
    virtual ~LateTokenMask() = default;
    // The mask, in the form of BatchEntry::allowed, waiting for it if it is still being computed. Empty: this step's
    // pick is not constrained (the source reports its own failure to its owner; the pick is then not used). A
    // non-empty mask must allow some token of the vocabulary; this is checked when it is resolved, after the step
    // has written the KV, and a violation is an Internal error.
    virtual std::span<const uint64_t> resolve() = 0;
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
    virtual TokenId decode_greedy(TokenId token) { return argmax_token(decode(token)); }
    // decode(token), then the sampling chain of `step` on its logits with the caller's draw step.u (sample_chain.h),
    // which is what non-greedy sampling (or greedy with a repetition penalty) picks. A backend that keeps the logits
    // on a device overrides this to run the chain there, so only the token crosses to the host; it picks what the
    // host chain picks for the same u, except where u lies within f32 rounding of a cumulative boundary.
    virtual TokenId decode_sample(TokenId token, const SampleStep& step) { return sample_on_host(decode(token), step); }
    // decode_greedy (sample null) or decode_sample(token, *sample) picking only among the tokens of the mask that
    // `allowed` resolves to (BatchEntry::allowed_later: resolved once, after the forward pass is under way): the
    // pick Backend::step makes for such an entry. The default resolves it after decode(token) and masks the logits
    // on the host; a backend that keeps the logits on a device masks them there.
    virtual TokenId decode_masked(TokenId token, const SampleStep* sample, LateTokenMask& allowed);
    // The same with a mask that is ready now (BatchEntry::allowed: non-empty, allowing some token). The default
    // resolves it as a ready LateTokenMask.
    virtual TokenId decode_masked(TokenId token, const SampleStep* sample, std::span<const uint64_t> allowed);
    // Forgets every position (the cache memory is kept).
    virtual void reset() = 0;

    virtual uint32_t n_past() const = 0;
    virtual uint32_t n_ctx() const = 0;
};

// ---- The KV pool and the batched step (docs/BATCHING.md) ----------------------------------------------------------

// A pool of fixed-size KV pages in the backend's memory. A page holds `page_size` consecutive positions of one
// sequence, for every layer, K and V; a sequence's page table lists its pages in position order, so position p lives
// in page_table[p / page_size], slot p % page_size. Which pages a sequence owns is the caller's bookkeeping
// (kvcache::BlockManager in the server, a private identity table in PagedSequence); the pool is memory only. Pages
// reused through the prefix cache are only ever read.
struct KvPoolOptions {
    uint32_t num_pages = 0;
    uint32_t page_size = 16;                 // positions per page
    KvCacheType kv_type = KvCacheType::F16;  // the CUDA backend stores f16 whatever is asked (its only cache type)
};

class KvPool {
public:
    virtual ~KvPool() = default;
    KvPool(const KvPool&) = delete;
    KvPool& operator=(const KvPool&) = delete;
    const KvPoolOptions& options() const { return options_; }
    uint32_t num_pages() const { return options_.num_pages; }
    uint32_t page_size() const { return options_.page_size; }
    uint64_t page_bytes() const { return page_bytes_; }
    uint64_t bytes() const { return page_bytes_ * options_.num_pages; }

protected:
    KvPool(const KvPoolOptions& options, uint64_t page_bytes) : options_(options), page_bytes_(page_bytes) {}

private:
    KvPoolOptions options_;
    uint64_t page_bytes_;
};

// What a batch entry asks of the step once its tokens are in the cache.
enum class Want : uint8_t {
    Nothing,    // a prompt chunk that is not the prompt's last: only the KV is written
    Logits,     // the last token's logits ([n_vocab])
    AllLogits,  // every token's logits ([tokens.size()][n_vocab]; perplexity)
    Argmax,     // the last token's largest logit (ties: lowest id; NaN never wins), as Sequence::decode_greedy
    Sample,     // the sampling chain of `sample` on the last token's logits, as Sequence::decode_sample
};

// Which numeric path computes an entry's tokens. The CPU computes both the same way; the CUDA backend runs prompt
// chunks of more than one token as tensor-core GEMMs (prefill) and everything else through its batched decode
// kernels, whose arithmetic per token is the same at every batch size. A sequence's tokens must reach the same path
// whatever shares its step, so the caller decides it from the sequence alone: a token the model generated (decoded
// now, or replayed after a preemption) is Generated; a prompt token is Prompt.
enum class Phase : uint8_t { Prompt, Generated };

// One sequence's part of a step: its next tokens, at positions first_position .. first_position + tokens.size() - 1,
// whose KV the step writes through `pages` (which must cover those positions), attending to every earlier position
// already in those pages.
struct BatchEntry {
    std::span<const TokenId> tokens;
    uint32_t first_position = 0;
    std::span<const uint32_t> pages;  // the sequence's page table (page ids < the pool's num_pages)
    Phase phase = Phase::Prompt;
    Want want = Want::Logits;
    SampleStep sample;  // Want::Sample: parameters and this step's draw (the window must stay valid during step())
    // Argmax / Sample only: a packed bitset of the tokens the pick may choose (token_mask.h; empty: every token).
    // The backend sets the other logits to -inf on the last token's row before the pick, where the logits are, so a
    // constrained sequence crosses only its token id; an entry without a mask pays nothing. Must allow at least one
    // token of the vocabulary, and stay valid during step().
    std::span<const uint64_t> allowed;
    // Argmax / Sample only, instead of `allowed`: the mask resolved late (LateTokenMask); must stay valid during
    // step().
    LateTokenMask* allowed_later = nullptr;
};

struct BatchResult {
    TokenId token = -1;             // Argmax / Sample: the picked id
    std::span<const float> logits;  // Logits / AllLogits: valid until the backend's next step()
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
    // A sequence with its own KV pool of ceil(n_ctx / page_size) pages: the batch-of-one case of step()
    // (PagedSequence, paged_sequence.h). Errors: InvalidArgument when n_ctx exceeds the model's context length;
    // allocation errors of the backend.
    virtual std::unique_ptr<Sequence> new_sequence(const SequenceOptions& options);

    // The bytes of one KV page of `page_size` positions (every layer, K and V) in the type the backend would store.
    virtual uint64_t kv_page_bytes(uint32_t page_size, KvCacheType kv_type) const;
    // Allocates a pool (device memory on a GPU backend, reported as kv_cache by device_memory()). Errors:
    // InvalidArgument (no pages, page_size 0), DeviceAlloc/bad_alloc when the memory is not there.
    virtual std::unique_ptr<KvPool> new_kv_pool(const KvPoolOptions& options);
    // One forward pass over every entry of `batch` (distinct sequences, each with its own page table in `pool`):
    // all their tokens go through each weight matrix together; attention and the KV store are per sequence. Writes
    // one result per entry. A sequence's results do not depend on the other entries (batch invariance: the same
    // entry alone gives bit-identical logits and picks). Every entry is checked before anything is written
    // (check_batch_entry): InvalidArgument (no tokens, a token outside the vocabulary, a page id outside the pool,
    // pages that do not cover the positions, two entries sharing a page they write), ContextOverflow (positions past
    // the model's context); on error no cache changed. Not thread-safe: one step at a time per backend.
    virtual void step(KvPool& pool, std::span<const BatchEntry> batch, std::span<BatchResult> results);
    // (The three defaults throw Internal naming the backend: a backend without them cannot run a sequence.)

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
