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
    // How encode walks the text: as one sequence of merges (SentencePiece's definition), or word by word where the
    // vocabulary makes that give the same tokens (see encode). Tests compare the two.
    enum class Walk { WholeText, WordByWordWhereExact };

    // Throws Error(Tokenizer) when the vocabulary lacks a <0xXX> byte token.
    explicit SpmModel(const Vocab& vocab, Walk walk = Walk::WordByWordWhereExact);

    void encode(std::string_view text, bool starts_segment, std::vector<TokenId>& out) const override;
    void append_bytes(TokenId id, std::string& out) const override;

    // Whether encode splits the text into words first (with WordByWordWhereExact, for the vocabularies of Llama 2 and
    // Phi-3: no token of theirs holds another character followed by "▁").
    bool encodes_word_by_word() const { return words_merge_apart_; }

private:
    struct Scratch;
    // The merges of text[begin, end) (spaces already escaped), appended to out.
    void encode_escaped(std::string_view text, size_t begin, size_t end, Scratch& scratch,
                        std::vector<TokenId>& out) const;

    const Vocab& vocab_;
    bool words_merge_apart_ = false;
    TokenId byte_token_[256];
    std::vector<std::string> decoded_;  // token id -> bytes ("▁" -> ' ', <0xXX> -> the byte)
};

}  // namespace orcd::tokenizer
