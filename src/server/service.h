#pragma once
// What the HTTP layer needs from inference, and nothing more: a description of the served model, prompt formatting
// and counting (thread-safe), and generate() for one job at a time. The HTTP layer and the scheduler are written
// against this interface so that they contain no inference logic and can be tested with a scripted service.
#include <atomic>
#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "backend/backend.h"
#include "engine/generator.h"
#include "tokenizer/chat_template.h"

namespace orcd::server {

struct ServiceInfo {
    std::string model_id;  // the name clients use (OpenAI "model"): the file name without ".gguf"
    std::string model_path;
    std::string arch;            // general.architecture
    std::string quant_kind;      // "Q8_0", "Q4_K_M" ...
    std::string tokenizer_kind;  // "bpe/qwen2", "spm/llama" ...
    uint32_t vocab_size = 0;
    uint32_t context_length = 0;  // the context this worker serves (-c), <= the model's
    std::string device;           // "cpu" | "cuda"
};

class InferenceService {
public:
    virtual ~InferenceService() = default;
    virtual const ServiceInfo& info() const = 0;

    // Thread-safe (tokenizer only). The number of prompt tokens generate() would feed for `request`.
    // Errors: ChatTemplate.
    virtual size_t count_prompt_tokens(const engine::GenerateRequest& request) const = 0;
    // Thread-safe. A conversation through the model's chat template, ready to be used as a plain prompt (the
    // template's own BOS is removed when the tokenizer adds one). Errors: ChatTemplate (no or unknown template).
    virtual std::string format_chat(std::span<const tokenizer::ChatMessage> messages) const = 0;

    // One job at a time (the scheduler's worker thread). Errors: those of engine::Generator::generate, and
    // DeviceAlloc when the sequence's KV cache cannot be allocated (the job fails; the next one tries again).
    virtual engine::GenerateResult generate(const engine::GenerateRequest& request,
                                            const std::function<void(std::string_view)>& on_text,
                                            const std::atomic<bool>* cancel) = 0;

    // Thread-safe, also while a job runs (the backend's residency check: backend::Backend::residency_problem).
    // nullopt while every weight allocation is where it should be; otherwise what is wrong.
    virtual std::optional<std::string> residency_problem() const = 0;
    // Thread-safe, also while a job runs. The device memory the backend holds now (weights, the KV cache once the
    // first job allocated it, workspace); all zeros on the CPU backend.
    virtual backend::DeviceMemoryReport device_memory() const = 0;
};

}  // namespace orcd::server
