#include "backend/token_mask.h"

#include <fmt/format.h>

#include <algorithm>
#include <bit>
#include <limits>
#include <vector>

#include "backend/backend.h"
#include "common/error.h"

namespace orcd::backend {

std::optional<TokenId> first_allowed(std::span<const uint64_t> mask, uint32_t n_vocab) {
    for (size_t w = 0; w < mask.size() && w * 64 < n_vocab; ++w) {
        if (mask[w] == 0) continue;
        const uint64_t id = w * 64 + static_cast<uint64_t>(std::countr_zero(mask[w]));
        if (id < n_vocab) return static_cast<TokenId>(id);
        return std::nullopt;  // the lowest set bit of this word is already past the vocabulary
    }
    return std::nullopt;
}

void mask_logits(std::span<float> logits, std::span<const uint64_t> mask) {
    constexpr float kNegInf = -std::numeric_limits<float>::infinity();
    // A word at a time: a grammar's mask is mostly whole words of 0 (a run of -inf) or of 1 (left alone).
    const size_t n = logits.size();
    for (size_t w = 0; w * 64 < n; ++w) {
        const uint64_t bits = w < mask.size() ? mask[w] : 0;
        if (bits == ~uint64_t{0}) continue;
        const size_t begin = w * 64, end = std::min(n, begin + 64);
        if (bits == 0) {
            std::fill(logits.begin() + static_cast<ptrdiff_t>(begin), logits.begin() + static_cast<ptrdiff_t>(end),
                      kNegInf);
            continue;
        }
        for (size_t i = begin; i < end; ++i) {
            if (!((bits >> (i - begin)) & 1)) logits[i] = kNegInf;
        }
    }
}

}  // namespace orcd::backend

namespace orcd::backend {

TokenId pick_on_host(std::span<float> row, const SampleStep* sample, std::span<const uint64_t> allowed) {
    auto chosen = [&] { return sample ? sample_on_host(row, *sample) : argmax_token(row); };
    if (allowed.empty()) return chosen();
    mask_logits(row, allowed);
    return allowed_pick(chosen(), allowed, static_cast<uint32_t>(row.size()), [&] { return argmax_token(row); });
}

namespace {

std::span<const uint64_t> resolve_checked(LateTokenMask& late, uint32_t n_vocab) {
    const std::span<const uint64_t> mask = late.resolve();
    if (!mask.empty() && !first_allowed(mask, n_vocab)) {
        throw Error(ErrorCode::Internal,
                    fmt::format("step: a late token mask ({} words) allows no token of the vocabulary of {}",
                                mask.size(), n_vocab));
    }
    return mask;
}

}  // namespace

std::span<const uint64_t> entry_mask(const BatchEntry& e, uint32_t n_vocab) {
    return e.allowed_later ? resolve_checked(*e.allowed_later, n_vocab) : e.allowed;
}

TokenId Sequence::decode_masked(TokenId token, const SampleStep* sample, LateTokenMask& allowed) {
    const std::span<const float> raw = decode(token);
    std::vector<float> row(raw.begin(), raw.end());
    // Resolved once the forward pass is done, as a step resolves it.
    return pick_on_host(row, sample, resolve_checked(allowed, static_cast<uint32_t>(row.size())));
}

TokenId Sequence::decode_masked(TokenId token, const SampleStep* sample, std::span<const uint64_t> allowed) {
    ReadyTokenMask ready(allowed);
    return decode_masked(token, sample, ready);
}

}  // namespace orcd::backend
