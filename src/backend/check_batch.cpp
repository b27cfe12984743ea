#include "backend/check_batch.h"

#include <unordered_map>

#include "backend/token_mask.h"

namespace orcd::backend {

void check_batch_entries(const KvPool& pool, std::span<const BatchEntry> batch, std::span<const BatchResult> results,
                         uint32_t n_vocab, uint32_t n_ctx_max) {
    if (results.size() != batch.size()) {
        throw Error(ErrorCode::InvalidArgument,
                    fmt::format("step: {} result slots for {} entries", results.size(), batch.size()));
    }
    const uint32_t ps = pool.page_size();
    std::unordered_map<uint32_t, size_t> writer;  // page -> the entry writing it
    for (size_t i = 0; i < batch.size(); ++i) {
        const BatchEntry& e = batch[i];
        if (e.tokens.empty()) throw Error(ErrorCode::InvalidArgument, fmt::format("step: entry {} has no tokens", i));
        const uint64_t end = static_cast<uint64_t>(e.first_position) + e.tokens.size();
        if (end > n_ctx_max) {
            throw Error(ErrorCode::ContextOverflow,
                        fmt::format("step: entry {}: {} tokens after {} cached positions exceed the context of {}", i,
                                    e.tokens.size(), e.first_position, n_ctx_max));
        }
        for (TokenId t : e.tokens) {
            if (t < 0 || static_cast<uint32_t>(t) >= n_vocab) {
                throw Error(ErrorCode::InvalidArgument,
                            fmt::format("token id {} is outside the vocabulary of {}", t, n_vocab));
            }
        }
        if (e.allowed_later && (!e.allowed.empty() || (e.want != Want::Argmax && e.want != Want::Sample))) {
            throw Error(ErrorCode::InvalidArgument,
                        fmt::format("step: entry {}: a late token mask is for a pick (Argmax or Sample) without "
                                    "`allowed`",
                                    i));
        }
        if (!e.allowed.empty()) {
            if (e.want != Want::Argmax && e.want != Want::Sample) {
                throw Error(
                    ErrorCode::InvalidArgument,
                    fmt::format("step: entry {}: a token mask is applied only to a pick (Argmax or Sample)", i));
            }
            if (!first_allowed(e.allowed, n_vocab)) {
                throw Error(ErrorCode::InvalidArgument,
                            fmt::format("step: entry {}: the token mask ({} words) allows no token of the vocabulary "
                                        "of {}",
                                        i, e.allowed.size(), n_vocab));
            }
        }
        const uint64_t pages_needed = (end + ps - 1) / ps;
        if (e.pages.size() < pages_needed) {
            throw Error(ErrorCode::InvalidArgument,
                        fmt::format("step: entry {}: {} pages of {} positions do not cover position {}", i,
                                    e.pages.size(), ps, end - 1));
        }
        for (uint64_t p = 0; p < pages_needed; ++p) {
            if (e.pages[p] >= pool.num_pages()) {
                throw Error(ErrorCode::InvalidArgument,
                            fmt::format("step: entry {}: page id {} is outside the pool of {} pages", i, e.pages[p],
                                        pool.num_pages()));
            }
        }
        for (uint64_t p = e.first_position / ps; p < pages_needed; ++p) {
            const auto [it, fresh] = writer.emplace(e.pages[p], i);
            if (!fresh && it->second != i) {
                throw Error(ErrorCode::InvalidArgument,
                            fmt::format("step: entries {} and {} both write page {}", it->second, i, e.pages[p]));
            }
        }
    }
}

}  // namespace orcd::backend
