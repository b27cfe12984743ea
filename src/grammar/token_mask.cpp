#include "grammar/token_mask.h"

#include <algorithm>
#include <string>
#include <unordered_map>
#include <utility>

namespace orcd::grammar {

namespace {

void set_bit(std::vector<uint64_t>& bits, TokenId t) {
    bits[static_cast<size_t>(t) >> 6] |= uint64_t{1} << (static_cast<size_t>(t) & 63);
}

// The stack sets one precomputation meets, interned, with the transitions between them filled in as the walk of the
// vocabulary trie first needs them. Most trie nodes advance a set the walk has already advanced by the same byte
// (inside a string, nearly every node advances the same one or two sets), so the walk costs a table lookup per node
// instead of an expansion of every stack. Set 0 is the empty set (no parse alive).
class SetWalk {
public:
    static constexpr uint32_t kEmptySet = 0;

    explicit SetWalk(StackSpace& space) : space_(space) { intern({}); }

    uint32_t intern(const std::vector<Stack>& set) {
        std::string key(reinterpret_cast<const char*>(set.data()), set.size() * sizeof(Stack));
        const auto [it, fresh] = index_.try_emplace(std::move(key), static_cast<uint32_t>(sets_.size()));
        if (fresh) add(set);
        return it->second;
    }

    // The set after `byte` from set `id`, and whether some parse popped into the boundary frame on the way.
    std::pair<uint32_t, bool> next(uint32_t id, uint8_t byte) {
        if (id == kEmptySet) return {kEmptySet, false};
        uint32_t& t = trans_[static_cast<size_t>(id) * 256 + byte];
        if (t == kUnknown) {
            bool hit = false;
            space_.advance(sets_[id], byte, scratch_, &hit);
            const uint32_t to = intern(scratch_);  // may grow trans_: `t` is not used past this point
            trans_[static_cast<size_t>(id) * 256 + byte] = to << 1 | (hit ? 1u : 0u);
            return {to, hit};
        }
        return {t >> 1, (t & 1) != 0};
    }

private:
    static constexpr uint32_t kUnknown = UINT32_MAX;
    void add(const std::vector<Stack>& set) {
        sets_.push_back(set);
        trans_.resize(sets_.size() * 256, kUnknown);
    }

    StackSpace& space_;
    std::vector<std::vector<Stack>> sets_;
    std::unordered_map<std::string, uint32_t> index_;  // a set's stacks as bytes -> its id
    std::vector<uint32_t> trans_;                      // [id * 256 + byte]: next id << 1 | boundary hit
    std::vector<Stack> scratch_;
};

}  // namespace

TokenMasker::TokenMasker(std::shared_ptr<const Grammar> grammar, std::shared_ptr<const TokenVocabulary> vocab,
                         size_t max_cached_heads)
    : grammar_(std::move(grammar)), vocab_(std::move(vocab)), max_cached_heads_(max_cached_heads) {}

std::unique_ptr<const TokenMasker::PositionSplit> TokenMasker::compute_split(const std::vector<uint32_t>& head,
                                                                             bool whole) const {
    const TokenVocabulary& v = *vocab_;
    auto split = std::make_unique<PositionSplit>();
    split->accepted.assign((v.size() + 63) / 64, 0);
    // An arena of its own, so that walks of different heads run in parallel without a lock. The head becomes a
    // stack over the boundary (or the true bottom when the head is the whole stack).
    StackSpace space(*grammar_);
    uint32_t frames = whole ? StackSpace::kEmpty : StackSpace::kBoundary;
    for (size_t i = head.size(); i-- > 1;) frames = space.push_frame(head[i], frames);
    SetWalk walk(space);
    std::vector<uint32_t> level(v.max_depth + 1);  // the set alive after the current node's bytes, per depth
    std::vector<uint8_t> boundary(v.max_depth + 1, 0);
    level[0] = walk.intern({Stack{head[0], frames}});
    auto add_uncertain = [&](uint32_t node) {
        for (uint32_t k = v.node_token_begin[node]; k < v.node_token_begin[node + 1]; ++k) {
            split->uncertain.push_back(v.node_tokens[k]);
        }
    };
    const auto n_nodes = static_cast<uint32_t>(v.node_byte.size());
    for (uint32_t i = 0; i < n_nodes;) {
        const uint32_t d = v.node_depth[i];
        const auto [next, hit] = walk.next(level[d - 1], v.node_byte[i]);
        level[d] = next;
        boundary[d] = boundary[d - 1] || hit;
        if (next == SetWalk::kEmptySet) {
            // No parse stays inside the rules: the subtree is rejected, or context-dependent when some parse
            // reached the frames below.
            if (boundary[d]) {
                for (uint32_t j = i; j < v.node_end[i]; ++j) add_uncertain(j);
            }
            i = v.node_end[i];
            continue;
        }
        for (uint32_t k = v.node_token_begin[i]; k < v.node_token_begin[i + 1]; ++k) {
            set_bit(split->accepted, v.node_tokens[k]);
        }
        ++i;
    }
    // Common prefixes, for the runtime walk (the uncertain tokens came out in byte order).
    split->uncertain_lcp.resize(split->uncertain.size(), 0);
    for (size_t k = 1; k < split->uncertain.size(); ++k) {
        const auto a = v.bytes(split->uncertain[k - 1]), b = v.bytes(split->uncertain[k]);
        uint32_t l = 0;
        while (l < a.size() && l < b.size() && a[l] == b[l]) ++l;
        split->uncertain_lcp[k] = l;
    }
    return split;
}

const TokenMasker::PositionSplit& TokenMasker::split_for(const StackSpace& space, const Stack& stack) {
    std::vector<uint32_t> head{stack.top};
    uint32_t f = stack.frames;
    while (head.size() <= kHeadFrames && f != StackSpace::kEmpty) {
        head.push_back(space.frame(f).ret);
        f = space.frame(f).below;
    }
    const bool whole = f == StackSpace::kEmpty;
    std::string key(reinterpret_cast<const char*>(head.data()), head.size() * sizeof(uint32_t));
    key += whole ? 'w' : 'p';
    Slot* slot = nullptr;
    {
        std::lock_guard lock(mu_);
        auto it = cache_.find(key);
        if (it == cache_.end() && cache_.size() < max_cached_heads_) {
            it = cache_.emplace(std::move(key), std::make_unique<Slot>()).first;
        }
        if (it != cache_.end()) slot = it->second.get();
    }
    if (!slot) {
        // The cache is full: this head's split serves the caller's current mask only (fill uses it before it asks
        // for the next one).
        thread_local std::unique_ptr<const PositionSplit> uncached;
        uncached = compute_split(head, whole);
        return *uncached;
    }
    // Outside the lock: other heads' masks go on while this one walks the vocabulary. A walk that throws leaves the
    // slot empty for the next caller to try again.
    std::call_once(slot->once, [&] {
        slot->split = compute_split(head, whole);
        slot->ready.store(slot->split.get(), std::memory_order_release);
    });
    return *slot->split;
}

void TokenMasker::check_uncertain(StackSpace& space, const Stack& stack, const PositionSplit& split,
                                  std::vector<uint64_t>& mask) const {
    if (split.uncertain.empty()) return;
    thread_local std::vector<std::vector<Stack>> levels;
    levels.resize(std::max<size_t>(levels.size(), vocab_->max_depth + 1));
    levels[0] = {stack};
    size_t have = 1;  // levels[0 .. have) are valid for the previous token's prefix
    for (size_t k = 0; k < split.uncertain.size(); ++k) {
        const TokenId t = split.uncertain[k];
        const auto bytes = vocab_->bytes(t);
        size_t d = std::min<size_t>(split.uncertain_lcp[k], have - 1);
        while (d < bytes.size() && !levels[d].empty()) {
            space.advance(levels[d], static_cast<uint8_t>(bytes[d]), levels[d + 1]);
            ++d;
        }
        have = d + 1;
        if (d == bytes.size() && !levels[d].empty()) set_bit(mask, t);
    }
}

void TokenMasker::fill(const Matcher& matcher, std::vector<uint64_t>& mask) {
    const TokenVocabulary& v = *vocab_;
    mask.assign((v.size() + 63) / 64, 0);
    bool complete = false;
    for (const Stack& s : matcher.stacks()) {
        if (s.accepting()) {
            complete = true;
            continue;
        }
        const PositionSplit& split = split_for(matcher.space(), s);
        for (size_t w = 0; w < mask.size(); ++w) mask[w] |= split.accepted[w];
        check_uncertain(matcher.space(), s, split, mask);
    }
    if (complete) {
        for (TokenId t : v.end_tokens()) set_bit(mask, t);
    }
}

size_t TokenMasker::cached_positions() const {
    std::lock_guard lock(mu_);
    size_t n = 0;
    for (const auto& [_, s] : cache_) n += s->ready.load(std::memory_order_acquire) != nullptr;
    return n;
}

size_t TokenMasker::cached_uncertain_tokens() const {
    std::lock_guard lock(mu_);
    size_t n = 0;
    for (const auto& [_, s] : cache_) {
        if (const PositionSplit* p = s->ready.load(std::memory_order_acquire)) n += p->uncertain.size();
    }
    return n;
}

}  // namespace orcd::grammar
