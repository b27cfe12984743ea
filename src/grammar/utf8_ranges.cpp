#include "grammar/utf8_ranges.h"

#include <algorithm>

#include "common/utf8.h"

namespace orcd::grammar {

namespace {

constexpr uint32_t kMaxCodePoint = 0x10FFFF;

std::vector<uint8_t> encode(uint32_t cp) {
    std::vector<uint8_t> out;
    append_utf8(cp, out);
    return out;
}

// [lo, hi] share an encoded length. Splits it until, for every byte, the range of that byte is independent of the
// others (then the bytes of lo and hi bound each position), and appends the resulting sequences.
void split_same_length(uint32_t lo, uint32_t hi, std::vector<Utf8Sequence>& out) {
    // An explicit work list: each split produces pieces aligned on a continuation-byte boundary, a handful in all.
    std::vector<std::pair<uint32_t, uint32_t>> work{{lo, hi}};
    while (!work.empty()) {
        auto [a, b] = work.back();
        work.pop_back();
        bool split = false;
        for (int i = 1; i < 4 && !split; ++i) {
            const uint32_t m = (uint32_t{1} << (6 * i)) - 1;  // the low 6*i bits: the last i continuation bytes
            if ((a & ~m) == (b & ~m)) continue;
            if ((a & m) != 0) {
                work.push_back({(a | m) + 1, b});
                work.push_back({a, a | m});
                split = true;
            } else if ((b & m) != m) {
                work.push_back({b & ~m, b});
                work.push_back({a, (b & ~m) - 1});
                split = true;
            }
        }
        if (split) continue;
        const auto ea = encode(a), eb = encode(b);
        Utf8Sequence seq;
        for (size_t k = 0; k < ea.size(); ++k) seq.push_back({ea[k], eb[k]});
        out.push_back(std::move(seq));
    }
}

}  // namespace

void append_utf8(uint32_t cp, std::vector<uint8_t>& out) {
    uint8_t bytes[4];
    out.insert(out.end(), bytes, bytes + encode_utf8(cp, bytes));
}

std::vector<Utf8Sequence> utf8_sequences(uint32_t lo, uint32_t hi) {
    std::vector<Utf8Sequence> out;
    hi = std::min(hi, kMaxCodePoint);
    // Cut out the surrogates, then cut at the encoded-length boundaries.
    std::vector<std::pair<uint32_t, uint32_t>> parts;
    if (lo <= hi) {
        if (hi < 0xD800 || lo > 0xDFFF) {
            parts.push_back({lo, hi});
        } else {
            if (lo < 0xD800) parts.push_back({lo, 0xD7FF});
            if (hi > 0xDFFF) parts.push_back({0xE000, hi});
        }
    }
    static constexpr uint32_t kLengthEnds[] = {0x7F, 0x7FF, 0xFFFF, kMaxCodePoint};
    for (auto [a, b] : parts) {
        for (uint32_t end : kLengthEnds) {
            if (a > b) break;
            if (a > end) continue;
            const uint32_t stop = std::min(b, end);
            split_same_length(a, stop, out);
            a = stop + 1;
        }
    }
    return out;
}

std::vector<std::pair<uint32_t, uint32_t>> normalize_ranges(std::vector<std::pair<uint32_t, uint32_t>> ranges,
                                                            bool negate) {
    std::sort(ranges.begin(), ranges.end());
    std::vector<std::pair<uint32_t, uint32_t>> merged;
    for (auto [a, b] : ranges) {
        if (a > b) continue;
        if (!merged.empty() && a <= merged.back().second + 1) {
            merged.back().second = std::max(merged.back().second, b);
        } else {
            merged.push_back({a, b});
        }
    }
    if (!negate) return merged;
    std::vector<std::pair<uint32_t, uint32_t>> out;
    uint32_t next = 0;
    for (auto [a, b] : merged) {
        if (a > next) out.push_back({next, a - 1});
        next = b + 1;
    }
    if (next <= kMaxCodePoint) out.push_back({next, kMaxCodePoint});
    return out;
}

}  // namespace orcd::grammar
