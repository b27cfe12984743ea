#include "grammar/token_vocab.h"

#include <fmt/format.h>

#include <algorithm>
#include <numeric>

#include "common/error.h"

namespace orcd::grammar {

TokenVocabulary::TokenVocabulary(std::vector<std::string> bytes, std::vector<TokenClass> classes)
    : bytes_(std::move(bytes)), classes_(std::move(classes)) {
    if (bytes_.size() != classes_.size()) {
        throw Error(ErrorCode::InvalidArgument,
                    fmt::format("token vocabulary: {} byte strings for {} classes", bytes_.size(), classes_.size()));
    }
    std::vector<TokenId> ids;
    for (size_t i = 0; i < classes_.size(); ++i) {
        if (classes_[i] == TokenClass::Bytes && bytes_[i].empty()) classes_[i] = TokenClass::Never;
        if (classes_[i] == TokenClass::Bytes) ids.push_back(static_cast<TokenId>(i));
        if (classes_[i] == TokenClass::End) end_tokens_.push_back(static_cast<TokenId>(i));
    }
    std::sort(ids.begin(), ids.end(), [&](TokenId a, TokenId b) {
        const int c = bytes_[static_cast<size_t>(a)].compare(bytes_[static_cast<size_t>(b)]);
        return c != 0 ? c < 0 : a < b;
    });
    // Sorted strings give the trie's preorder directly: each string adds nodes for the bytes past its common prefix
    // with the previous one; a node's subtree ends when a later string diverges above it.
    std::vector<uint32_t> path;  // node index at each depth - 1 of the previous string
    std::string_view prev;
    for (TokenId id : ids) {
        const std::string_view s = bytes_[static_cast<size_t>(id)];
        size_t lcp = 0;
        while (lcp < prev.size() && lcp < s.size() && prev[lcp] == s[lcp]) ++lcp;
        while (path.size() > lcp) {
            node_end[path.back()] = static_cast<uint32_t>(node_byte.size());
            path.pop_back();
        }
        for (size_t d = lcp; d < s.size(); ++d) {
            path.push_back(static_cast<uint32_t>(node_byte.size()));
            node_byte.push_back(static_cast<uint8_t>(s[d]));
            node_depth.push_back(static_cast<uint32_t>(d + 1));
            node_end.push_back(0);
            node_token_begin.push_back(static_cast<uint32_t>(node_tokens.size()));
        }
        // Tokens are appended in node order, so each node's tokens are contiguous.
        node_tokens.push_back(id);
        max_depth = std::max<uint32_t>(max_depth, static_cast<uint32_t>(s.size()));
        prev = s;
    }
    for (uint32_t n : path) node_end[n] = static_cast<uint32_t>(node_byte.size());
    node_token_begin.push_back(static_cast<uint32_t>(node_tokens.size()));
}

}  // namespace orcd::grammar
