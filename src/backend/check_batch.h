#pragma once
// The argument checks every backend's step makes before touching its cache, so that both backends reject the same
// inputs with the same errors.
#include <cstdint>
#include <fmt/format.h>
#include <span>

#include "backend/backend.h"
#include "common/error.h"

namespace orcd::backend {

// The checks Backend::step makes on a whole batch before it writes anything (both backends call it, so they refuse
// the same inputs with the same errors): every entry has tokens inside the vocabulary, positions inside n_ctx_max (the
// model's context), a page table that covers its positions with ids inside the pool, and no page written by two
// entries, and a token mask only on a pick, allowing some token. `results` must have one slot per entry.
void check_batch_entries(const KvPool& pool, std::span<const BatchEntry> batch, std::span<const BatchResult> results,
                         uint32_t n_vocab, uint32_t n_ctx_max);

}  // namespace orcd::backend
