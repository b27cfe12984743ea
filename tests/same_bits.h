#pragma once
// Batch invariance and run-to-run determinism are promises about bits, not tolerances: these compare float rows
// (logits) by their bytes, and say where two rows part when they do.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <span>
#include <string>

namespace orcd::test {

// True when the rows have the same length and every float the same bits (so -0 differs from 0, and NaNs compare by
// payload).
inline bool same_bits(std::span<const float> a, std::span<const float> b) {
    return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0;
}

// Where two rows differ: how many entries, the first, and the largest difference; "none" when they have the same bits.
inline std::string bit_difference(std::span<const float> a, std::span<const float> b) {
    if (a.size() != b.size()) return "sizes " + std::to_string(a.size()) + " and " + std::to_string(b.size());
    size_t n = 0, first = a.size();
    double worst = 0;
    for (size_t i = 0; i < a.size(); ++i) {
        if (std::memcmp(&a[i], &b[i], sizeof(float)) == 0) continue;
        if (n++ == 0) first = i;
        worst = std::max(worst, std::abs(static_cast<double>(a[i]) - b[i]));
    }
    if (n == 0) return "none";
    return std::to_string(n) + " of " + std::to_string(a.size()) + " differ, the first at " + std::to_string(first) +
           " (" + std::to_string(a[first]) + " against " + std::to_string(b[first]) + "), the largest by " +
           std::to_string(worst);
}

}  // namespace orcd::test
