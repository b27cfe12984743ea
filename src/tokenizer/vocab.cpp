#include "tokenizer/vocab.h"

#include <algorithm>

#include <fmt/format.h>

#include "common/error.h"
#include "gguf/file.h"

namespace orcd::tokenizer {

namespace {

Error vocab_error(const std::string& where, const std::string& what) {
    return Error(ErrorCode::Tokenizer, fmt::format("{}: {}", where, what));
}

TokenId read_id(const gguf::File& file, std::string_view key, size_t n_tokens) {
    const auto v = file.get_int_opt(key);
    if (!v) return kNoToken;
    // A negative id is how some converters write "none".
    if (*v < 0) return kNoToken;
    if (static_cast<uint64_t>(*v) >= n_tokens) {
        throw vocab_error(file.path(), fmt::format("metadata key '{}' is {}, expected a token id below the "
                                                   "vocabulary size {}",
                                                   key, *v, n_tokens));
    }
    return static_cast<TokenId>(*v);
}

}  // namespace

Vocab Vocab::from_gguf(const gguf::File& file) {
    Vocab v;
    v.model_ = std::string(file.get_string("tokenizer.ggml.model"));
    v.pre_ = std::string(file.get_string_opt("tokenizer.ggml.pre").value_or("default"));

    const gguf::Array& tokens = file.get_array("tokenizer.ggml.tokens");
    if (tokens.elem_type != gguf::ValueType::String) {
        throw Error(ErrorCode::MetadataType, fmt::format("{}: metadata key 'tokenizer.ggml.tokens' must be an array "
                                                         "of strings",
                                                         file.path()));
    }
    const size_t n = tokens.strings.size();
    if (n == 0) throw vocab_error(file.path(), "'tokenizer.ggml.tokens' is empty, expected at least one token");
    if (n > static_cast<size_t>(INT32_MAX)) throw vocab_error(file.path(), fmt::format("{} tokens is too many", n));
    v.texts_.reserve(n);
    for (std::string_view s : tokens.strings) v.texts_.emplace_back(s);

    if (const gguf::Array* scores = file.get_array_opt("tokenizer.ggml.scores")) {
        v.scores_ = scores->to_floats();
        if (v.scores_.size() != n) {
            throw vocab_error(file.path(), fmt::format("'tokenizer.ggml.scores' has {} entries, expected {} (one per "
                                                       "token)",
                                                       v.scores_.size(), n));
        }
    }
    if (const gguf::Array* types = file.get_array_opt("tokenizer.ggml.token_type")) {
        const std::vector<int32_t> raw = types->to_i32();
        if (raw.size() != n) {
            throw vocab_error(file.path(), fmt::format("'tokenizer.ggml.token_type' has {} entries, expected {} (one "
                                                       "per token)",
                                                       raw.size(), n));
        }
        v.types_.reserve(n);
        for (size_t i = 0; i < n; ++i) {
            if (raw[i] < 0 || raw[i] > 6) {
                throw vocab_error(file.path(),
                                  fmt::format("'tokenizer.ggml.token_type'[{}] is {}, expected 0..6", i, raw[i]));
            }
            v.types_.push_back(static_cast<TokenType>(raw[i]));
        }
    }
    if (const gguf::Array* merges = file.get_array_opt("tokenizer.ggml.merges")) {
        if (merges->elem_type != gguf::ValueType::String) {
            throw Error(ErrorCode::MetadataType, fmt::format("{}: metadata key 'tokenizer.ggml.merges' must be an "
                                                             "array of strings",
                                                             file.path()));
        }
        v.merges_.reserve(merges->strings.size());
        for (std::string_view s : merges->strings) v.merges_.emplace_back(s);
    }
    v.chat_template_ = std::string(file.get_string_opt("tokenizer.chat_template").value_or(""));

    v.bos = read_id(file, "tokenizer.ggml.bos_token_id", n);
    v.eos = read_id(file, "tokenizer.ggml.eos_token_id", n);
    v.eot = read_id(file, "tokenizer.ggml.eot_token_id", n);
    v.pad = read_id(file, "tokenizer.ggml.padding_token_id", n);
    v.unk = read_id(file, "tokenizer.ggml.unknown_token_id", n);
    // SentencePiece models add BOS unless told otherwise; byte-level BPE models do not (llama.cpp's defaults).
    const bool spm = v.model_ == "llama";
    v.add_bos = file.get_bool_opt("tokenizer.ggml.add_bos_token").value_or(spm);
    v.add_eos = file.get_bool_opt("tokenizer.ggml.add_eos_token").value_or(false);
    v.add_space_prefix = file.get_bool_opt("tokenizer.ggml.add_space_prefix").value_or(spm);
    if (v.add_bos && v.bos == kNoToken) {
        throw vocab_error(file.path(),
                          "'tokenizer.ggml.add_bos_token' is true but there is no "
                          "'tokenizer.ggml.bos_token_id'");
    }
    if (v.add_eos && v.eos == kNoToken) {
        throw vocab_error(file.path(),
                          "'tokenizer.ggml.add_eos_token' is true but there is no "
                          "'tokenizer.ggml.eos_token_id'");
    }
    v.index();
    return v;
}

Vocab Vocab::from_parts(std::string model, std::string pre, std::vector<std::string> tokens, std::vector<float> scores,
                        std::vector<TokenType> types, std::vector<std::string> merges) {
    if (!scores.empty() && scores.size() != tokens.size()) {
        throw vocab_error("vocabulary", fmt::format("{} scores for {} tokens", scores.size(), tokens.size()));
    }
    if (!types.empty() && types.size() != tokens.size()) {
        throw vocab_error("vocabulary", fmt::format("{} token types for {} tokens", types.size(), tokens.size()));
    }
    Vocab v;
    v.model_ = std::move(model);
    v.pre_ = std::move(pre);
    v.texts_ = std::move(tokens);
    v.scores_ = std::move(scores);
    v.types_ = std::move(types);
    v.merges_ = std::move(merges);
    v.add_bos = v.model_ == "llama";
    v.add_space_prefix = v.model_ == "llama";
    v.index();
    if (v.add_bos) v.bos = v.find("<s>");
    if (v.add_bos && v.bos == kNoToken) v.add_bos = false;
    return v;
}

TokenId Vocab::find(std::string_view text) const { return by_text_.find(text); }

bool Vocab::is_end_of_generation(TokenId id) const {
    return std::find(end_of_generation.begin(), end_of_generation.end(), id) != end_of_generation.end();
}

void Vocab::index() {
    by_text_ = TextIndex(texts_);
    // Chat models end a turn with a marker that is often not the eos of the metadata (Phi-3: eos <|endoftext|>, turns
    // end with <|end|>). These are the markers the supported chat formats use.
    static constexpr std::string_view kTurnEnds[] = {"<|im_end|>", "<|end|>", "<|eot_id|>", "<end_of_turn>"};
    if (eot == kNoToken) {
        for (std::string_view t : kTurnEnds) {
            const TokenId id = find(t);
            if (id != kNoToken && type(id) == TokenType::Control) {
                eot = id;
                break;
            }
        }
    }
    if (eot == kNoToken) eot = eos;
    end_of_generation.clear();
    for (TokenId id : {eos, eot}) {
        if (id != kNoToken && !is_end_of_generation(id)) end_of_generation.push_back(id);
    }
    // <|endoftext|> also ends generation where it is a control token (Qwen lists it beside <|im_end|>).
    static constexpr std::string_view kAlsoEnd[] = {"<|im_end|>", "<|end|>", "<|eot_id|>", "<end_of_turn>",
                                                    "<|endoftext|>"};
    for (std::string_view t : kAlsoEnd) {
        const TokenId id = find(t);
        if (id != kNoToken && type(id) == TokenType::Control && !is_end_of_generation(id)) {
            end_of_generation.push_back(id);
        }
    }
}

}  // namespace orcd::tokenizer
