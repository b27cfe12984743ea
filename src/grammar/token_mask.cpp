#include "grammar/token_mask.h"

#include <algorithm>

namespace orcd::grammar {

namespace {

void set_bit(std::vector<uint64_t>& bits, TokenId t) {
    bits[static_cast<size_t>(t) >> 6] |= uint64_t{1} << (static_cast<size_t>(t) & 63);
}

}  // namespace

TokenMasker::TokenMasker(std::shared_ptr<const Grammar> grammar, std::shared_ptr<const TokenVocabulary> vocab)
    : grammar_(std::move(grammar)), vocab_(std::move(vocab)), precompute_space_(*grammar_) {}

std::unique_ptr<TokenMasker::PositionSplit> TokenMasker::compute_split(const std::vector<uint32_t>& head, bool whole) {
    const TokenVocabulary& v = *vocab_;
    auto split = std::make_unique<PositionSplit>();
    split->accepted.assign((v.size() + 63) / 64, 0);
    levels_.resize(v.max_depth + 1);
    std::vector<uint8_t> boundary(v.max_depth + 1, 0);
    // The head as a stack of the precomputation's own arena, over the boundary (or the true bottom when the head is
    // the whole stack).
    uint32_t frames = whole ? StackSpace::kEmpty : StackSpace::kBoundary;
    for (size_t i = head.size(); i-- > 1;) frames = precompute_space_.push_frame(head[i], frames);
    levels_[0] = {Stack{head[0], frames}};
    auto add_uncertain = [&](uint32_t node) {
        for (uint32_t k = v.node_token_begin[node]; k < v.node_token_begin[node + 1]; ++k) {
            split->uncertain.push_back(v.node_tokens[k]);
        }
    };
    const auto n_nodes = static_cast<uint32_t>(v.node_byte.size());
    for (uint32_t i = 0; i < n_nodes;) {
        const uint32_t d = v.node_depth[i];
        bool hit = false;
        precompute_space_.advance(levels_[d - 1], v.node_byte[i], levels_[d], &hit);
        boundary[d] = boundary[d - 1] || hit;
        if (levels_[d].empty()) {
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
    std::lock_guard lock(mu_);
    auto& slot = cache_[key];
    if (!slot) slot = compute_split(head, whole);
    return *slot;
}

void TokenMasker::check_uncertain(StackSpace& space, const Stack& stack, const PositionSplit& split,
                                  std::vector<uint64_t>& mask) {
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
    return cache_.size();
}

size_t TokenMasker::cached_uncertain_tokens() const {
    std::lock_guard lock(mu_);
    size_t n = 0;
    for (const auto& [_, s] : cache_) n += s->uncertain.size();
    return n;
}

}  // namespace orcd::grammar
