#include "engine/generator.h"

#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <limits>
#include <optional>
#include <utility>

#include "common/error.h"
#include "engine/generation.h"
#include "tokenizer/chat_template.h"

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

Generator::Generator(backend::Backend& backend, const tokenizer::Tokenizer& tokenizer)
    : backend_(backend), tokenizer_(tokenizer) {}

std::vector<TokenId> Generator::prompt_tokens(const GenerateRequest& req) const {
    if (!req.prompt_ids.empty()) return req.prompt_ids;
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
    validate(req.sampling);
    std::vector<TokenId> prompt = prompt_tokens(req);
    if (prompt.empty()) {
        throw Error(ErrorCode::InvalidArgument, "the prompt is empty (no tokens after tokenization)");
    }
    if (prompt.size() + req.max_tokens > seq.n_ctx()) {
        throw Error(ErrorCode::ContextOverflow,
                    fmt::format("prompt of {} tokens + {} tokens to generate exceed the context of {} tokens",
                                prompt.size(), req.max_tokens, seq.n_ctx()));
    }
    Generation gen(tokenizer_, req, std::move(prompt), on_text);
    seq.reset();
    // The batch-of-one case of what BatchEngine does: the same feeds in the same order, through the Sequence calls
    // (the whole prompt in one prefill, which splits it at the same chunk boundaries as the batched path).
    while (!gen.done()) {
        const Generation::Feed feed = gen.next(/*chunk=*/0);
        const backend::BatchEntry e = gen.entry(feed);
        backend::BatchResult res;
        if (feed.phase == backend::Phase::Prompt) {
            res.logits = seq.prefill(e.tokens);
        } else if (e.tokens.size() != 1) {
            throw Error(ErrorCode::Internal, "Generator: a replay of generated tokens outside a scheduler");
        } else if (e.allowed_later) {
            const backend::SampleStep* sample = e.want == backend::Want::Sample ? &e.sample : nullptr;
            res.token = seq.decode_masked(e.tokens[0], sample, *e.allowed_later);
        } else if (e.want == backend::Want::Argmax) {
            res.token = seq.decode_greedy(e.tokens[0]);
        } else if (e.want == backend::Want::Sample) {
            res.token = seq.decode_sample(e.tokens[0], e.sample);
        } else {
            res.logits = seq.decode(e.tokens[0]);
        }
        // Read after every step, before its token is used: a cancelled generation drops the step's pick.
        if (cancel && cancel->load(std::memory_order_relaxed)) {
            gen.cancel();
            break;
        }
        gen.accept(feed, res);
    }
    return gen.finish();
}

}  // namespace orcd::engine
