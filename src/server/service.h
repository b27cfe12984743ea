#pragma once
// What the HTTP layer needs from inference, and nothing more: a description of the served model, prompt formatting
// and counting (thread-safe), and a continuous batch (engine::BatchEngine's calls) that the scheduler's worker thread
// steps. The HTTP layer and the scheduler are written against this interface so that they contain no inference logic
// and can be tested with a scripted service.
#include <atomic>
#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include <memory>
#include <nlohmann/json.hpp>
#include <vector>

#include "backend/backend.h"
#include "common/error.h"
#include "engine/batch_engine.h"
#include "engine/generator.h"
#include "server/batch_state.h"
#include "tokenizer/chat_template.h"

namespace orcd::grammar {
class TokenVocabulary;
}

namespace orcd::server {

struct ServiceInfo {
    std::string model_id;  // the name clients use (OpenAI "model"): the file name without ".gguf"
    std::string model_path;
    std::string arch;            // general.architecture
    std::string quant_kind;      // "Q8_0", "Q4_K_M" ...
    std::string tokenizer_kind;  // "bpe/qwen2", "spm/llama" ...
    uint32_t vocab_size = 0;
    uint32_t context_length = 0;     // the context this worker serves (-c), <= the model's
    std::string device;              // "cpu" | "cuda"
    uint32_t parallel = 1;           // most sequences running at once (--parallel)
    uint64_t kv_pool_positions = 0;  // positions the whole KV pool holds (a request's prompt + max_tokens must fit);
                                     // 0: no pool limit beyond the context
};

// A request checked and tokenized by prepare(), ready for add(); opaque to the scheduler.
class PreparedJob {
public:
    virtual ~PreparedJob() = default;
};

class InferenceService {
public:
    virtual ~InferenceService() = default;
    virtual const ServiceInfo& info() const = 0;

    // Thread-safe (tokenizer only). The prompt tokens generate() would feed for `request`
    // (engine::Generator::prompt_tokens); a caller that needs them before prepare() stores them in
    // request.prompt_ids, so that prepare() does not tokenize the prompt again. Errors: ChatTemplate.
    virtual std::vector<int32_t> prompt_tokens(const engine::GenerateRequest& request) const = 0;
    // Thread-safe. A conversation through the model's chat template, ready to be used as a plain prompt (the
    // template's own BOS is removed when the tokenizer adds one). Errors: ChatTemplate (no or unknown template).
    virtual std::string format_chat(std::span<const tokenizer::ChatMessage> messages) const = 0;

    // Thread-safe. Checks and tokenizes a request; `on_text` will receive its text from inside step(). Errors (the
    // request is refused at once, never queued): InvalidArgument (sampling, an empty prompt, a request larger than
    // the whole KV pool, naming the limit), ContextOverflow, ChatTemplate.
    virtual std::unique_ptr<PreparedJob> prepare(const engine::GenerateRequest& request,
                                                 std::function<void(std::string_view)> on_text) const = 0;
    // The scheduler's worker thread only, with engine::BatchEngine's meaning: queue a prepared job (its sink reports
    // its start and its one end), run one step, the batch's state.
    virtual void add(std::unique_ptr<PreparedJob> job, engine::RequestSink sink, const std::atomic<bool>* cancel) = 0;
    virtual engine::StepReport step() = 0;
    virtual BatchState batch_state() const = 0;

    // Thread-safe, also while a job runs (the backend's residency check: backend::Backend::residency_problem).
    // nullopt while every weight allocation is where it should be; otherwise what is wrong.
    virtual std::optional<std::string> residency_problem() const = 0;
    // Thread-safe, also while a job runs. The device memory the backend holds now (weights, the KV pool allocated
    // at start, workspace); all zeros on the CPU backend.
    virtual backend::DeviceMemoryReport device_memory() const = 0;

    // --- Structured output, tool calling and the tokenizer endpoints. Thread-safe. The defaults serve services
    // without a tokenizer (scripted test services): constraints and tools are refused, tokenization throws.

    // The model's vocabulary as the grammar engine sees it (engine::grammar_vocabulary, built once); nullptr when
    // the service cannot constrain output.
    virtual std::shared_ptr<const grammar::TokenVocabulary> grammar_vocabulary() const { return nullptr; }
    // The chat template's Jinja text (for choosing the tool-call format); empty when there is none.
    virtual std::string chat_template_text() const { return {}; }
    // format_chat with tool definitions (a JSON array as OpenAI's tools; null: none).
    virtual std::string format_chat_with_tools(std::span<const tokenizer::ChatMessage> messages,
                                               const nlohmann::ordered_json& tools) const {
        if (!tools.is_null()) throw Error(ErrorCode::ChatTemplate, "this worker cannot render tool definitions");
        return format_chat(messages);
    }
    // Text -> token ids (special tokens written in the text are parsed when parse_special) and back.
    // Errors: InvalidArgument for ids outside the vocabulary.
    virtual std::vector<int32_t> tokenize(std::string_view text, bool add_special, bool parse_special) const {
        (void)text, (void)add_special, (void)parse_special;
        throw Error(ErrorCode::Internal, "this worker has no tokenizer");
    }
    virtual std::string detokenize(std::span<const int32_t> ids) const {
        (void)ids;
        throw Error(ErrorCode::Internal, "this worker has no tokenizer");
    }
    // One token's bytes, special tokens written as their text. Errors: InvalidArgument outside the vocabulary.
    virtual std::string token_piece(int32_t id) const {
        (void)id;
        throw Error(ErrorCode::Internal, "this worker has no tokenizer");
    }
};

}  // namespace orcd::server
