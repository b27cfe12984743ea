#pragma once
// A sequence's token mask in the batched step (BatchEntry::allowed): a packed bitset over the vocabulary, bit t of
// word t / 64 set when token t may be picked (grammar::TokenMasker::fill writes this form). Tokens past the mask's
// last word are not allowed. Both backends apply it the same way, so a constrained pick is the same on either and
// alone or batched: every disallowed logit becomes -inf, then the entry's usual pick (Argmax or the sampling chain)
// runs on the masked row, then allowed_pick() repairs the two cases where a pick can still land on a -inf token.
#include <cstdint>
#include <optional>
#include <span>

#include "backend/backend.h"
#include "backend/sample_chain.h"

namespace orcd::backend {

inline bool token_allowed(std::span<const uint64_t> mask, TokenId t) {
    const auto u = static_cast<uint64_t>(t);
    return t >= 0 && (u >> 6) < mask.size() && ((mask[u >> 6] >> (u & 63)) & 1);
}

// The lowest allowed id below n_vocab; nullopt when the mask allows none of the vocabulary.
std::optional<TokenId> first_allowed(std::span<const uint64_t> mask, uint32_t n_vocab);

// Sets every disallowed logit to -inf (the host form of cuda/token_mask.cu's kernel).
void mask_logits(std::span<float> logits, std::span<const uint64_t> mask);

// The final pick of a masked row: `picked` (the entry's pick on the masked logits) when it is allowed; else the
// masked row's argmax (`masked_argmax`, computed only then) when that is allowed; else the lowest allowed id. The
// chain reaches a -inf token only when its draw lies within rounding of 1 past every finite probability, and the
// argmax only when every allowed logit is NaN; the mask must allow some token (check_batch_entries ensures it).
template <class MaskedArgmax>
TokenId allowed_pick(TokenId picked, std::span<const uint64_t> mask, uint32_t n_vocab, MaskedArgmax masked_argmax) {
    if (token_allowed(mask, picked)) return picked;
    const TokenId best = masked_argmax();
    if (token_allowed(mask, best)) return best;
    return first_allowed(mask, n_vocab).value_or(0);
}

// The mask of a pick entry: `allowed`, or what `allowed_later` resolves to. Call it once per entry and step, where
// the backend's protocol says (after the forward pass is started, before the pick): resolving may wait for the
// mask's computation. A resolved mask that is not empty must allow a token below n_vocab (Internal otherwise: the
// KV is already written, so this is the source's bug, not the caller's input).
std::span<const uint64_t> entry_mask(const BatchEntry& e, uint32_t n_vocab);

// A LateTokenMask that is ready from the start (the span form of Sequence::decode_masked).
class ReadyTokenMask final : public LateTokenMask {
public:
    explicit ReadyTokenMask(std::span<const uint64_t> mask) : mask_(mask) {}
    std::span<const uint64_t> resolve() override { return mask_; }

private:
    std::span<const uint64_t> mask_;
};

// A pick on a host row: argmax_token (sample null) or sample_on_host(*sample), with `allowed` (when non-empty)
// applied to the row in place first and the pick repaired as above. The CPU backend's step and the default
// Sequence::decode_masked.
TokenId pick_on_host(std::span<float> row, const SampleStep* sample, std::span<const uint64_t> allowed);

}  // namespace orcd::backend
