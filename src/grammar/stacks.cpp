#include "grammar/stacks.h"

#include <fmt/format.h>

#include <algorithm>

#include "common/error.h"

namespace orcd::grammar {

namespace {
uint64_t key(uint32_t a, uint32_t b) { return (uint64_t{a} << 32) | b; }
}  // namespace

StackSpace::StackSpace(const Grammar& g, size_t max_frames, size_t max_stacks)
    : g_(g), max_frames_(max_frames), max_stacks_(max_stacks) {
    frames_.push_back({0, 0});  // kEmpty
    frames_.push_back({0, 0});  // kBoundary
}

uint32_t StackSpace::intern(uint32_t ret, uint32_t below) {
    auto [it, inserted] = index_.try_emplace(key(ret, below), static_cast<uint32_t>(frames_.size()));
    if (inserted) {
        if (frames_.size() >= max_frames_) {
            index_.erase(it);
            throw Error(ErrorCode::InvalidArgument,
                        fmt::format("grammar matching needs more than {} stack frames", max_frames_));
        }
        frames_.push_back({ret, below});
    }
    return it->second;
}

void StackSpace::expand_into(uint32_t pos, uint32_t frames, std::vector<Stack>& out, bool* hit_boundary) {
    work_.clear();
    visited_small_.clear();
    if (!visited_.empty()) visited_.clear();
    work_.push_back({pos, frames});
    // A small linear set serves the common case (a handful of alternatives); a hash set takes over when it grows.
    auto first_visit = [&](uint64_t k) {
        if (visited_small_.size() < 32) {
            if (std::find(visited_small_.begin(), visited_small_.end(), k) != visited_small_.end()) return false;
            visited_small_.push_back(k);
            return true;
        }
        if (std::find(visited_small_.begin(), visited_small_.end(), k) != visited_small_.end()) return false;
        return visited_.insert(k).second;
    };
    size_t steps = 0;
    while (!work_.empty()) {
        Stack s = work_.back();
        work_.pop_back();
        for (;;) {
            if (!first_visit(key(s.top, s.frames))) break;
            if (++steps > max_stacks_ * 16) {
                throw Error(
                    ErrorCode::InvalidArgument,
                    fmt::format("grammar too ambiguous: one step expands to more than {} states", max_stacks_ * 16));
            }
            const Elem& e = g_.elems[s.top];
            if (e.kind == Elem::Kind::Bytes) {
                out.push_back(s);
                break;
            }
            if (e.kind == Elem::Kind::End) {
                if (s.frames == kEmpty) {
                    out.push_back({Stack::kAccept, kEmpty});
                    break;
                }
                if (s.frames == kBoundary) {
                    if (hit_boundary) *hit_boundary = true;
                    break;
                }
                const Frame f = frames_[s.frames];
                s = {f.ret, f.below};
                continue;
            }
            // A reference: one new stack per alternative, with a return frame unless the reference is in tail
            // position.
            const uint32_t ret = s.top + 1;
            const uint32_t below = g_.elems[ret].kind == Elem::Kind::End ? s.frames : intern(ret, s.frames);
            const auto& alts = g_.rule_alts[e.arg];
            for (size_t i = alts.size(); i-- > 1;) work_.push_back({alts[i], below});
            s = {alts[0], below};
        }
    }
}

void StackSpace::finish(std::vector<Stack>& out, size_t from) {
    std::sort(out.begin() + static_cast<ptrdiff_t>(from), out.end());
    out.erase(std::unique(out.begin() + static_cast<ptrdiff_t>(from), out.end()), out.end());
    if (out.size() > max_stacks_) {
        throw Error(ErrorCode::InvalidArgument,
                    fmt::format("grammar too ambiguous: more than {} parses are alive at once", max_stacks_));
    }
}

void StackSpace::start(std::vector<Stack>& out) {
    out.clear();
    for (uint32_t a : g_.rule_alts[g_.root]) expand_into(a, kEmpty, out, nullptr);
    finish(out, 0);
}

void StackSpace::expand(uint32_t pos, uint32_t frames, std::vector<Stack>& out, bool* hit_boundary) {
    out.clear();
    expand_into(pos, frames, out, hit_boundary);
    finish(out, 0);
}

void StackSpace::advance(const std::vector<Stack>& in, uint8_t byte, std::vector<Stack>& out, bool* hit_boundary) {
    out.clear();
    for (const Stack& s : in) {
        if (accepts_byte(s, byte)) expand_into(s.top + 1, s.frames, out, hit_boundary);
    }
    if (out.size() > 1) finish(out, 0);
}

}  // namespace orcd::grammar
