#pragma once
// What the host sampling chain (sample_chain.cpp) shares with its single-precision screen (sample_screen.cpp): the
// candidate type and the chain's order, the double pass's bins (the screen's are derived from them), the weighted
// selection of a bin's crossing token that both use, and the screen's entry point. Internal to those two files, which
// are one unit split by concern: include it nowhere else.
#include <algorithm>
#include <cstddef>
#include <optional>
#include <span>
#include <utility>
#include <vector>

#include "backend/sample_chain.h"

namespace orcd::backend::detail {

using Cand = std::pair<float, TokenId>;

// The chain's order: logit descending, ties by id ascending (a strict total order on finite and infinite logits).
// A function object, not a function: std::sort given a function's pointer called it through the pointer (perf showed
// the sort of a crossing bin of flat logits at half of the step), while an object's call is inlined.
struct Better {
    bool operator()(const Cand& a, const Cand& b) const {
        return a.first > b.first || (a.first == b.first && a.second < b.second);
    }
};
inline constexpr Better better{};

// Bins of the distance d = (max logit - logit) / temperature: 8 per unit, the last one (d >= 63.875) holding the
// tail, whose tokens count as weight 0 (each under e^-63.875 = 2e-28 of the top token's weight 1; the bound of all
// of them together is part of the tolerance).
inline constexpr int kBins = 512;
inline constexpr double kBinsPerUnit = 8.0;
inline constexpr int kTailBin = kBins - 1;

// Of v[0, count) (tokens of one bin, any order), the chain's first tokens up to the first whose cumulative weight,
// started at `cum`, reaches `target` (`inclusive`) or exceeds it: v is reordered so that they are v[0, j], the
// crossing token v[j] (those before it in any order), and j is returned. nullopt when no token crosses or the
// crossing lies within `margin` of either of its boundaries. A weighted selection instead of a sort: each round
// splits the range at a pivot token and keeps the side the running sum crosses in, so the work is linear in the bin
// (a crossing bin of flat logits holds tens of thousands of tokens, whose sort was most of the step). The sums run in
// another order than the definition's, which the caller's margin allows for (n units of rounding).
template <class Weight>
std::optional<size_t> crossing_in(std::vector<Cand>& v, size_t count, const Weight& weight, double cum, double target,
                                  bool inclusive, double margin) {
    struct Weighed {
        Cand c;
        double w;
    };
    auto crosses = [&](double c) { return inclusive ? c >= target : target < c; };
    std::vector<Weighed> t(count);
    for (size_t i = 0; i < count; ++i) t[i] = {v[i], weight(v[i])};
    auto wbetter = [](const Weighed& a, const Weighed& b) { return better(a.c, b.c); };
    size_t lo = 0, hi = count;
    while (hi - lo > 16) {
        // The median of three tokens as the pivot; the tokens better than it go first.
        const size_t a = lo, b = lo + (hi - lo) / 2, c = hi - 1;
        const size_t piv = wbetter(t[a], t[b]) ? (wbetter(t[b], t[c])   ? b
                                                  : wbetter(t[a], t[c]) ? c
                                                                        : a)
                                               : (wbetter(t[a], t[c])   ? a
                                                  : wbetter(t[b], t[c]) ? c
                                                                        : b);
        const Cand pc = t[piv].c;
        auto mid = static_cast<size_t>(std::partition(t.begin() + static_cast<std::ptrdiff_t>(lo),
                                                      t.begin() + static_cast<std::ptrdiff_t>(hi),
                                                      [&](const Weighed& x) { return better(x.c, pc); }) -
                                       t.begin());
        if (mid == lo) {  // the pivot is the range's best token: it alone goes first
            for (size_t i = lo; i < hi; ++i) {
                if (t[i].c == pc) std::swap(t[i], t[lo]);
            }
            mid = lo + 1;
        }
        double sum = 0;
        for (size_t i = lo; i < mid; ++i) sum += t[i].w;
        if (crosses(cum + sum)) {
            hi = mid;
        } else {
            cum += sum;
            lo = mid;
        }
    }
    std::sort(t.begin() + static_cast<std::ptrdiff_t>(lo), t.begin() + static_cast<std::ptrdiff_t>(hi), wbetter);
    for (size_t j = lo; j < hi; ++j) {
        const double prev = cum;
        cum += t[j].w;
        if (crosses(cum)) {
            if (target - prev <= margin || cum - target <= margin) return std::nullopt;
            for (size_t i = 0; i < count; ++i) v[i] = t[i].c;
            return j;
        }
    }
    return std::nullopt;
}

// The pick after top-p and min-p (top-k off) on the single-precision screen: the sorted definition's token, or nullopt
// when a crossing lies within the screen's error bound of a boundary (the caller then runs the double-precision pass).
// sample_screen.cpp says how; without AVX2 and FMA it always returns nullopt.
std::optional<TokenId> screen_pick(std::span<const float> work, float mx, float mn, bool finite, const SampleStep& st,
                                   SampleScratch& scratch);

}  // namespace orcd::backend::detail
