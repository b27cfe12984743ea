#pragma once
// The tokenization models behind Tokenizer: each turns a run of plain text (special tokens already split off) into ids
// and an id back into its bytes.
#include <string>
#include <string_view>
#include <vector>

#include "tokenizer/vocab.h"

namespace orcd::tokenizer {

class Model {
public:
    virtual ~Model() = default;
    // Encodes valid UTF-8 text that contains no special tokens. `starts_segment` is true for the first text of the
    // input and for text right after a special token (SentencePiece prefixes such text with "▁").
    virtual void encode(std::string_view text, bool starts_segment, std::vector<TokenId>& out) const = 0;
    // Appends the bytes that a normal, byte or user-defined token stands for.
    virtual void append_bytes(TokenId id, std::string& out) const = 0;
};

}  // namespace orcd::tokenizer
