#pragma once
// SentencePiece BPE as Llama 2 and Phi-3 use it (tokenizer.ggml.model = "llama"): spaces become "▁", a "▁" is
// prepended to text that starts the input or follows a special token, then adjacent symbols are merged greedily by
// the score of the token they form; characters that no token covers fall back to their <0xXX> byte tokens.
#include <string>
#include <string_view>
#include <vector>

#include "tokenizer/model.h"

namespace orcd::tokenizer {

class SpmModel final : public Model {
public:
    // Throws Error(Tokenizer) when the vocabulary lacks a <0xXX> byte token.
    explicit SpmModel(const Vocab& vocab);

    void encode(std::string_view text, bool starts_segment, std::vector<TokenId>& out) const override;
    void append_bytes(TokenId id, std::string& out) const override;

private:
    const Vocab& vocab_;
    TokenId byte_token_[256];
    std::vector<std::string> decoded_;  // token id -> bytes ("▁" -> ' ', <0xXX> -> the byte)
};

}  // namespace orcd::tokenizer
