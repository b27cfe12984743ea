#pragma once
// The pushdown automaton's stacks. A stack is its top position (a Bytes element: the next byte must be in its set)
// and its frames below: return positions, interned in an arena so that equal stacks share one representation and
// compare as two integers. Advancing by a byte moves each stack's top and expands the result until every stack again
// has a Bytes element on top (or is empty: the grammar is complete).
//
// Expansion drops a frame whose return position is the end of its alternative (a tail call), so the repetitions
// the grammar compiles to right recursion run in constant stack depth. Left recursion is refused when the grammar is
// built; a cycle of tail calls (a repeated nullable item) is cut by visiting each stack once per expansion.
#include <cstdint>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "grammar/grammar.h"

namespace orcd::grammar {

struct Stack {
    uint32_t top;     // position of a Bytes element, or kAccept
    uint32_t frames;  // interned frame list (kEmpty: none)
    static constexpr uint32_t kAccept = UINT32_MAX;
    bool operator==(const Stack&) const = default;
    auto operator<=>(const Stack&) const = default;
    bool accepting() const { return top == kAccept; }
};

class StackSpace {
public:
    static constexpr uint32_t kEmpty = 0;     // no frames: popping it completes the grammar
    static constexpr uint32_t kBoundary = 1;  // stands for unknown frames below (token-mask precomputation)

    // Throws InvalidArgument when the number of distinct frames or stacks passes `max_frames` / `max_stacks`: only a
    // pathologically ambiguous grammar gets there.
    explicit StackSpace(const Grammar& g, size_t max_frames = 1u << 22, size_t max_stacks = 1u << 14);

    const Grammar& grammar() const { return g_; }

    // Stacks for the start of the grammar.
    void start(std::vector<Stack>& out);
    // Stacks for a position with `frames` below, expanded (used for the precomputation's single-position stacks).
    // Sets *hit_boundary when some path pops into kBoundary.
    void expand(uint32_t pos, uint32_t frames, std::vector<Stack>& out, bool* hit_boundary = nullptr);
    // Every stack of `in` that accepts `byte`, advanced and expanded, into `out` (cleared; sorted and unique).
    void advance(const std::vector<Stack>& in, uint8_t byte, std::vector<Stack>& out, bool* hit_boundary = nullptr);

    struct Frame {
        uint32_t ret;    // position to continue at when the rule above ends
        uint32_t below;  // the next frame (kEmpty / kBoundary at the bottom)
    };
    const Frame& frame(uint32_t id) const { return frames_[id]; }
    // The frame list `ret` on top of `below` (interned: equal lists get equal ids).
    uint32_t push_frame(uint32_t ret, uint32_t below) { return intern(ret, below); }

    bool accepts_byte(const Stack& s, uint8_t b) const {
        return !s.accepting() && g_.byte_sets[g_.elems[s.top].arg].test(b);
    }

private:
    uint32_t intern(uint32_t ret, uint32_t below);
    void expand_into(uint32_t pos, uint32_t frames, std::vector<Stack>& out, bool* hit_boundary);
    void finish(std::vector<Stack>& out, size_t from);

    const Grammar& g_;
    size_t max_frames_, max_stacks_;
    std::vector<Frame> frames_;
    std::unordered_map<uint64_t, uint32_t> index_;
    // Scratch for one expansion: pending work and the (pos, frames) pairs already visited.
    std::vector<Stack> work_;
    std::vector<uint64_t> visited_small_;
    std::unordered_set<uint64_t> visited_;
};

}  // namespace orcd::grammar
