#include "engine/generator.h"

#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <limits>
#include <optional>
#include <utility>

#include "common/error.h"
#include "grammar/matcher.h"
#include "tokenizer/chat_template.h"
#include "tokenizer/detokenizer.h"

namespace orcd::engine {

std::string_view stop_reason_name(StopReason r) {
    switch (r) {
        case StopReason::MaxTokens: return "length";
        case StopReason::EndOfGeneration: return "eos";
        case StopReason::StopString: return "stop";
        case StopReason::Cancelled: return "cancelled";
    }
    return "unknown";
}

StopMatcher::StopMatcher(std::vector<std::string> stops) {
    for (auto& s : stops) {
        if (!s.empty()) stops_.push_back(std::move(s));
    }
}

std::string StopMatcher::push(std::string_view text) {
    if (stopped_) return {};
    held_.append(text);
    // The earliest complete stop string wins.
    size_t first = std::string::npos;
    for (const auto& s : stops_) first = std::min(first, held_.find(s));
    if (first != std::string::npos) {
        stopped_ = true;
        std::string out = held_.substr(0, first);
        held_.clear();
        return out;
    }
    // Keep the longest suffix that is a proper prefix of some stop string; the rest is final.
    size_t keep = 0;
    for (const auto& s : stops_) {
        for (size_t len = std::min(s.size() - 1, held_.size()); len > keep; --len) {
            if (held_.compare(held_.size() - len, len, s, 0, len) == 0) {
                keep = len;
                break;
            }
        }
    }
    std::string out = held_.substr(0, held_.size() - keep);
    held_.erase(0, held_.size() - keep);
    return out;
}

std::string StopMatcher::flush() { return std::exchange(held_, {}); }

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

Generator::Generator(backend::Backend& backend, const tokenizer::Tokenizer& tokenizer)
    : backend_(backend), tokenizer_(tokenizer) {}

std::vector<TokenId> Generator::prompt_tokens(const GenerateRequest& req) const {
    if (!req.chat) {
        // Special tokens written in the prompt ("<|im_start|>") are parsed, as llama.cpp's CLI does.
        return tokenizer_.encode(req.prompt, /*add_special=*/true, /*parse_special=*/true);
    }
    const auto tmpl = tokenizer::ChatTemplate::for_tokenizer(tokenizer_, req.chat_template_file);
    std::vector<tokenizer::ChatMessage> msgs;
    if (!req.system.empty()) msgs.push_back({"system", req.system});
    msgs.push_back({"user", req.prompt});
    const std::string text = tmpl.apply(msgs, /*add_generation_prompt=*/true);
    // The template writes BOS itself where the model wants it (Phi-3's "<s>"), so none is added here.
    return tokenizer_.encode(text, /*add_special=*/false, /*parse_special=*/true);
}

GenerateResult Generator::generate(backend::Sequence& seq, const GenerateRequest& req,
                                   const std::function<void(std::string_view)>& on_text,
                                   const std::atomic<bool>* cancel) const {
    using clock = std::chrono::steady_clock;
    validate(req.sampling);
    GenerateResult r;
    r.prompt_tokens = prompt_tokens(req);
    if (r.prompt_tokens.empty()) {
        throw Error(ErrorCode::InvalidArgument, "the prompt is empty (no tokens after tokenization)");
    }
    if (r.prompt_tokens.size() + req.max_tokens > seq.n_ctx()) {
        throw Error(ErrorCode::ContextOverflow,
                    fmt::format("prompt of {} tokens + {} tokens to generate exceed the context of {} tokens",
                                r.prompt_tokens.size(), req.max_tokens, seq.n_ctx()));
    }
    Sampler sampler(req.sampling);
    r.seed = sampler.seed();
    const tokenizer::Vocab& vocab = tokenizer_.vocab();
    tokenizer::Detokenizer detok(tokenizer_, tokenizer::DetokenizerOptions{.show_special = req.show_special});
    StopMatcher stops(req.stop);
    std::vector<TokenId> history = r.prompt_tokens;
    auto emit = [&](const std::string& s) {
        if (s.empty()) return;
        r.text += s;
        if (on_text) on_text(s);
    };

    seq.reset();
    const auto t0 = clock::now();
    if (req.max_tokens == 0) return r;
    // After the prompt, every token is picked where the backend keeps the logits, so a GPU backend copies one token
    // per step instead of the whole vocabulary: greedy with no repetition penalty needs only the argmax
    // (decode_greedy); anything else runs the sampler's chain with the sampler's draw (decode_sample). Both follow
    // the host sampler's rules (ties to the lowest id, the same u from the same seed), so the tokens are the same.
    const SamplingParams& sp = req.sampling;
    const bool argmax_only = sp.temperature <= 0.f && (sp.repeat_penalty == 1.f || sp.repeat_last_n == 0);
    // A constrained request masks the logits on the host before the sampler: the matcher follows the bytes
    // generated so far and the masker turns its state into the set of allowed tokens.
    std::optional<grammar::Matcher> matcher;
    const grammar::TokenVocabulary* gvocab = nullptr;
    std::vector<uint64_t> mask;
    std::vector<float> masked;
    if (req.constraint) {
        gvocab = &req.constraint->vocabulary();
        if (gvocab->size() != vocab.size()) {
            throw Error(ErrorCode::InvalidArgument,
                        fmt::format("grammar constraint was built for a vocabulary of {} tokens, the model has {}",
                                    gvocab->size(), vocab.size()));
        }
        matcher.emplace(req.constraint->grammar());
    }
    size_t n_bytes = 0;  // bytes the grammar has matched, for messages
    // The logits come to the host when the grammar masks them, when OpenAI's bias / penalties change them, or when
    // the request wants their log-probabilities; otherwise the backend picks the token where the logits are.
    const bool adjusts = sampler.adjusts_logits();
    const bool host_logits = matcher.has_value() || adjusts || static_cast<bool>(req.on_logprobs);
    std::vector<float> adjusted;
    std::optional<TokenLogprobs> pending_logprobs;  // of the token pick() chose, reported once it is generated
    auto pick = [&](std::span<const float> raw) -> TokenId {
        std::span<const float> lg = raw;
        if (adjusts) {
            adjusted.assign(raw.begin(), raw.end());
            sampler.adjust(adjusted, std::span<const TokenId>(history).subspan(r.prompt_tokens.size()));
            lg = adjusted;
        }
        TokenId t = -1;
        if (!matcher) {
            t = sampler.sample(lg, history);
        } else {
            req.constraint->fill(*matcher, mask);
            masked.assign(lg.begin(), lg.end());
            TokenId best = -1;
            for (size_t i = 0; i < masked.size(); ++i) {
                const bool allowed = i < gvocab->size() && ((mask[i >> 6] >> (i & 63)) & 1);
                if (!allowed) {
                    masked[i] = -std::numeric_limits<float>::infinity();
                } else if (best < 0 || masked[i] > masked[static_cast<size_t>(best)]) {
                    best = static_cast<TokenId>(i);
                }
            }
            if (best < 0) {
                throw Error(ErrorCode::InvalidArgument,
                            fmt::format("grammar: no token of the vocabulary can continue the output after {} bytes",
                                        n_bytes));
            }
            t = sampler.sample(masked, history);
            // The chain never picks a -inf logit except when its draw lands within rounding of 1 past every finite
            // probability; the best allowed token stands in then.
            const auto ut = static_cast<size_t>(t);
            if (!(ut < gvocab->size() && ((mask[ut >> 6] >> (ut & 63)) & 1))) t = best;
        }
        if (req.on_logprobs) pending_logprobs = token_logprobs(lg, t, req.top_logprobs, tokenizer_);
        return t;
    };
    const std::span<const float> logits = seq.prefill(r.prompt_tokens);
    std::optional<TokenId> next;  // the token the backend picked for this step, after the first
    auto t_step = t0;
    for (uint32_t i = 0; i < req.max_tokens; ++i) {
        if (cancel && cancel->load(std::memory_order_relaxed)) {
            r.stop_reason = StopReason::Cancelled;
            break;
        }
        const TokenId tok = next ? *next : pick(logits);
        r.tokens.push_back(tok);
        history.push_back(tok);
        if (i == 0) {
            const auto now = clock::now();
            r.timings.prefill_s = r.timings.ttft_s = std::chrono::duration<double>(now - t0).count();
            t_step = now;
        }
        if (vocab.is_end_of_generation(tok)) {
            r.stop_reason = StopReason::EndOfGeneration;
            r.grammar_complete = matcher.has_value();  // allowed only where the grammar is complete
            break;
        }
        if (pending_logprobs) req.on_logprobs(*std::exchange(pending_logprobs, std::nullopt));
        if (matcher) {
            const std::string_view bytes = gvocab->bytes(tok);
            if (!matcher->advance(bytes)) {
                throw Error(ErrorCode::Internal, fmt::format("grammar: the sampled token {} was not allowed", tok));
            }
            n_bytes += bytes.size();
        }
        emit(stops.push(detok.push(tok)));
        if (stops.stopped()) {
            r.stop_reason = StopReason::StopString;
            break;
        }
        if (matcher && matcher->accepts() && !matcher->can_continue()) {
            // The grammar is complete and allows nothing more: the sequence ends as at an end-of-generation token.
            r.stop_reason = StopReason::EndOfGeneration;
            r.grammar_complete = true;
            break;
        }
        if (i + 1 == req.max_tokens) break;  // no decode for a token nobody will sample from
        if (host_logits) {
            next = pick(seq.decode(tok));
        } else {
            next = argmax_only ? seq.decode_greedy(tok) : seq.decode_sample(tok, sampler.step(history));
        }
    }
    if (!r.tokens.empty()) r.timings.decode_s = std::chrono::duration<double>(clock::now() - t_step).count();
    if (!stops.stopped()) {
        emit(stops.push(detok.finish()));
        if (!stops.stopped()) emit(stops.flush());
    }
    return r;
}

}  // namespace orcd::engine
