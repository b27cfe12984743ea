#pragma once
// One request's generation as a step-driven state machine: what to feed the model next (a prompt chunk, a replay of
// generated tokens after a preemption, or the last sampled token) and what to do with the step's result (pick the
// token, stream its text, apply end-of-generation, stop strings, max_tokens and the grammar). Generator::generate
// drives one Generation over a Sequence; BatchEngine drives many through Backend::step. Both feed the same entries
// in the same order, so a request's tokens are the same alone or batched.
//
// The sequence is prompt + generated tokens; positions [0, computed) have their KV written. While decoding, every
// token but the last generated one is computed and the last is fed next. After a preemption computed drops to what
// the prefix cache still holds and the rest is fed again: the prompt as Phase::Prompt chunks, the generated tokens as
// Phase::Generated (the phase a token was first computed in), so a recomputed position gets the same KV.
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string_view>
#include <vector>

#include "backend/backend.h"
#include "backend/paged_sequence.h"
#include "engine/generator.h"
#include "engine/late_mask.h"
#include "engine/sampler.h"
#include "grammar/matcher.h"
#include "tokenizer/detokenizer.h"

namespace orcd::engine {

class Generation {
public:
    // `prompt_tokens` non-empty (Generator::prompt_tokens of the request); the tokenizer must outlive this.
    // `on_text` receives each piece of text once it is final. Errors: InvalidArgument (sampling parameters, an empty
    // prompt, a constraint built for another vocabulary).
    Generation(const tokenizer::Tokenizer& tokenizer, const GenerateRequest& request,
               std::vector<TokenId> prompt_tokens, std::function<void(std::string_view)> on_text = {});
    Generation(const Generation&) = delete;
    Generation& operator=(const Generation&) = delete;

    // What the next step computes for this sequence: positions [begin, end) of tokens(), in one phase.
    struct Feed {
        uint32_t begin = 0;
        uint32_t end = 0;
        backend::Phase phase = backend::Phase::Prompt;
        backend::Want want = backend::Want::Nothing;  // Nothing: a chunk that is not the last before a pick
        uint32_t size() const { return end - begin; }
    };
    // The next feed, without side effects. Chunks end at backend::prefill_chunk_ends boundaries (multiples of
    // `chunk`, so the split depends on positions alone); chunk 0: the whole remaining prompt (or replay) at once, for
    // a Sequence whose prefill splits it itself at the same boundaries. Only while !done().
    Feed next(uint32_t chunk = backend::PagedSequence::kPrefillChunk) const;
    // The batch entry for `feed` (pages left to the caller). Want::Sample takes this step's draw from the seeded
    // sampler here, so call it exactly once per feed that runs. The entry's spans stay valid until accept(). A
    // constrained pick's mask starts computing here, on the shared mask workers (late_mask.h), and the entry carries
    // it as BatchEntry::allowed_later for the backend to resolve once the forward pass is under way.
    backend::BatchEntry entry(const Feed& feed);
    // The step ran `feed` (its KV is written) and gave `result`. When the feed ends at a pick, picks the token (on
    // the host from logits, or the backend's id), streams its text and applies the end conditions.
    void accept(const Feed& feed, const backend::BatchResult& result);

    // The step's pick was not wanted (cancelled): the generation ends with StopReason::Cancelled.
    void cancel();
    // Preempted: the KV is gone except the first `cached` positions (prefix cache), which the next feeds start after.
    void restart_at(uint32_t cached);

    bool done() const { return done_; }
    // Prompt + generated tokens (the last generated one is computed by the next feed).
    std::span<const TokenId> tokens() const { return tokens_; }
    uint32_t prompt_size() const { return static_cast<uint32_t>(result_.prompt_tokens.size()); }
    uint32_t computed() const { return computed_; }
    uint32_t generated() const { return static_cast<uint32_t>(result_.tokens.size()); }
    uint32_t max_tokens() const { return max_tokens_; }
    // Positions the sequence may still need beyond tokens(): one per token still to generate but the last.
    uint32_t remaining_new() const { return max_tokens_ > generated() ? max_tokens_ - generated() : 0; }
    bool started() const { return t0_.has_value(); }

    // The result once done() (the held-back text flushed; timings closed). Call once.
    GenerateResult finish();

private:
    TokenId pick(std::span<const float> logits);
    // The grammar's allowed tokens in the matcher's state, into mask_ (InvalidArgument when there are none). Runs on
    // a mask worker between entry() and accept() (late_mask_), or on the caller's thread for a host pick.
    std::span<const uint64_t> allowed_tokens();
    void take(TokenId token);
    void emit(const std::string& text);  // final text: into the result and to on_text

    const tokenizer::Tokenizer& tokenizer_;
    const tokenizer::Vocab& vocab_;
    GenerateRequest request_;  // a copy: its stop strings and constraint outlive the caller's
    uint32_t max_tokens_;
    bool argmax_only_;
    std::function<void(std::string_view)> on_text_;
    Sampler sampler_;
    tokenizer::Detokenizer detok_;
    StopMatcher stops_;
    std::optional<grammar::Matcher> matcher_;
    const grammar::TokenVocabulary* gvocab_ = nullptr;
    std::vector<uint64_t> mask_;
    std::vector<float> masked_;
    // The logits come to the host when OpenAI's bias / penalties change them, or when the request wants their
    // log-probabilities; otherwise the backend picks the token where the logits are (a grammar's mask included).
    bool host_logits_ = false;
    std::vector<float> adjusted_;
    std::optional<TokenLogprobs> pending_logprobs_;  // of the token pick() chose, reported once it is taken
    size_t n_bytes_ = 0;                             // bytes the grammar has matched, for messages

    std::vector<TokenId> tokens_;  // prompt + generated
    uint32_t computed_ = 0;
    bool done_ = false;
    GenerateResult result_;
    using Clock = std::chrono::steady_clock;
    std::optional<Clock::time_point> t0_;       // the first entry
    std::optional<Clock::time_point> t_first_;  // the first generated token
    // The mask of the pending pick (computes allowed_tokens() into mask_). The last member: destroyed first, so a
    // computation still under way ends before anything it reads goes.
    std::unique_ptr<LateMask> late_mask_;
};

}  // namespace orcd::engine
