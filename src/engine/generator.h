#pragma once
// The generation loop: prompt (optionally through the model's chat template) -> tokens -> prefill -> sample/decode
// until max tokens, an end-of-generation token, a stop string or cancellation. Text is streamed through the UTF-8-safe
// detokenizer; stop strings are matched on the text across token boundaries and never emitted (text that could be the
// start of a stop string is held back until it is known not to be).
#include <atomic>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "backend/backend.h"
#include "engine/sampler.h"
#include "grammar/token_mask.h"
#include "tokenizer/tokenizer.h"

namespace orcd::engine {

enum class StopReason { MaxTokens, EndOfGeneration, StopString, Cancelled };
std::string_view stop_reason_name(StopReason r);  // "length", "eos", "stop", "cancelled"

inline constexpr uint32_t kMaxTopLogprobs = 20;

// One generated token's log-probabilities: log-softmax of the step's logits after the logit bias and the presence /
// frequency penalties, before the grammar mask, top-k/top-p/min-p and temperature (the model's distribution as the
// request shaped it, as OpenAI reports it). Token texts are the tokens' bytes, which may split a UTF-8 character.
struct TokenLogprobs {
    struct Entry {
        TokenId id = 0;
        std::string text;
        float logprob = 0;
    };
    Entry chosen;
    std::vector<Entry> top;  // most likely first, ties by id
};

struct GenerateRequest {
    std::string prompt;
    // The prompt already tokenized (Generator::prompt_tokens of this request): when non-empty it is used as is and
    // `prompt`, `chat`, `system` and `chat_template_file` are not read again, so a caller that had to count the
    // prompt's tokens (the OpenAI API's context check) does not make the engine tokenize it a second time, and the
    // n choices of one request share one tokenization.
    std::vector<TokenId> prompt_ids;
    bool chat = false;               // format {system?, user: prompt} with the model's chat template
    std::string system;              // system message (chat only; empty = none)
    std::string chat_template_file;  // chat only: a Jinja template file instead of the model's template
    uint32_t max_tokens = 128;
    SamplingParams sampling;
    std::vector<std::string> stop;  // stop strings (empty strings are ignored)
    // Grammar-constrained output when set (built for this tokenizer: grammar_constraint.h). Each step's logits come
    // to the host (Sequence::decode), tokens the grammar does not allow next get -inf before the sampler, and
    // generation ends once the grammar is complete and allows nothing more (or on an end-of-generation token, which
    // is allowed only where the grammar is complete). Unconstrained requests keep the backend's sampling path.
    std::shared_ptr<grammar::TokenMasker> constraint;
    // Log probabilities (OpenAI's logprobs): when set, called once per generated token (not for an end-of-generation
    // token) with its log-probability and the `top_logprobs` most likely alternatives. A request that asks for them
    // takes the host-logits path, as constrained ones do.
    std::function<void(const TokenLogprobs&)> on_logprobs;
    uint32_t top_logprobs = 0;  // at most kMaxTopLogprobs
    // Write control tokens into the text instead of skipping them (tool-call markers such as [TOOL_CALLS] and
    // <|python_tag|> are control tokens in their vocabularies).
    bool show_special = false;
};

struct Timings {
    double prefill_s = 0;  // prefill of the prompt, including sampling the first token
    double decode_s = 0;   // every decode step after the first token
    double ttft_s = 0;     // from the start of prefill to the first generated token
    double prefill_tokens_per_s(size_t n_prompt) const { return prefill_s > 0 ? n_prompt / prefill_s : 0; }
    double decode_tokens_per_s(size_t n_gen) const {
        return decode_s > 0 && n_gen > 1 ? static_cast<double>(n_gen - 1) / decode_s : 0;
    }
};

struct GenerateResult {
    std::vector<TokenId> prompt_tokens;
    std::vector<TokenId> tokens;  // generated ids, including the one that ended generation (EOS, or the token that
                                  // completed a stop string); excluded on cancellation before sampling
    std::string text;             // the emitted text (without stop strings)
    uint64_t seed = 0;
    StopReason stop_reason = StopReason::MaxTokens;
    bool grammar_complete = false;  // constrained: the output is a complete sentence of the grammar
    Timings timings;
};

class Generator {
public:
    // The tokenizer must be the model's; both must outlive the Generator.
    Generator(backend::Backend& backend, const tokenizer::Tokenizer& tokenizer);

    // The prompt tokens generate() would use: request.prompt_ids when set, else the prompt tokenized (chat template
    // applied when asked). Errors: ChatTemplate.
    std::vector<TokenId> prompt_tokens(const GenerateRequest& request) const;

    // Runs one request on `sequence` (reset first). `on_text` receives each piece of text as it becomes final.
    // `cancel` is read before every step; when set, generation stops with StopReason::Cancelled.
    // Errors: ContextOverflow (prompt + max_tokens beyond the sequence's context) before any computation;
    // InvalidArgument (sampling parameters, empty prompt); backend errors.
    GenerateResult generate(backend::Sequence& sequence, const GenerateRequest& request,
                            const std::function<void(std::string_view)>& on_text = {},
                            const std::atomic<bool>* cancel = nullptr) const;

private:
    backend::Backend& backend_;
    const tokenizer::Tokenizer& tokenizer_;
};

// Holds back streamed text that might be the start of a stop string. Exposed for tests.
class StopMatcher {
public:
    explicit StopMatcher(std::vector<std::string> stops);
    // Adds text; returns the part that is now final. Sets stopped() when a stop string completed (the text before it
    // is returned, the stop string and anything after it dropped).
    std::string push(std::string_view text);
    // The held-back text (at the end of generation, when no stop string completed).
    std::string flush();
    bool stopped() const { return stopped_; }

private:
    std::vector<std::string> stops_;
    std::string held_;
    bool stopped_ = false;
};

}  // namespace orcd::engine
