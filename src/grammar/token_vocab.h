#pragma once
// A tokenizer's vocabulary as the grammar engine sees it: each token's bytes (what it appends to the output), whether
// it ends generation, or whether it may never appear in constrained output (control tokens, tokens with no bytes).
// The tokens with bytes are arranged in a byte trie, stored in preorder, so that a walk over the vocabulary advances
// the automaton once per shared prefix instead of once per token.
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace orcd::grammar {

using TokenId = int32_t;

enum class TokenClass : uint8_t {
    Bytes,  // allowed where the grammar accepts its bytes
    End,    // ends generation: allowed where the grammar is complete
    Never,  // control tokens and tokens without bytes
};

class TokenVocabulary {
public:
    // `bytes[i]` is token i's byte string (ignored unless classes[i] is Bytes). Throws InvalidArgument when the sizes
    // differ.
    TokenVocabulary(std::vector<std::string> bytes, std::vector<TokenClass> classes);

    size_t size() const { return classes_.size(); }
    TokenClass token_class(TokenId t) const { return classes_[static_cast<size_t>(t)]; }
    std::string_view bytes(TokenId t) const { return bytes_[static_cast<size_t>(t)]; }
    const std::vector<TokenId>& end_tokens() const { return end_tokens_; }

    // The trie, in preorder: node i (0-based; the root is implicit) is reached by byte node_byte[i] from its parent,
    // at depth node_depth[i] (1 for children of the root); its subtree is the nodes [i, node_end[i]); the tokens that
    // end exactly at it are node_tokens[node_token_begin[i] .. node_token_begin[i + 1]).
    std::vector<uint8_t> node_byte;
    std::vector<uint32_t> node_depth;
    std::vector<uint32_t> node_end;
    std::vector<uint32_t> node_token_begin;
    std::vector<TokenId> node_tokens;
    uint32_t max_depth = 0;

private:
    std::vector<std::string> bytes_;
    std::vector<TokenClass> classes_;
    std::vector<TokenId> end_tokens_;
};

}  // namespace orcd::grammar
