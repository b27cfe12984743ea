#include "server/engine_service.h"

#include <fmt/format.h>

#include <fstream>
#include <iterator>
#include <new>

#include "common/error.h"
#include "engine/grammar_constraint.h"
#include "gguf/file_type.h"
#include "model/model.h"

namespace orcd::server {

EngineService::EngineService(const EngineServiceOptions& o) {
    model::Model model = model::open_model(o.model_path);
    tokenizer_ = std::make_unique<tokenizer::Tokenizer>(tokenizer::Tokenizer::from_gguf(*model.file));

    chat_template_ = o.chat_template_file;
    // An unreadable or unparsable template file is an argument error: report it now, not on the first chat request.
    if (!chat_template_.empty()) tokenizer::ChatTemplate::for_tokenizer(*tokenizer_, chat_template_);

    const uint32_t model_ctx = model.config.context_length;
    uint32_t n_ctx = o.n_ctx == 0 ? std::min(model_ctx, kDefaultContext) : o.n_ctx;
    if (n_ctx > model_ctx) {
        throw Error(ErrorCode::InvalidArgument,
                    fmt::format("-c {}: the context exceeds the model's context length of {} tokens ({})", n_ctx,
                                model_ctx, o.model_path.string()));
    }

    info_.model_id = o.alias.empty() ? o.model_path.stem().string() : o.alias;
    info_.model_path = o.model_path.string();
    info_.arch = model.config.arch_name;
    info_.quant_kind = gguf::type_mix(*model.file).kind();
    info_.tokenizer_kind = tokenizer_->kind_name();
    info_.vocab_size = static_cast<uint32_t>(tokenizer_->size());
    info_.context_length = n_ctx;
    info_.device = std::string(engine::device_name(o.device));

    engine::BackendOptions bo;
    bo.n_threads = o.n_threads;
    bo.gpu = o.gpu;
    bo.load_progress = o.load_progress;
    backend_ = engine::create_backend(o.device, std::move(model), bo);
    if (o.wrap_backend_for_test) backend_ = o.wrap_backend_for_test(std::move(backend_));
    generator_ = std::make_unique<engine::Generator>(*backend_, *tokenizer_);

    engine::BatchEngineOptions bo2;
    bo2.parallel = o.parallel == 0 ? default_parallel(o.device) : o.parallel;
    bo2.max_batch_tokens = o.max_batch_tokens;
    bo2.n_ctx = n_ctx;
    bo2.page_size = o.kv_page_size;
    bo2.prefix_caching = o.prefix_cache;
    // The cache type `orcd generate` uses (SequenceOptions' default), so the server's outputs equal its outputs.
    bo2.kv_type = backend::SequenceOptions{}.kv_type;
    if (o.kv_page_size == 0) throw Error(ErrorCode::InvalidArgument, "--kv-page-size must be at least 1");
    const uint64_t page_bytes = backend_->kv_page_bytes(o.kv_page_size, bo2.kv_type);
    if (o.kv_memory == 0) {
        bo2.num_pages = bo2.parallel * ((n_ctx + o.kv_page_size - 1) / o.kv_page_size);
    } else {
        const uint64_t pages = o.kv_memory / page_bytes;
        const uint64_t one_context = (n_ctx + o.kv_page_size - 1) / o.kv_page_size;
        if (pages == 0 || pages > UINT32_MAX) {
            throw Error(ErrorCode::InvalidArgument,
                        fmt::format("--kv-memory {} bytes holds {} pages of {} bytes ({} positions each); expected "
                                    "at least 1 (one full context needs {} pages)",
                                    o.kv_memory, pages, page_bytes, o.kv_page_size, one_context));
        }
        bo2.num_pages = static_cast<uint32_t>(pages);
    }
    info_.parallel = bo2.parallel;
    info_.kv_pool_positions = uint64_t{bo2.num_pages} * bo2.page_size;
    try {
        engine_ = std::make_unique<engine::BatchEngine>(*backend_, *tokenizer_, bo2);
    } catch (const std::bad_alloc&) {
        throw Error(ErrorCode::DeviceAlloc,
                    fmt::format("allocating the KV pool of {} pages ({} bytes) on {} failed: out of memory",
                                bo2.num_pages, uint64_t{bo2.num_pages} * page_bytes, info_.device));
    }
}

uint32_t default_parallel(engine::Device device) { return device == engine::Device::Cpu ? 4 : 16; }

EngineService::~EngineService() {
    // Free in dependency order: the KV pool before the backend that made it.
    engine_.reset();
    generator_.reset();
    backend_.reset();
}

std::vector<int32_t> EngineService::prompt_tokens(const engine::GenerateRequest& request) const {
    return generator_->prompt_tokens(request);
}

std::string EngineService::format_chat(std::span<const tokenizer::ChatMessage> messages) const {
    const auto tmpl = tokenizer::ChatTemplate::for_tokenizer(*tokenizer_, chat_template_);
    return strip_template_bos(tmpl.apply(messages, /*add_generation_prompt=*/true));
}

std::string EngineService::strip_template_bos(std::string text) const {
    // The result is used as a plain prompt, which the tokenizer encodes with the vocabulary's BOS; a template that
    // writes BOS itself (Phi-3's "<s>") would otherwise start the prompt with two.
    const tokenizer::Vocab& v = tokenizer_->vocab();
    if (v.add_bos && v.valid(v.bos)) {
        const std::string_view bos = v.text(v.bos);
        if (!bos.empty() && std::string_view(text).starts_with(bos)) text.erase(0, bos.size());
    }
    return text;
}

namespace {
struct EngineJob final : PreparedJob {
    std::unique_ptr<engine::Generation> generation;
};
}  // namespace

std::unique_ptr<PreparedJob> EngineService::prepare(const engine::GenerateRequest& request,
                                                    std::function<void(std::string_view)> on_text) const {
    auto job = std::make_unique<EngineJob>();
    job->generation = engine_->prepare(request, std::move(on_text));
    return job;
}

void EngineService::add(std::unique_ptr<PreparedJob> job, engine::RequestSink sink, const std::atomic<bool>* cancel) {
    auto& j = dynamic_cast<EngineJob&>(*job);
    engine_->add(std::move(j.generation), std::move(sink), cancel);
}

BatchState EngineService::batch_state() const {
    BatchState s;
    s.running = static_cast<uint32_t>(engine_->running());
    s.waiting = static_cast<uint32_t>(engine_->waiting());
    s.kv_page_size = engine_->pool().page_size();
    s.kv_pool_bytes = engine_->pool().bytes();
    s.kv = engine_->kv_stats();
    return s;
}

std::optional<std::string> EngineService::residency_problem() const { return backend_->residency_problem(); }

backend::DeviceMemoryReport EngineService::device_memory() const { return backend_->device_memory(); }

// --- Structured output, tool calling and the tokenizer endpoints --------------------------------------------------

std::shared_ptr<const grammar::TokenVocabulary> EngineService::grammar_vocabulary() const {
    std::call_once(grammar_vocab_once_, [&] { grammar_vocab_ = engine::grammar_vocabulary(*tokenizer_); });
    return grammar_vocab_;
}

std::string EngineService::chat_template_text() const {
    if (chat_template_.empty()) return tokenizer_->vocab().chat_template();
    std::ifstream in(chat_template_, std::ios::binary);
    return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

std::string EngineService::format_chat_with_tools(std::span<const tokenizer::ChatMessage> messages,
                                                  const nlohmann::ordered_json& tools) const {
    if (tools.is_null()) return format_chat(messages);
    const auto tmpl = tokenizer::ChatTemplate::for_tokenizer(*tokenizer_, chat_template_);
    return strip_template_bos(tmpl.apply(messages, /*add_generation_prompt=*/true, tools));
}

std::vector<int32_t> EngineService::tokenize(std::string_view text, bool add_special, bool parse_special) const {
    return tokenizer_->encode(text, add_special, parse_special);
}

std::string EngineService::detokenize(std::span<const int32_t> ids) const {
    for (int32_t id : ids) token_piece_check(id);
    return tokenizer_->decode(ids);
}

std::string EngineService::token_piece(int32_t id) const {
    token_piece_check(id);
    std::string out;
    tokenizer_->append_piece(id, /*show_special=*/true, out);
    return out;
}

void EngineService::token_piece_check(int32_t id) const {
    if (id < 0 || static_cast<size_t>(id) >= tokenizer_->size()) {
        throw Error(ErrorCode::InvalidArgument,
                    fmt::format("token id {} is outside the vocabulary of {} tokens", id, tokenizer_->size()));
    }
}

}  // namespace orcd::server
