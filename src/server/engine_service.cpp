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
    backend_ = engine::create_backend(o.device, std::move(model), bo);
    if (o.wrap_backend_for_test) backend_ = o.wrap_backend_for_test(std::move(backend_));
    generator_ = std::make_unique<engine::Generator>(*backend_, *tokenizer_);
}

EngineService::~EngineService() {
    // Free in dependency order: the sequence's cache before the backend that made it.
    sequence_.reset();
    generator_.reset();
    backend_.reset();
}

size_t EngineService::count_prompt_tokens(const engine::GenerateRequest& request) const {
    return generator_->prompt_tokens(request).size();
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

engine::GenerateResult EngineService::generate(const engine::GenerateRequest& request,
                                               const std::function<void(std::string_view)>& on_text,
                                               const std::atomic<bool>* cancel) {
    if (!sequence_) {
        backend::SequenceOptions so;
        so.n_ctx = info_.context_length;
        try {
            sequence_ = backend_->new_sequence(so);
        } catch (const std::bad_alloc&) {
            throw Error(ErrorCode::DeviceAlloc,
                        fmt::format("allocating the KV cache for {} tokens on {} failed: out of memory",
                                    info_.context_length, info_.device));
        }
    }
    return generator_->generate(*sequence_, request, on_text, cancel);
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
