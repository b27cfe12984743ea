#pragma once
// The tokens a grammar allows next, as a bitset over the vocabulary.
//
// For each stack "head" — the top position and the first kHeadFrames return positions below it — the vocabulary
// splits in three (computed on first use and cached): tokens accepted whatever lies below the head, tokens rejected
// whatever lies below, and the rest, whose fate depends on the deeper frames (some parse pops past the head
// part-way through the token). A step ORs the cached accepted sets of the state's stacks and checks only the
// context-dependent tokens against the full stacks, walking them in byte order so that shared prefixes are matched
// once. A head of a few frames rather than the top alone matters: a token usually spans several characters, and
// each character of a JSON string completes the rules for one character, so with the top alone almost every token
// would depend on context.
//
// Control tokens are never allowed; end-of-generation tokens are allowed exactly when the grammar is complete.
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "grammar/matcher.h"
#include "grammar/stacks.h"
#include "grammar/token_vocab.h"

namespace orcd::grammar {

class TokenMasker {
public:
    static constexpr size_t kHeadFrames = 8;

    TokenMasker(std::shared_ptr<const Grammar> grammar, std::shared_ptr<const TokenVocabulary> vocab);

    // mask is resized to ceil(vocab size / 64) words; bit t (word t/64, bit t%64) is set when token t may follow the
    // matcher's bytes. Safe to call from several threads with different matchers (the cache is locked).
    void fill(const Matcher& matcher, std::vector<uint64_t>& mask);

    const TokenVocabulary& vocabulary() const { return *vocab_; }
    const std::shared_ptr<const Grammar>& grammar() const { return grammar_; }
    // Positions whose split is cached, and how many context-dependent tokens they hold in all (for benchmarks).
    size_t cached_positions() const;
    size_t cached_uncertain_tokens() const;

private:
    struct PositionSplit {
        std::vector<uint64_t> accepted;       // bitset
        std::vector<TokenId> uncertain;       // in byte order
        std::vector<uint32_t> uncertain_lcp;  // common prefix length with the previous uncertain token
    };
    const PositionSplit& split_for(const StackSpace& space, const Stack& stack);
    std::unique_ptr<PositionSplit> compute_split(const std::vector<uint32_t>& head, bool whole);
    void check_uncertain(StackSpace& space, const Stack& stack, const PositionSplit& split,
                         std::vector<uint64_t>& mask);

    std::shared_ptr<const Grammar> grammar_;
    std::shared_ptr<const TokenVocabulary> vocab_;
    mutable std::mutex mu_;
    StackSpace precompute_space_;  // guarded by mu_
    // Keyed by the head's positions as bytes; guarded by mu_; entries never move.
    std::unordered_map<std::string, std::unique_ptr<PositionSplit>> cache_;
    std::vector<std::vector<Stack>> levels_;  // scratch of compute_split, guarded by mu_
};

}  // namespace orcd::grammar
