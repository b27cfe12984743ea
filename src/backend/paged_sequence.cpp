#include "backend/paged_sequence.h"

#include <fmt/format.h>

#include <algorithm>
#include <cstring>

#include "common/error.h"

namespace orcd::backend {

std::unique_ptr<Sequence> Backend::new_sequence(const SequenceOptions& options) {
    return std::make_unique<PagedSequence>(*this, options);
}

namespace {
[[noreturn]] void no_batched_step(const Backend& b) {
    throw Error(ErrorCode::Internal, fmt::format("backend '{}' does not implement the batched step", b.name()));
}
}  // namespace

uint64_t Backend::kv_page_bytes(uint32_t, KvCacheType) const { no_batched_step(*this); }
std::unique_ptr<KvPool> Backend::new_kv_pool(const KvPoolOptions&) { no_batched_step(*this); }
void Backend::step(KvPool&, std::span<const BatchEntry>, std::span<BatchResult>) { no_batched_step(*this); }

std::vector<uint32_t> prefill_chunk_ends(uint32_t first, uint32_t n, uint32_t chunk) {
    std::vector<uint32_t> ends;
    const uint32_t end = first + n;
    for (uint32_t at = first; at < end;) {
        const uint32_t next = std::min(end, (at / chunk + 1) * chunk);
        ends.push_back(next);
        at = next;
    }
    return ends;
}

PagedSequence::PagedSequence(Backend& backend, const SequenceOptions& options, uint32_t page_size)
    : backend_(backend), n_ctx_(options.n_ctx == 0 ? backend.config().context_length : options.n_ctx) {
    if (n_ctx_ > backend.config().context_length) {
        throw Error(ErrorCode::InvalidArgument,
                    fmt::format("context of {} tokens exceeds the model's context length {}", n_ctx_,
                                backend.config().context_length));
    }
    KvPoolOptions po;
    po.page_size = page_size;
    po.num_pages = (n_ctx_ + page_size - 1) / page_size;
    po.kv_type = options.kv_type;
    pool_ = backend.new_kv_pool(po);
    pages_.resize(po.num_pages);
    for (uint32_t i = 0; i < po.num_pages; ++i) pages_[i] = i;
}

void PagedSequence::check_fits(size_t n_tokens) const {
    if (n_tokens > n_ctx_ - n_past_) {
        throw Error(
            ErrorCode::ContextOverflow,
            fmt::format("{} tokens after {} cached positions exceed the context of {}", n_tokens, n_past_, n_ctx_));
    }
}

BatchResult PagedSequence::run(std::span<const TokenId> tokens, Phase phase, Want want, const SampleStep* sample,
                               std::span<const uint64_t> allowed, LateTokenMask* allowed_later) {
    check_fits(tokens.size());
    BatchEntry e;
    e.tokens = tokens;
    e.first_position = n_past_;
    e.pages = pages_;
    e.phase = phase;
    e.want = want;
    if (sample) e.sample = *sample;
    e.allowed = allowed;
    e.allowed_later = allowed_later;
    BatchResult r;
    backend_.step(*pool_, std::span(&e, 1), std::span(&r, 1));
    n_past_ += static_cast<uint32_t>(tokens.size());
    return r;
}

std::span<const float> PagedSequence::prefill(std::span<const TokenId> tokens, bool all_logits) {
    if (tokens.empty()) throw Error(ErrorCode::InvalidArgument, "prefill: no tokens");
    check_fits(tokens.size());
    const size_t n_vocab = backend_.n_vocab();
    const uint32_t start = n_past_;
    const std::vector<uint32_t> ends = prefill_chunk_ends(start, static_cast<uint32_t>(tokens.size()));
    if (all_logits) prefill_logits_.resize(tokens.size() * n_vocab);
    std::span<const float> last;
    uint32_t at = start;
    try {
        for (const uint32_t end : ends) {
            const auto chunk = tokens.subspan(at - start, end - at);
            const bool final_chunk = end == ends.back();
            const Want want = all_logits ? Want::AllLogits : (final_chunk ? Want::Logits : Want::Nothing);
            const BatchResult r = run(chunk, Phase::Prompt, want);
            if (all_logits) {
                std::memcpy(prefill_logits_.data() + static_cast<size_t>(at - start) * n_vocab, r.logits.data(),
                            r.logits.size() * sizeof(float));
            } else if (final_chunk) {
                last = r.logits;
            }
            at = end;
        }
    } catch (...) {
        n_past_ = start;  // the chunks already written are forgotten: the sequence is as before the call
        throw;
    }
    if (all_logits) return prefill_logits_;
    return last;
}

std::span<const float> PagedSequence::decode(TokenId token) {
    return run(std::span(&token, 1), Phase::Generated, Want::Logits).logits;
}

TokenId PagedSequence::decode_greedy(TokenId token) {
    return run(std::span(&token, 1), Phase::Generated, Want::Argmax).token;
}

TokenId PagedSequence::decode_sample(TokenId token, const SampleStep& step) {
    return run(std::span(&token, 1), Phase::Generated, Want::Sample, &step).token;
}

TokenId PagedSequence::decode_masked(TokenId token, const SampleStep* sample, std::span<const uint64_t> allowed) {
    return run(std::span(&token, 1), Phase::Generated, sample ? Want::Sample : Want::Argmax, sample, allowed).token;
}

TokenId PagedSequence::decode_masked(TokenId token, const SampleStep* sample, LateTokenMask& allowed) {
    return run(std::span(&token, 1), Phase::Generated, sample ? Want::Sample : Want::Argmax, sample, {}, &allowed)
        .token;
}

}  // namespace orcd::backend
