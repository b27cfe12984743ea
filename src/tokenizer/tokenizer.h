#pragma once
// Text <-> token ids for a model, as its GGUF metadata defines them. A Tokenizer is immutable after construction
// and safe to share between threads.
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "tokenizer/vocab.h"

namespace orcd::gguf {
class File;
}

namespace orcd::tokenizer {

class Model;

enum class Kind {
    ByteLevelBpe,   // tokenizer.ggml.model = "gpt2"
    SentencePiece,  // tokenizer.ggml.model = "llama"
};

class Tokenizer {
public:
    // Chooses the model from tokenizer.ggml.model and tokenizer.ggml.pre. Throws Error(Tokenizer) naming an
    // unsupported model or pre-tokenizer and listing the supported ones.
    explicit Tokenizer(Vocab vocab);
    static Tokenizer from_gguf(const gguf::File& file);

    Tokenizer(Tokenizer&&) noexcept;
    Tokenizer& operator=(Tokenizer&&) noexcept;
    ~Tokenizer();

    // Text -> ids. Invalid UTF-8 is read as if each maximal invalid subpart were U+FFFD.
    //   add_special:   add BOS / EOS where the vocabulary says so (add_bos_token / add_eos_token).
    //   parse_special: control, user-defined and unknown-type tokens written in the text (e.g. "<|im_start|>")
    //                  become their single id; when off they are plain text.
    std::vector<TokenId> encode(std::string_view text, bool add_special = true, bool parse_special = true) const;

    // Ids -> text. Special (control/unknown/unused) tokens are written as their text when show_special, skipped
    // otherwise. Invalid UTF-8 produced by the bytes becomes U+FFFD. For SentencePiece, the space that encoding
    // prepends is removed from the start, so that decode(encode(s)) == s.
    std::string decode(std::span<const TokenId> ids, bool show_special = false) const;

    // The raw bytes of one token (possibly an incomplete UTF-8 sequence); empty for a hidden special token.
    void append_piece(TokenId id, bool show_special, std::string& out) const;
    // True for tokens that are hidden unless show_special (control, unknown, unused).
    bool is_special(TokenId id) const;

    const Vocab& vocab() const { return *vocab_; }
    Kind kind() const { return kind_; }
    // "bpe/qwen2", "bpe/gpt-2", "spm/llama": for /health and messages.
    const std::string& kind_name() const { return kind_name_; }
    size_t size() const { return vocab_->size(); }

private:
    void split_special(std::string_view text, std::vector<std::pair<std::string_view, TokenId>>& parts) const;

    std::unique_ptr<const Vocab> vocab_;  // on the heap so that the model's reference survives moves
    std::unique_ptr<const Model> model_;
    Kind kind_ = Kind::ByteLevelBpe;
    std::string kind_name_;
    // Special tokens that may be written in text, grouped by first byte, longest first (leftmost-longest matching).
    std::vector<std::vector<TokenId>> special_by_first_byte_;
};

}  // namespace orcd::tokenizer
