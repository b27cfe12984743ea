#pragma once
// One sequence on its own KV pool, run through Backend::step as a batch of one: what `orcd generate`, perplexity,
// bench and the tests use when no scheduler shares the backend. The pool holds ceil(n_ctx / page_size) pages and the
// page table is the identity, so the sequence is exactly the batched path's computation with one entry.
#include <memory>
#include <vector>

#include "backend/backend.h"

namespace orcd::backend {

class PagedSequence final : public Sequence {
public:
    // Errors: InvalidArgument when n_ctx is 0 or exceeds the model's context length; the pool's allocation errors.
    PagedSequence(Backend& backend, const SequenceOptions& options, uint32_t page_size = 16);

    std::span<const float> prefill(std::span<const TokenId> tokens, bool all_logits = false) override;
    std::span<const float> decode(TokenId token) override;
    TokenId decode_greedy(TokenId token) override;
    TokenId decode_sample(TokenId token, const SampleStep& step) override;
    TokenId decode_masked(TokenId token, const SampleStep* sample, LateTokenMask& allowed) override;
    TokenId decode_masked(TokenId token, const SampleStep* sample, std::span<const uint64_t> allowed) override;
    void reset() override { n_past_ = 0; }
    uint32_t n_past() const override { return n_past_; }
    uint32_t n_ctx() const override { return n_ctx_; }

    // Tokens per step() of a prefill: longer prompts are split at positions that are multiples of this, so the
    // split depends on the positions alone (the server's scheduler splits prompts at the same boundaries).
    static constexpr uint32_t kPrefillChunk = 512;

private:
    // ContextOverflow unless n_tokens more positions fit after n_past().
    void check_fits(size_t n_tokens) const;
    BatchResult run(std::span<const TokenId> tokens, Phase phase, Want want, const SampleStep* sample = nullptr,
                    std::span<const uint64_t> allowed = {}, LateTokenMask* allowed_later = nullptr);

    Backend& backend_;
    uint32_t n_ctx_;
    uint32_t n_past_ = 0;
    std::unique_ptr<KvPool> pool_;
    std::vector<uint32_t> pages_;        // 0, 1, 2, ...
    std::vector<float> prefill_logits_;  // all_logits results gathered over chunks
};

// Where a prompt of `n` tokens starting at `first` is cut into steps: the ends of the chunks, each at most
// kPrefillChunk tokens and ending at a multiple of it (or at first + n). Shared by PagedSequence and the scheduler.
std::vector<uint32_t> prefill_chunk_ends(uint32_t first, uint32_t n, uint32_t chunk = PagedSequence::kPrefillChunk);

}  // namespace orcd::backend
