#pragma once
// InferenceService over the real engine: model file -> backend (cpu | cuda) + tokenizer + engine::BatchEngine, whose
// KV pool is allocated once at start and shared by every job.
#include <filesystem>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "engine/create_backend.h"
#include "server/service.h"
#include "tokenizer/tokenizer.h"

namespace orcd::server {

struct EngineServiceOptions {
    std::filesystem::path model_path;
    engine::Device device = engine::Device::Cpu;
    uint32_t n_ctx = 0;                // 0: min(the model's context length, kDefaultContext)
    unsigned n_threads = 0;            // CPU threads (0: all cores)
    std::string chat_template_file;    // a Jinja chat template file instead of the model's; empty: the model's
    std::string alias;                 // the model's id for clients (--alias); empty: the file name without .gguf
    int gpu = 0;                       // CUDA device ordinal (--gpu)
    uint32_t parallel = 0;             // most sequences running at once (--parallel); 0: default_parallel(device)
    uint64_t kv_memory = 0;            // bytes of the KV pool (--kv-memory); 0: room for `parallel` full contexts
    uint32_t kv_page_size = 16;        // positions per KV page (--kv-page-size)
    bool prefix_cache = true;          // --no-prefix-cache: false
    uint32_t max_batch_tokens = 512;   // tokens per step (--max-batch-tokens)
    loader::ProgressFn load_progress;  // the weights' upload to the GPU (engine::BackendOptions::load_progress)
    // Test seam, for tests only: wraps the backend once it is created (tests substitute its residency check and
    // memory report to drive /health and /metrics without a GPU). Empty in production.
    std::function<std::unique_ptr<backend::Backend>(std::unique_ptr<backend::Backend>)> wrap_backend_for_test;
};

// Default served context when -c is not given: the reference models declare 32k-128k, whose KV cache would dwarf a
// small model's weights; 4096 is llama.cpp's long-standing default.
inline constexpr uint32_t kDefaultContext = 4096;

// --parallel's default: 16 sequences on a GPU (llama-server's -np 16 in the comparison; a decode step of 16
// reads the weights once for 16 tokens), 4 on the CPU (2-8 cores: beyond a few sequences a CPU step is compute-bound
// and each user's tokens/s only drops).
uint32_t default_parallel(engine::Device device);

class EngineService final : public InferenceService {
public:
    // Opens, validates and loads the model. Errors: every model::open_model / tokenizer / create_backend error, and
    // InvalidArgument when n_ctx exceeds the model's context length.
    explicit EngineService(const EngineServiceOptions& options);
    ~EngineService() override;

    const ServiceInfo& info() const override { return info_; }
    std::vector<int32_t> prompt_tokens(const engine::GenerateRequest& request) const override;
    std::string format_chat(std::span<const tokenizer::ChatMessage> messages) const override;
    std::unique_ptr<PreparedJob> prepare(const engine::GenerateRequest& request,
                                         std::function<void(std::string_view)> on_text) const override;
    void add(std::unique_ptr<PreparedJob> job, engine::RequestSink sink, const std::atomic<bool>* cancel) override;
    engine::StepReport step() override { return engine_->step(); }
    BatchState batch_state() const override;
    std::optional<std::string> residency_problem() const override;
    backend::DeviceMemoryReport device_memory() const override;

    // Structured output, tool calling and the tokenizer endpoints.
    std::shared_ptr<const grammar::TokenVocabulary> grammar_vocabulary() const override;
    std::string chat_template_text() const override;
    std::string format_chat_with_tools(std::span<const tokenizer::ChatMessage> messages,
                                       const nlohmann::ordered_json& tools) const override;
    std::vector<int32_t> tokenize(std::string_view text, bool add_special, bool parse_special) const override;
    std::string detokenize(std::span<const int32_t> ids) const override;
    std::string token_piece(int32_t id) const override;

private:
    std::string strip_template_bos(std::string text) const;
    void token_piece_check(int32_t id) const;

    ServiceInfo info_;
    std::unique_ptr<tokenizer::Tokenizer> tokenizer_;
    std::unique_ptr<backend::Backend> backend_;
    std::unique_ptr<engine::Generator> generator_;
    std::unique_ptr<engine::BatchEngine> engine_;
    std::string chat_template_;
    // Built at the first constrained request and kept (one vocabulary-sized table).
    mutable std::once_flag grammar_vocab_once_;
    mutable std::shared_ptr<const grammar::TokenVocabulary> grammar_vocab_;
};

}  // namespace orcd::server
