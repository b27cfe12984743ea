#pragma once
// The argument checks every backend's Sequence::prefill makes before touching its cache, so that both backends reject
// the same inputs with the same errors.
#include <cstdint>
#include <fmt/format.h>
#include <span>

#include "backend/backend.h"
#include "common/error.h"

namespace orcd::backend {

// Throws InvalidArgument for an empty batch or a token outside [0, n_vocab), ContextOverflow when the batch does not
// fit in the positions left after n_past.
inline void check_batch(std::span<const TokenId> tokens, uint32_t n_vocab, uint32_t n_past, uint32_t n_ctx) {
    if (tokens.empty()) throw Error(ErrorCode::InvalidArgument, "prefill: no tokens");
    if (tokens.size() > n_ctx - n_past) {
        throw Error(ErrorCode::ContextOverflow,
                    fmt::format("{} tokens after {} cached positions exceed the context of {}", tokens.size(), n_past,
                                n_ctx));
    }
    for (TokenId t : tokens) {
        if (t < 0 || static_cast<uint32_t>(t) >= n_vocab) {
            throw Error(ErrorCode::InvalidArgument, fmt::format("token id {} is outside the vocabulary of {}", t, n_vocab));
        }
    }
}

}  // namespace orcd::backend

namespace orcd::backend {

// The checks Backend::step makes on a whole batch before it writes anything (both backends call it, so they refuse
// the same inputs with the same errors): every entry has tokens inside the vocabulary, positions inside n_ctx_max (the
// model's context), a page table that covers its positions with ids inside the pool, and no page written by two
// entries. `results` must have one slot per entry.
void check_batch_entries(const KvPool& pool, std::span<const BatchEntry> batch, std::span<const BatchResult> results,
                         uint32_t n_vocab, uint32_t n_ctx_max);

}  // namespace orcd::backend
