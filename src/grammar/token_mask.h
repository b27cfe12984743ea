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
#include <atomic>
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
    // Heads whose split is kept by default (each holds a bitset of the vocabulary: ~19 KB at 152k tokens, so ~80 MB in all).
    // A head met once the cache is full is computed for that mask alone: masks stay exact, memory stays bounded.
    static constexpr size_t kMaxCachedHeads = 4096;

    TokenMasker(std::shared_ptr<const Grammar> grammar, std::shared_ptr<const TokenVocabulary> vocab,
                size_t max_cached_heads = kMaxCachedHeads);

    // mask is resized to ceil(vocab size / 64) words; bit t (word t/64, bit t%64) is set when token t may follow the
    // matcher's bytes. Safe to call from several threads at once with different matchers: a head's split is
    // computed outside the cache's lock, once (a second caller of the same new head waits for the first), so masks
    // of heads already cached never wait for a walk of the vocabulary.
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
    // A cache slot: computed once (call_once), read without the lock afterwards; `ready` is published after the
    // split is complete, for the counters that look at every slot.
    struct Slot {
        std::once_flag once;
        std::unique_ptr<const PositionSplit> split;
        std::atomic<const PositionSplit*> ready{nullptr};
    };
    const PositionSplit& split_for(const StackSpace& space, const Stack& stack);
    std::unique_ptr<const PositionSplit> compute_split(const std::vector<uint32_t>& head, bool whole) const;
    void check_uncertain(StackSpace& space, const Stack& stack, const PositionSplit& split,
                         std::vector<uint64_t>& mask) const;

    std::shared_ptr<const Grammar> grammar_;
    std::shared_ptr<const TokenVocabulary> vocab_;
    size_t max_cached_heads_;
    mutable std::mutex mu_;
    // Keyed by the head's positions as bytes; the map is guarded by mu_, a slot's split by its once flag; slots
    // never move.
    std::unordered_map<std::string, std::unique_ptr<Slot>> cache_;
};

}  // namespace orcd::grammar
