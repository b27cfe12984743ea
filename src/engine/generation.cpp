#include "engine/generation.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <utility>

#include "backend/token_mask.h"
#include "common/error.h"

namespace orcd::engine {

using backend::Phase;
using backend::Want;

namespace {

// Log-softmax of `logits` (in double) for the chosen token and the `k` most likely (logit descending, ties by id).
TokenLogprobs token_logprobs(std::span<const float> logits, TokenId chosen, uint32_t k,
                             const tokenizer::Tokenizer& tokenizer) {
    float max = -std::numeric_limits<float>::infinity();
    for (float x : logits) max = std::isfinite(x) ? std::max(max, x) : max;
    double sum = 0;
    for (float x : logits) sum += std::isfinite(x) ? std::exp(static_cast<double>(x) - max) : 0.0;
    const double lse = static_cast<double>(max) + std::log(sum);
    auto entry = [&](TokenId id) {
        TokenLogprobs::Entry e;
        e.id = id;
        const float x = logits[static_cast<size_t>(id)];
        e.logprob = std::isfinite(x) ? static_cast<float>(x - lse) : -std::numeric_limits<float>::infinity();
        tokenizer.append_piece(id, /*show_special=*/true, e.text);
        return e;
    };
    TokenLogprobs out;
    out.chosen = entry(chosen);
    // The k best by insertion into a short sorted list: one pass over the vocabulary.
    std::vector<TokenId> best;
    auto better = [&](TokenId a, TokenId b) {
        const float xa = logits[static_cast<size_t>(a)], xb = logits[static_cast<size_t>(b)];
        return xa > xb || (xa == xb && a < b);
    };
    for (size_t i = 0; i < logits.size() && k > 0; ++i) {
        const auto id = static_cast<TokenId>(i);
        if (!std::isfinite(logits[i])) continue;
        if (best.size() == k && !better(id, best.back())) continue;
        if (best.size() == k) best.pop_back();
        best.insert(std::upper_bound(best.begin(), best.end(), id, better), id);
    }
    for (TokenId id : best) out.top.push_back(entry(id));
    return out;
}

}  // namespace

Generation::Generation(const tokenizer::Tokenizer& tokenizer, const GenerateRequest& request,
                       std::vector<TokenId> prompt_tokens, std::function<void(std::string_view)> on_text)
    : tokenizer_(tokenizer),
      vocab_(tokenizer.vocab()),
      request_(request),
      max_tokens_(request.max_tokens),
      on_text_(std::move(on_text)),
      sampler_(request.sampling),
      detok_(tokenizer, tokenizer::DetokenizerOptions{.show_special = request.show_special}),
      stops_(request.stop) {
    if (prompt_tokens.empty()) {
        throw Error(ErrorCode::InvalidArgument, "the prompt is empty (no tokens after tokenization)");
    }
    // After the prompt, every token is picked where the backend keeps the logits, so a GPU backend copies one token
    // per step instead of the whole vocabulary: greedy with no repetition penalty needs only the argmax; anything
    // else runs the sampler's chain with the sampler's draw. Both follow the host sampler's rules (ties to the lowest
    // id, the same u from the same seed), so the tokens are the same.
    const SamplingParams& sp = request.sampling;
    argmax_only_ = sp.temperature <= 0.f && (sp.repeat_penalty == 1.f || sp.repeat_last_n == 0);
    // A constrained request: the matcher follows the bytes generated so far and the masker turns its state into the
    // set of allowed tokens, which each pick's batch entry carries (BatchEntry::allowed) so the backend masks the
    // logits where they are; a pick made on the host (the first token, bias, penalties, logprobs) masks them here.
    if (request.constraint) {
        gvocab_ = &request.constraint->vocabulary();
        if (gvocab_->size() != vocab_.size()) {
            throw Error(ErrorCode::InvalidArgument,
                        fmt::format("grammar constraint was built for a vocabulary of {} tokens, the model has {}",
                                    gvocab_->size(), vocab_.size()));
        }
        matcher_.emplace(request.constraint->grammar());
        late_mask_ = std::make_unique<LateMask>([this] { return allowed_tokens(); });
    }
    host_logits_ = sampler_.adjusts_logits() || static_cast<bool>(request.on_logprobs);
    result_.seed = sampler_.seed();
    request_.prompt_ids.clear();  // the tokens live in tokens_ and the result; the copy would be a third
    request_.prompt_ids.shrink_to_fit();
    tokens_ = prompt_tokens;
    result_.prompt_tokens = std::move(prompt_tokens);
    done_ = max_tokens_ == 0;
}

Generation::Feed Generation::next(uint32_t chunk) const {
    if (done_) throw Error(ErrorCode::Internal, "Generation::next after the generation ended");
    Feed f;
    f.begin = computed_;
    const uint32_t n = static_cast<uint32_t>(tokens_.size());
    const uint32_t p = prompt_size();
    // The region the next feed lies in: the rest of the prompt, or the generated tokens not yet computed.
    const uint32_t region_end = f.begin < p ? p : n;
    f.phase = f.begin < p ? Phase::Prompt : Phase::Generated;
    f.end = chunk == 0 ? region_end : std::min(region_end, (f.begin / chunk + 1) * chunk);
    if (f.end < n) {
        f.want = Want::Nothing;
    } else if (generated() == 0 || host_logits_) {
        // The first token is picked on the host from the prompt's logits, as it always was; a request with bias,
        // penalties or logprobs shapes every step's logits on the host.
        f.want = Want::Logits;
    } else {
        f.want = argmax_only_ ? Want::Argmax : Want::Sample;
    }
    return f;
}

backend::BatchEntry Generation::entry(const Feed& feed) {
    if (!t0_) t0_ = Clock::now();
    backend::BatchEntry e;
    e.tokens = std::span<const TokenId>(tokens_).subspan(feed.begin, feed.size());
    e.first_position = feed.begin;
    e.phase = feed.phase;
    e.want = feed.want;
    if (feed.want == Want::Sample) e.sample = sampler_.step(tokens_);
    if (matcher_ && (feed.want == Want::Argmax || feed.want == Want::Sample)) {
        // The matcher stays as it is until accept(), which waits for this computation first.
        late_mask_->start();
        e.allowed_later = late_mask_.get();
    }
    return e;
}

std::span<const uint64_t> Generation::allowed_tokens() {
    request_.constraint->fill(*matcher_, mask_);
    if (!backend::first_allowed(mask_, static_cast<uint32_t>(gvocab_->size()))) {
        throw Error(
            ErrorCode::InvalidArgument,
            fmt::format("grammar: no token of the vocabulary can continue the output after {} bytes", n_bytes_));
    }
    return mask_;
}

TokenId Generation::pick(std::span<const float> raw) {
    std::span<const float> lg = raw;
    if (sampler_.adjusts_logits()) {
        adjusted_.assign(raw.begin(), raw.end());
        sampler_.adjust(adjusted_, std::span<const TokenId>(tokens_).subspan(prompt_size()));
        lg = adjusted_;
    }
    TokenId t = -1;
    if (!matcher_) {
        t = sampler_.sample(lg, tokens_);
    } else {
        // The backend's rule for a masked pick (backend/token_mask.h), so the host and the device agree.
        const std::span<const uint64_t> allowed = allowed_tokens();
        masked_.assign(lg.begin(), lg.end());
        backend::mask_logits(masked_, allowed);
        t = backend::allowed_pick(sampler_.sample(masked_, tokens_), allowed, static_cast<uint32_t>(masked_.size()),
                                  [&] { return backend::argmax_token(masked_); });
    }
    if (request_.on_logprobs) pending_logprobs_ = token_logprobs(lg, t, request_.top_logprobs, tokenizer_);
    return t;
}

void Generation::accept(const Feed& feed, const backend::BatchResult& result) {
    if (done_) throw Error(ErrorCode::Internal, "Generation::accept after the generation ended");
    if (feed.begin != computed_) {
        throw Error(ErrorCode::Internal,
                    fmt::format("Generation::accept: a feed from position {}, the sequence has {} computed", feed.begin,
                                computed_));
    }
    computed_ = feed.end;
    // The pick's mask is done (a failed one throws its error here: the pick, made without it, is not used).
    if (late_mask_) late_mask_->finish();
    switch (feed.want) {
        case Want::Nothing: return;
        case Want::Logits: take(pick(result.logits)); return;
        default: take(result.token); return;
    }
}

void Generation::take(TokenId tok) {
    result_.tokens.push_back(tok);
    tokens_.push_back(tok);
    if (!t_first_) {
        t_first_ = Clock::now();
        result_.timings.prefill_s = result_.timings.ttft_s = std::chrono::duration<double>(*t_first_ - *t0_).count();
    }
    auto end = [&](StopReason reason) {
        result_.stop_reason = reason;
        done_ = true;
    };
    if (vocab_.is_end_of_generation(tok)) {
        result_.grammar_complete = matcher_.has_value();  // allowed only where the grammar is complete
        return end(StopReason::EndOfGeneration);
    }
    if (pending_logprobs_) request_.on_logprobs(*std::exchange(pending_logprobs_, std::nullopt));
    if (matcher_) {
        const std::string_view bytes = gvocab_->bytes(tok);
        if (!matcher_->advance(bytes)) {
            throw Error(ErrorCode::Internal, fmt::format("grammar: the sampled token {} was not allowed", tok));
        }
        n_bytes_ += bytes.size();
    }
    emit(stops_.push(detok_.push(tok)));
    if (stops_.stopped()) return end(StopReason::StopString);
    if (matcher_ && matcher_->accepts() && !matcher_->can_continue()) {
        // The grammar is complete and allows nothing more: the sequence ends as at an end-of-generation token.
        result_.grammar_complete = true;
        return end(StopReason::EndOfGeneration);
    }
    if (generated() == max_tokens_) end(StopReason::MaxTokens);
}

void Generation::cancel() {
    if (done_) return;
    if (late_mask_) {
        try {
            late_mask_->finish();
        } catch (const Error&) {
            // The pending pick's mask failed (no token can continue the grammar); the pick is dropped with the
            // generation, so there is nothing left for that error to stop.
        }
    }
    result_.stop_reason = StopReason::Cancelled;
    done_ = true;
}

void Generation::restart_at(uint32_t cached) {
    if (cached >= tokens_.size()) {
        throw Error(ErrorCode::Internal,
                    fmt::format("Generation::restart_at({}): the sequence has only {} tokens, the last of which must "
                                "be computed",
                                cached, tokens_.size()));
    }
    computed_ = cached;
}

void Generation::emit(const std::string& text) {
    if (text.empty()) return;
    result_.text += text;
    if (on_text_) on_text_(text);
}

GenerateResult Generation::finish() {
    if (!result_.tokens.empty()) {
        result_.timings.decode_s = std::chrono::duration<double>(Clock::now() - *t_first_).count();
    }
    if (max_tokens_ > 0 && !stops_.stopped()) {
        emit(stops_.push(detok_.finish()));
        if (!stops_.stopped()) emit(stops_.flush());
    }
    return std::move(result_);
}

}  // namespace orcd::engine
