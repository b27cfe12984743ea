// Tests of the quantization formats.
//
// Layout tests build blocks byte by byte from *logical* values (scales, mins, quants) chosen by the test, place every
// bit where the published GGML layout says it goes, and compute the expected floats from the published formula —
// never from the code under test. Each pattern is chosen so that a misread layout changes the output (distinct
// nibbles in a byte, distinct scales per sub-block, high bits set and clear in every sub-block), and each test also
// feeds mutated blocks (what a decoder with a swapped nibble order, scale index or bit order would effectively see)
// and checks that they would be caught.
//
// Round-trip tests quantize data with a fixed seed and check every element against the worst-case error bound that
// the format and quant.cpp's scale selection imply, derived in the comments from the data alone.
#include <gtest/gtest.h>

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <functional>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "common/error.h"
#include "common/half.h"
#include "quant/convert.h"
#include "quant/formats.h"
#include "gguf/types.h"

namespace orcd::quant {
namespace {

using namespace orcd::gguf;

// ----------------------------------------------------------------------------------------------------------------
// Helpers

// A half-precision value written out by hand from IEEE binary16 (1 sign bit, 5 exponent bits biased by 15, 10
// fraction bits), so expected values do not depend on any conversion routine.
struct Half {
    uint16_t bits;
    float value;
};
constexpr Half kOne{0x3C00, 1.0f};
constexpr Half kTwo{0x4000, 2.0f};
constexpr Half kMinusHalf{0xB800, -0.5f};
constexpr Half kOneAndQuarter{0x3D00, 1.25f};                       // fraction 0x100 = 1/4
constexpr Half kMinusFive{0xC500, -5.0f};                           // 2^2 * 1.25
constexpr Half kAboutTenth{0x2E66, 0.0999755859375f};               // 2^-4 * (1 + 614/1024)
constexpr Half kLargest{0x7BFF, 65504.0f};                          // 2^15 * (2 - 2^-10)
constexpr Half kSmallestSubnormal{0x0001, 5.9604644775390625e-8f};  // 2^-24
constexpr Half kMinusSubnormal{0x8200, -3.0517578125e-5f};          // -(512 * 2^-24)
constexpr Half kZero{0x0000, 0.0f};
constexpr Half kInf{0x7C00, std::numeric_limits<float>::infinity()};
constexpr Half kMinusInf{0xFC00, -std::numeric_limits<float>::infinity()};

const std::vector<Half> kSingleScales = {kOne,  kMinusHalf,         kAboutTenth,     kMinusFive, kLargest,
                                         kZero, kSmallestSubnormal, kMinusSubnormal, kInf};
// (d, dmin) pairs for the two-scale formats: positive and negative mins, subnormal, largest, infinite.
const std::vector<std::pair<Half, Half>> kScalePairs = {{kOne, kTwo},
                                                        {kAboutTenth, kMinusHalf},
                                                        {kMinusFive, kSmallestSubnormal},
                                                        {kMinusSubnormal, kLargest},
                                                        {kOneAndQuarter, kZero},
                                                        {kInf, kOne},
                                                        {kTwo, kMinusInf}};
const std::vector<int> kPatternSeeds = {0, 3, 10};

template <typename Block>
std::vector<float> decode(TensorType type, const Block& block) {
    std::vector<float> y(traits(type).block_elems);
    dequantize_row(type, &block, y.data(), static_cast<int64_t>(y.size()));
    return y;
}

bool same_value(float a, float b) { return (std::isnan(a) && std::isnan(b)) || a == b; }

void expect_values(const std::vector<float>& actual, const std::vector<float>& expected, const std::string& what) {
    ASSERT_EQ(actual.size(), expected.size()) << what;
    int mismatches = 0;
    for (size_t i = 0; i < actual.size(); ++i) {
        if (same_value(actual[i], expected[i])) continue;
        if (++mismatches <= 4) {
            ADD_FAILURE() << what << ": element " << i << " is " << actual[i] << ", expected " << expected[i];
        }
    }
    EXPECT_EQ(mismatches, 0) << what;
}

bool any_difference(const std::vector<float>& a, const std::vector<float>& b) {
    for (size_t i = 0; i < a.size(); ++i) {
        if (!same_value(a[i], b[i])) return true;
    }
    return false;
}

// A layout bug is equivalent to decoding a block whose bytes were moved the way the bug moves them; the test's
// comparison must then fail. Each mutation names the bug it stands for.
template <typename Block>
struct Mutation {
    const char* bug;
    std::function<void(Block&)> apply;
};

template <typename Block>
void expect_mutations_caught(TensorType type, const Block& block, const std::vector<float>& expected,
                             const std::vector<Mutation<Block>>& mutations, const std::string& what) {
    // Scales that make every element decode to the same value (e.g. a step below the offset's ulp) cannot reveal
    // where a quant was read from; the other scale choices of the same test cover the layout.
    if (std::all_of(expected.begin(), expected.end(), [&](float v) { return same_value(v, expected[0]); })) return;
    for (const Mutation<Block>& m : mutations) {
        Block mutated = block;
        m.apply(mutated);
        EXPECT_TRUE(any_difference(decode(type, mutated), expected))
            << what << ": a decoder with " << m.bug << " would pass this test";
    }
}

uint8_t swap_nibbles(uint8_t b) { return static_cast<uint8_t>(b << 4 | b >> 4); }
template <size_t N>
void swap_all_nibbles(uint8_t (&bytes)[N]) {
    for (uint8_t& b : bytes) b = swap_nibbles(b);
}
uint8_t reverse_bits(uint8_t b) {
    uint8_t r = 0;
    for (int i = 0; i < 8; ++i) r = static_cast<uint8_t>(r | ((b >> i) & 1) << (7 - i));
    return r;
}
uint8_t reverse_bit_pairs(uint8_t b) {
    return static_cast<uint8_t>((b & 3) << 6 | ((b >> 2) & 3) << 4 | ((b >> 4) & 3) << 2 | (b >> 6));
}

// Both ends of the quant range appear in the pattern, so q at 0/min and at max are decoded somewhere.
void expect_covers_range(const std::vector<int>& q, int lo, int hi, const std::string& what) {
    EXPECT_NE(std::find(q.begin(), q.end(), lo), q.end()) << what << ": pattern never uses q = " << lo;
    EXPECT_NE(std::find(q.begin(), q.end(), hi), q.end()) << what << ": pattern never uses q = " << hi;
}

// ----------------------------------------------------------------------------------------------------------------
// Plain float types

TEST(QuantLayout, F32IsCopiedBitForBit) {
    const std::vector<float> x = {
        0.0f, -0.0f, 1.5f, -3.25e-41f /*subnormal*/, 3.4e38f, std::numeric_limits<float>::infinity()};
    std::vector<float> y(x.size());
    dequantize_row(TensorType::F32, x.data(), y.data(), static_cast<int64_t>(x.size()));
    for (size_t i = 0; i < x.size(); ++i) EXPECT_EQ(std::bit_cast<uint32_t>(y[i]), std::bit_cast<uint32_t>(x[i]));
    std::vector<float> back(x.size());
    quantize_row(TensorType::F32, x.data(), back.data(), static_cast<int64_t>(x.size()));
    EXPECT_EQ(std::memcmp(back.data(), x.data(), x.size() * sizeof(float)), 0);
}

TEST(QuantLayout, F16DecodesEveryClassOfHalf) {
    const std::vector<Half> halves = {kOne,
                                      kMinusHalf,
                                      kOneAndQuarter,
                                      kMinusFive,
                                      kAboutTenth,
                                      kLargest,
                                      kSmallestSubnormal,
                                      kMinusSubnormal,
                                      kZero,
                                      {0x8000, -0.0f},
                                      kInf,
                                      kMinusInf,
                                      {0x03FF, 1023.0f / 16777216.0f} /* largest subnormal */,
                                      {0x0400, 1.0f / 16384.0f} /* smallest normal 2^-14 */};
    std::vector<uint16_t> raw;
    std::vector<float> expected;
    for (const Half& h : halves) {
        raw.push_back(h.bits);
        expected.push_back(h.value);
    }
    std::vector<float> y(raw.size());
    dequantize_row(TensorType::F16, raw.data(), y.data(), static_cast<int64_t>(raw.size()));
    expect_values(y, expected, "F16");
    EXPECT_TRUE(std::signbit(y[9])) << "-0 must keep its sign";

    const uint16_t nan = 0x7E00;
    float out;
    dequantize_row(TensorType::F16, &nan, &out, 1);
    EXPECT_TRUE(std::isnan(out));

    // Every value here is representable, so quantizing gives the same bits back.
    std::vector<uint16_t> back(raw.size());
    quantize_row(TensorType::F16, expected.data(), back.data(), static_cast<int64_t>(expected.size()));
    EXPECT_EQ(back, raw);
}

TEST(QuantLayout, BF16DecodesEveryClassOfBfloat) {
    // bfloat16 is the top half of a float32: sign, 8 exponent bits, 7 fraction bits.
    const std::vector<std::pair<uint16_t, float>> values = {{0x3F80, 1.0f},
                                                            {0xC040, -3.0f},
                                                            {0x4049, 3.140625f} /* 2 * (1 + 73/128) */,
                                                            {0x0001, std::ldexp(1.0f, -133)} /* smallest subnormal */,
                                                            {0x8000, -0.0f},
                                                            {0x7F80, INFINITY},
                                                            {0xFF80, -INFINITY},
                                                            {0x7F7F, 3.3895313892515355e38f} /* largest finite */};
    std::vector<uint16_t> raw;
    std::vector<float> expected;
    for (auto [bits, value] : values) {
        raw.push_back(bits);
        expected.push_back(value);
    }
    std::vector<float> y(raw.size());
    dequantize_row(TensorType::BF16, raw.data(), y.data(), static_cast<int64_t>(raw.size()));
    expect_values(y, expected, "BF16");

    std::vector<uint16_t> back(raw.size());
    quantize_row(TensorType::BF16, expected.data(), back.data(), static_cast<int64_t>(expected.size()));
    EXPECT_EQ(back, raw);
}

// ----------------------------------------------------------------------------------------------------------------
// 32-element formats

TEST(QuantLayout, Q4_0) {
    for (const Half& d : kSingleScales) {
        for (int seed : kPatternSeeds) {
            // Logical quants 0..15; element l + 16 differs from element l so a nibble swap shows.
            std::vector<int> q(32);
            for (int e = 0; e < 32; ++e) q[e] = (7 * e + e / 16 + seed) % 16;
            expect_covers_range(q, 0, 15, "Q4_0");
            BlockQ4_0 b{};
            b.d = d.bits;
            for (int l = 0; l < 16; ++l) {
                ASSERT_NE(q[l], q[l + 16]);
                b.qs[l] = static_cast<uint8_t>(q[l] | q[l + 16] << 4);
            }
            std::vector<float> expected(32);
            for (int e = 0; e < 32; ++e) expected[e] = d.value * static_cast<float>(q[e] - 8);
            const std::string what = "Q4_0 d=" + std::to_string(d.value) + " seed " + std::to_string(seed);
            expect_values(decode(TensorType::Q4_0, b), expected, what);
            if (d.value != 0.0f) {
                expect_mutations_caught<BlockQ4_0>(
                    TensorType::Q4_0, b, expected,
                    {{"the nibble order swapped", [](BlockQ4_0& m) { swap_all_nibbles(m.qs); }},
                     {"the byte order reversed", [](BlockQ4_0& m) { std::reverse(m.qs, m.qs + 16); }}},
                    what);
            }
        }
    }
}

TEST(QuantLayout, Q4_1) {
    for (const auto& [d, m] : kScalePairs) {
        for (int seed : kPatternSeeds) {
            std::vector<int> q(32);
            for (int e = 0; e < 32; ++e) q[e] = (7 * e + e / 16 + seed) % 16;
            expect_covers_range(q, 0, 15, "Q4_1");
            BlockQ4_1 b{};
            b.d = d.bits;
            b.m = m.bits;
            for (int l = 0; l < 16; ++l) b.qs[l] = static_cast<uint8_t>(q[l] | q[l + 16] << 4);
            std::vector<float> expected(32);
            for (int e = 0; e < 32; ++e) expected[e] = d.value * static_cast<float>(q[e]) + m.value;
            const std::string what = "Q4_1 d=" + std::to_string(d.value) + " m=" + std::to_string(m.value);
            expect_values(decode(TensorType::Q4_1, b), expected, what);
            if (std::isfinite(d.value) && std::isfinite(m.value) && d.value != 0.0f) {
                expect_mutations_caught<BlockQ4_1>(
                    TensorType::Q4_1, b, expected,
                    {{"the nibble order swapped", [](BlockQ4_1& x) { swap_all_nibbles(x.qs); }},
                     {"d and m swapped", [](BlockQ4_1& x) { std::swap(x.d, x.m); }}},
                    what);
            }
        }
    }
}

// Q5_0/Q5_1 logical quants 0..31: the fifth bit of element e is bit e of the 32-bit little-endian qh.
std::vector<int> q5_pattern(int seed) {
    std::vector<int> q(32);
    for (int e = 0; e < 32; ++e) q[e] = (7 * e + 3 * (e / 16) + seed) % 32;
    return q;
}

template <typename Block>
void place_q5_bits(const std::vector<int>& q, Block& b) {
    for (int l = 0; l < 16; ++l) b.qs[l] = static_cast<uint8_t>((q[l] & 15) | (q[l + 16] & 15) << 4);
    for (int e = 0; e < 32; ++e) {
        if (q[e] & 16) b.qh[e / 8] = static_cast<uint8_t>(b.qh[e / 8] | 1 << (e % 8));
    }
}

void expect_q5_pattern_discriminates(const std::vector<int>& q, const uint8_t qh[4]) {
    expect_covers_range(q, 0, 31, "Q5");
    for (int l = 0; l < 16; ++l) ASSERT_NE(q[l] & 15, q[l + 16] & 15) << "nibbles of byte " << l;
    for (int i = 0; i < 4; ++i) {
        for (int j = i + 1; j < 4; ++j) ASSERT_NE(qh[i], qh[j]) << "qh bytes must differ to catch a byte-order bug";
        ASSERT_NE(qh[i], reverse_bits(qh[i])) << "qh byte must not be a bit palindrome";
    }
}

TEST(QuantLayout, Q5_0) {
    for (const Half& d : kSingleScales) {
        for (int seed : kPatternSeeds) {
            const std::vector<int> q = q5_pattern(seed);
            BlockQ5_0 b{};
            b.d = d.bits;
            place_q5_bits(q, b);
            expect_q5_pattern_discriminates(q, b.qh);
            std::vector<float> expected(32);
            for (int e = 0; e < 32; ++e) expected[e] = d.value * static_cast<float>(q[e] - 16);
            const std::string what = "Q5_0 d=" + std::to_string(d.value) + " seed " + std::to_string(seed);
            expect_values(decode(TensorType::Q5_0, b), expected, what);
            if (d.value != 0.0f) {
                expect_mutations_caught<BlockQ5_0>(
                    TensorType::Q5_0, b, expected,
                    {{"the nibble order swapped", [](BlockQ5_0& m) { swap_all_nibbles(m.qs); }},
                     {"qh read big-endian", [](BlockQ5_0& m) { std::reverse(m.qh, m.qh + 4); }},
                     {"qh bits read MSB first",
                      [](BlockQ5_0& m) {
                          for (auto& h : m.qh) h = reverse_bits(h);
                      }}},
                    what);
            }
        }
    }
}

TEST(QuantLayout, Q5_1) {
    for (const auto& [d, m] : kScalePairs) {
        for (int seed : kPatternSeeds) {
            const std::vector<int> q = q5_pattern(seed);
            BlockQ5_1 b{};
            b.d = d.bits;
            b.m = m.bits;
            place_q5_bits(q, b);
            expect_q5_pattern_discriminates(q, b.qh);
            std::vector<float> expected(32);
            for (int e = 0; e < 32; ++e) expected[e] = d.value * static_cast<float>(q[e]) + m.value;
            const std::string what = "Q5_1 d=" + std::to_string(d.value) + " m=" + std::to_string(m.value);
            expect_values(decode(TensorType::Q5_1, b), expected, what);
            if (std::isfinite(d.value) && std::isfinite(m.value) && d.value != 0.0f) {
                expect_mutations_caught<BlockQ5_1>(
                    TensorType::Q5_1, b, expected,
                    {{"the nibble order swapped", [](BlockQ5_1& x) { swap_all_nibbles(x.qs); }},
                     {"qh read big-endian", [](BlockQ5_1& x) { std::reverse(x.qh, x.qh + 4); }},
                     {"d and m swapped", [](BlockQ5_1& x) { std::swap(x.d, x.m); }}},
                    what);
            }
        }
    }
}

std::vector<int> q8_pattern(int n, int seed) {
    std::vector<int> q(n);
    for (int e = 0; e < n; ++e) q[e] = (37 * e + seed) % 256 - 128;  // distinct for n <= 256
    q[3] = -128;
    q[n - 5] = 127;
    q[n / 2] = 0;
    return q;
}

TEST(QuantLayout, Q8_0) {
    for (const Half& d : kSingleScales) {
        for (int seed : kPatternSeeds) {
            const std::vector<int> q = q8_pattern(32, seed);
            BlockQ8_0 b{};
            b.d = d.bits;
            for (int e = 0; e < 32; ++e) b.qs[e] = static_cast<int8_t>(q[e]);
            std::vector<float> expected(32);
            for (int e = 0; e < 32; ++e) expected[e] = d.value * static_cast<float>(q[e]);
            const std::string what = "Q8_0 d=" + std::to_string(d.value);
            expect_values(decode(TensorType::Q8_0, b), expected, what);
            if (d.value != 0.0f) {
                expect_mutations_caught<BlockQ8_0>(
                    TensorType::Q8_0, b, expected,
                    {{"the element order reversed", [](BlockQ8_0& m) { std::reverse(m.qs, m.qs + 32); }}}, what);
            }
        }
    }
}

TEST(QuantLayout, Q8_1) {
    for (const auto& [d, s] : kScalePairs) {
        const std::vector<int> q = q8_pattern(32, 5);
        BlockQ8_1 b{};
        b.d = d.bits;
        b.s = s.bits;  // the stored sum plays no part in reconstruction
        for (int e = 0; e < 32; ++e) b.qs[e] = static_cast<int8_t>(q[e]);
        std::vector<float> expected(32);
        for (int e = 0; e < 32; ++e) expected[e] = d.value * static_cast<float>(q[e]);
        const std::string what = "Q8_1 d=" + std::to_string(d.value);
        expect_values(decode(TensorType::Q8_1, b), expected, what);
        if (std::isfinite(d.value) && d.bits != s.bits) {
            expect_mutations_caught<BlockQ8_1>(TensorType::Q8_1, b, expected,
                                               {{"d and s swapped", [](BlockQ8_1& m) { std::swap(m.d, m.s); }}}, what);
        }
    }
}

// ----------------------------------------------------------------------------------------------------------------
// K-quants (super-blocks of 256)

// Position of element e (0..255) in the Q2_K/Q3_K quant arrays: half h = e / 128, field j = (e % 128) / 32 and lane
// l = e % 32; the 2-bit field is bits 2j..2j+1 of qs[32h + l].
struct Q2Position {
    int half, field, lane;
};
Q2Position q2_position(int e) { return {e / 128, (e % 128) / 32, e % 32}; }

TEST(QuantLayout, Q2_K) {
    for (const auto& [d, dmin] : kScalePairs) {
        for (int seed : kPatternSeeds) {
            // Sub-block k covers elements 16k..16k+15; scale and min are permutations of 0..15 that differ.
            int scale[16], min[16];
            for (int k = 0; k < 16; ++k) {
                scale[k] = (7 * k + seed) % 16;
                min[k] = (5 * k + 3 + seed) % 16;
            }
            std::vector<int> q(256);
            BlockQ2_K b{};
            b.d = d.bits;
            b.dmin = dmin.bits;
            for (int k = 0; k < 16; ++k) b.scales[k] = static_cast<uint8_t>(scale[k] | min[k] << 4);
            for (int e = 0; e < 256; ++e) {
                const Q2Position p = q2_position(e);
                q[e] = (p.field + p.lane + 3 * p.half + seed) % 4;  // the four fields of a byte always differ
                b.qs[32 * p.half + p.lane] = static_cast<uint8_t>(b.qs[32 * p.half + p.lane] | q[e] << (2 * p.field));
            }
            expect_covers_range(q, 0, 3, "Q2_K");
            std::vector<float> expected(256);
            for (int e = 0; e < 256; ++e) {
                expected[e] = d.value * static_cast<float>(scale[e / 16]) * static_cast<float>(q[e]) -
                              dmin.value * static_cast<float>(min[e / 16]);
            }
            const std::string what = "Q2_K d=" + std::to_string(d.value) + " dmin=" + std::to_string(dmin.value);
            expect_values(decode(TensorType::Q2_K, b), expected, what);
            if (std::isfinite(d.value) && std::isfinite(dmin.value) && d.value != 0.0f) {
                expect_mutations_caught<BlockQ2_K>(
                    TensorType::Q2_K, b, expected,
                    {{"scale and min nibbles swapped", [](BlockQ2_K& m) { swap_all_nibbles(m.scales); }},
                     {"2-bit fields read high first",
                      [](BlockQ2_K& m) {
                          for (auto& x : m.qs) x = reverse_bit_pairs(x);
                      }},
                     {"the two halves swapped", [](BlockQ2_K& m) { std::swap_ranges(m.qs, m.qs + 32, m.qs + 32); }},
                     {"d and dmin swapped", [](BlockQ2_K& m) { std::swap(m.d, m.dmin); }}},
                    what);
            }
        }
    }
}

TEST(QuantLayout, Q3_K) {
    // Sixteen distinct 6-bit signed scales covering both ends of -32..31.
    const int base_scales[16] = {-32, 31, 0, -1, 1, 16, -17, 15, -16, 30, -31, 7, -8, 23, -24, 2};
    for (const Half& d : kSingleScales) {
        for (int seed : kPatternSeeds) {
            int scale[16];
            for (int k = 0; k < 16; ++k) scale[k] = base_scales[(k + seed) % 16];
            BlockQ3_K b{};
            b.d = d.bits;
            // Scale k is stored as k+32 in 6 bits: low nibble in byte k (k < 8) or the high nibble of byte k-8, top
            // two bits at bits 2*(k/4) of byte 8 + k%4. Written out per scale rather than by formula.
            for (int k = 0; k < 16; ++k) {
                const int stored = scale[k] + 32;
                if (k < 8) {
                    b.scales[k] = static_cast<uint8_t>(b.scales[k] | (stored & 15));
                } else {
                    b.scales[k - 8] = static_cast<uint8_t>(b.scales[k - 8] | (stored & 15) << 4);
                }
                b.scales[8 + k % 4] = static_cast<uint8_t>(b.scales[8 + k % 4] | (stored >> 4) << (2 * (k / 4)));
            }
            // Quants -4..3: q + 4 = low2 | hbit << 2; a set hmask bit means "do not subtract 4".
            std::vector<int> q(256);
            for (int e = 0; e < 256; ++e) {
                const Q2Position p = q2_position(e);
                q[e] = (p.field + p.lane + 3 * p.half + seed) % 8 - 4;
                const int biased = q[e] + 4;
                b.qs[32 * p.half + p.lane] =
                    static_cast<uint8_t>(b.qs[32 * p.half + p.lane] | (biased & 3) << (2 * p.field));
                if (biased & 4) {
                    b.hmask[p.lane] = static_cast<uint8_t>(b.hmask[p.lane] | 1 << (4 * p.half + p.field));
                }
            }
            expect_covers_range(q, -4, 3, "Q3_K");
            std::vector<float> expected(256);
            for (int e = 0; e < 256; ++e) {
                expected[e] = d.value * static_cast<float>(scale[e / 16]) * static_cast<float>(q[e]);
            }
            const std::string what = "Q3_K d=" + std::to_string(d.value) + " seed " + std::to_string(seed);
            expect_values(decode(TensorType::Q3_K, b), expected, what);
            if (std::isfinite(d.value) && d.value != 0.0f) {
                expect_mutations_caught<BlockQ3_K>(TensorType::Q3_K, b, expected,
                                                   {{"hmask bits read MSB first",
                                                     [](BlockQ3_K& m) {
                                                         for (auto& h : m.hmask) h = reverse_bits(h);
                                                     }},
                                                    {"scale nibbles swapped",
                                                     [](BlockQ3_K& m) {
                                                         for (int i = 0; i < 8; ++i)
                                                             m.scales[i] = swap_nibbles(m.scales[i]);
                                                     }},
                                                    {"scale high bits taken from the wrong byte",
                                                     [](BlockQ3_K& m) { std::reverse(m.scales + 8, m.scales + 12); }},
                                                    {"scale high-bit pairs reversed",
                                                     [](BlockQ3_K& m) {
                                                         for (int i = 8; i < 12; ++i)
                                                             m.scales[i] = reverse_bit_pairs(m.scales[i]);
                                                     }},
                                                    {"2-bit fields read high first",
                                                     [](BlockQ3_K& m) {
                                                         for (auto& x : m.qs) x = reverse_bit_pairs(x);
                                                     }}},
                                                   what);
            }
        }
    }
}

// The Q4_K/Q5_K 12-byte packing, written per sub-block from the published description: sub-block k < 4 keeps its
// 6-bit scale in bits 0..5 of byte k and its min in bits 0..5 of byte k+4; sub-block k >= 4 keeps the low 4 bits of
// its scale in the low nibble of byte k+4, of its min in the high nibble of byte k+4, and the top 2 bits of its scale
// in bits 6..7 of byte k-4 and of its min in bits 6..7 of byte k.
void pack_k4_scales_for_test(const int scale[8], const int min[8], uint8_t out[12]) {
    std::memset(out, 0, 12);
    for (int k = 0; k < 8; ++k) {
        if (k < 4) {
            out[k] = static_cast<uint8_t>(out[k] | scale[k]);
            out[k + 4] = static_cast<uint8_t>(out[k + 4] | min[k]);
        } else {
            out[k + 4] = static_cast<uint8_t>(out[k + 4] | (scale[k] & 15) | (min[k] & 15) << 4);
            out[k - 4] = static_cast<uint8_t>(out[k - 4] | (scale[k] >> 4) << 6);
            out[k] = static_cast<uint8_t>(out[k] | (min[k] >> 4) << 6);
        }
    }
}

// Distinct 6-bit values per sub-block, 0 and 63 both present, and every top-2-bit pattern among sub-blocks 4..7.
const int kK4Scales[8] = {0, 63, 37, 5, 48, 17, 60, 33};
const int kK4Mins[8] = {63, 0, 21, 42, 7, 56, 35, 30};

TEST(QuantLayout, K4ScaleMinHelperMatchesPublishedPacking) {
    for (int seed = 0; seed < 8; ++seed) {
        int scale[8], min[8];
        for (int k = 0; k < 8; ++k) {
            scale[k] = kK4Scales[(k + seed) % 8];
            min[k] = kK4Mins[(k + 3 * seed) % 8];
        }
        uint8_t packed[12];
        pack_k4_scales_for_test(scale, min, packed);
        for (int k = 0; k < 8; ++k) {
            const ScaleMin sm = k4_scale_min(packed, k);
            EXPECT_EQ(sm.scale, scale[k]) << "sub-block " << k;
            EXPECT_EQ(sm.min, min[k]) << "sub-block " << k;
        }
        uint8_t sc8[8], mn8[8], repacked[12];
        for (int k = 0; k < 8; ++k) {
            sc8[k] = static_cast<uint8_t>(scale[k]);
            mn8[k] = static_cast<uint8_t>(min[k]);
        }
        k4_pack_scale_min(sc8, mn8, repacked);
        EXPECT_EQ(std::memcmp(packed, repacked, 12), 0);
    }
}

TEST(QuantLayout, Q3KScaleHelperRoundTripsEveryValue) {
    for (int v = -32; v <= 31; ++v) {
        for (int k = 0; k < 16; ++k) {
            int8_t scales[16];
            for (int i = 0; i < 16; ++i) scales[i] = static_cast<int8_t>(i == k ? v : (i * 11) % 64 - 32);
            uint8_t packed[12];
            q3k_pack_scales(scales, packed);
            for (int i = 0; i < 16; ++i) ASSERT_EQ(q3k_scale(packed, i), scales[i]) << "v " << v << " k " << k;
        }
    }
}

template <typename Block>
std::vector<Mutation<Block>> k4_scale_mutations() {
    return {
        {"scales and mins swapped", [](Block& m) { std::swap_ranges(m.scales, m.scales + 4, m.scales + 4); }},
        {"low-scale/low-min nibbles swapped",
         [](Block& m) {
             for (int i = 8; i < 12; ++i) m.scales[i] = swap_nibbles(m.scales[i]);
         }},
        {"sub-blocks 4..7 top bits dropped",
         [](Block& m) {
             for (int i = 0; i < 8; ++i) m.scales[i] &= 63;
         }},
        {"d and dmin swapped", [](Block& m) { std::swap(m.d, m.dmin); }},
        {"the nibble order swapped", [](Block& m) { swap_all_nibbles(m.qs); }},
    };
}

TEST(QuantLayout, Q4_K) {
    for (const auto& [d, dmin] : kScalePairs) {
        for (int seed : kPatternSeeds) {
            int scale[8], min[8];
            for (int k = 0; k < 8; ++k) {
                scale[k] = kK4Scales[(k + seed) % 8];
                min[k] = kK4Mins[(k + seed) % 8];
            }
            BlockQ4_K b{};
            b.d = d.bits;
            b.dmin = dmin.bits;
            pack_k4_scales_for_test(scale, min, b.scales);
            // Chunk c of 64: elements 64c..64c+31 are the low nibbles of qs[32c..32c+31], the next 32 the high ones.
            std::vector<int> q(256);
            for (int e = 0; e < 256; ++e) q[e] = (7 * e + e / 32 + seed) % 16;
            for (int e = 0; e < 256; ++e) {
                const int chunk = e / 64, within = e % 64;
                uint8_t& byte = b.qs[32 * chunk + within % 32];
                byte = static_cast<uint8_t>(byte | q[e] << (within < 32 ? 0 : 4));
            }
            for (uint8_t byte : b.qs) ASSERT_NE(byte & 15, byte >> 4);
            expect_covers_range(q, 0, 15, "Q4_K");
            std::vector<float> expected(256);
            for (int e = 0; e < 256; ++e) {
                expected[e] = d.value * static_cast<float>(scale[e / 32]) * static_cast<float>(q[e]) -
                              dmin.value * static_cast<float>(min[e / 32]);
            }
            const std::string what = "Q4_K d=" + std::to_string(d.value) + " dmin=" + std::to_string(dmin.value) +
                                     " seed " + std::to_string(seed);
            expect_values(decode(TensorType::Q4_K, b), expected, what);
            if (std::isfinite(d.value) && std::isfinite(dmin.value) && d.value != 0.0f && dmin.value != 0.0f) {
                expect_mutations_caught(TensorType::Q4_K, b, expected, k4_scale_mutations<BlockQ4_K>(), what);
            }
        }
    }
}

TEST(QuantLayout, Q5_K) {
    for (const auto& [d, dmin] : kScalePairs) {
        for (int seed : kPatternSeeds) {
            int scale[8], min[8];
            for (int k = 0; k < 8; ++k) {
                scale[k] = kK4Scales[(k + 2 * seed) % 8];
                min[k] = kK4Mins[(k + seed) % 8];
            }
            BlockQ5_K b{};
            b.d = d.bits;
            b.dmin = dmin.bits;
            pack_k4_scales_for_test(scale, min, b.scales);
            // Low 4 bits as Q4_K; the fifth bit of element 64c + l is bit 2c of qh[l], of 64c + 32 + l bit 2c + 1.
            std::vector<int> q(256);
            for (int e = 0; e < 256; ++e) q[e] = (13 * e + 5 * (e / 32) + seed) % 32;
            for (int e = 0; e < 256; ++e) {
                const int chunk = e / 64, within = e % 64, lane = within % 32, upper = within < 32 ? 0 : 1;
                b.qs[32 * chunk + lane] = static_cast<uint8_t>(b.qs[32 * chunk + lane] | (q[e] & 15) << (4 * upper));
                if (q[e] & 16) b.qh[lane] = static_cast<uint8_t>(b.qh[lane] | 1 << (2 * chunk + upper));
            }
            expect_covers_range(q, 0, 31, "Q5_K");
            for (uint8_t byte : b.qs) ASSERT_NE(byte & 15, byte >> 4);
            for (int k = 0; k < 8; ++k) {  // the fifth bit is both set and clear in every sub-block
                int set = 0;
                for (int i = 0; i < 32; ++i) set += (q[32 * k + i] & 16) ? 1 : 0;
                ASSERT_GT(set, 0);
                ASSERT_LT(set, 32);
            }
            std::vector<float> expected(256);
            for (int e = 0; e < 256; ++e) {
                expected[e] = d.value * static_cast<float>(scale[e / 32]) * static_cast<float>(q[e]) -
                              dmin.value * static_cast<float>(min[e / 32]);
            }
            const std::string what = "Q5_K d=" + std::to_string(d.value) + " dmin=" + std::to_string(dmin.value) +
                                     " seed " + std::to_string(seed);
            expect_values(decode(TensorType::Q5_K, b), expected, what);
            if (std::isfinite(d.value) && std::isfinite(dmin.value) && d.value != 0.0f && dmin.value != 0.0f) {
                std::vector<Mutation<BlockQ5_K>> mutations = k4_scale_mutations<BlockQ5_K>();
                mutations.push_back({"qh bit pairs read in the wrong order", [](BlockQ5_K& m) {
                                         for (auto& h : m.qh) h = reverse_bit_pairs(h);
                                     }});
                mutations.push_back({"qh bits of a pair swapped", [](BlockQ5_K& m) {
                                         for (auto& h : m.qh)
                                             h = static_cast<uint8_t>((h & 0x55) << 1 | (h & 0xAA) >> 1);
                                     }});
                expect_mutations_caught(TensorType::Q5_K, b, expected, mutations, what);
            }
        }
    }
}

TEST(QuantLayout, Q6_K) {
    const int base_scales[16] = {-128, 127, 0, 1, -1, 64, -65, 100, -3, 17, -100, 33, 90, -47, 5, -20};
    for (const Half& d : kSingleScales) {
        for (int seed : kPatternSeeds) {
            BlockQ6_K b{};
            b.d = d.bits;
            int scale[16];
            for (int k = 0; k < 16; ++k) {
                scale[k] = base_scales[(k + seed) % 16];
                b.scales[k] = static_cast<int8_t>(scale[k]);
            }
            // Quants 0..63 (value q - 32). In half h, quarter r = 0..3 and lane l: low 4 bits in ql[64h + l + 32*(r%2)]
            // (low nibble for r < 2, high nibble for r >= 2), top 2 bits at bits 2r of qh[32h + l].
            std::vector<int> q(256);
            for (int e = 0; e < 256; ++e) {
                q[e] = (29 * e + 5 * (e / 32) + seed) % 64;
                const int h = e / 128, r = (e % 128) / 32, l = e % 32;
                uint8_t& low = b.ql[64 * h + l + 32 * (r % 2)];
                low = static_cast<uint8_t>(low | (q[e] & 15) << (r < 2 ? 0 : 4));
                b.qh[32 * h + l] = static_cast<uint8_t>(b.qh[32 * h + l] | (q[e] >> 4) << (2 * r));
            }
            expect_covers_range(q, 0, 63, "Q6_K");
            for (uint8_t byte : b.ql) ASSERT_NE(byte & 15, byte >> 4);
            std::vector<float> expected(256);
            for (int e = 0; e < 256; ++e) {
                expected[e] = d.value * static_cast<float>(scale[e / 16]) * static_cast<float>(q[e] - 32);
            }
            const std::string what = "Q6_K d=" + std::to_string(d.value) + " seed " + std::to_string(seed);
            expect_values(decode(TensorType::Q6_K, b), expected, what);
            if (std::isfinite(d.value) && d.value != 0.0f) {
                expect_mutations_caught<BlockQ6_K>(
                    TensorType::Q6_K, b, expected,
                    {{"the nibble order swapped", [](BlockQ6_K& m) { swap_all_nibbles(m.ql); }},
                     {"ql quarters 0/1 swapped",
                      [](BlockQ6_K& m) {
                          for (int h = 0; h < 2; ++h)
                              std::swap_ranges(m.ql + 64 * h, m.ql + 64 * h + 32, m.ql + 64 * h + 32);
                      }},
                     {"qh bit pairs read in the wrong order",
                      [](BlockQ6_K& m) {
                          for (auto& x : m.qh) x = reverse_bit_pairs(x);
                      }},
                     {"scale index off by one sub-block",
                      [](BlockQ6_K& m) {
                          for (int k = 0; k < 16; k += 2) std::swap(m.scales[k], m.scales[k + 1]);
                      }}},
                    what);
            }
        }
    }
}

TEST(QuantLayout, Q8_K) {
    const std::vector<float> scales = {0.5f, -3.25e-3f, 1e-40f /* float32 subnormal */, 0.0f,
                                       std::numeric_limits<float>::infinity()};
    for (float d : scales) {
        for (int seed : kPatternSeeds) {
            const std::vector<int> q = q8_pattern(256, seed);
            BlockQ8_K b{};
            b.d = d;
            for (int e = 0; e < 256; ++e) b.qs[e] = static_cast<int8_t>(q[e]);
            for (int k = 0; k < 16; ++k) b.bsums[k] = static_cast<int16_t>(1000 * k - 7777);  // unused by decoding
            std::vector<float> expected(256);
            for (int e = 0; e < 256; ++e) expected[e] = d * static_cast<float>(q[e]);
            const std::string what = "Q8_K d=" + std::to_string(d);
            expect_values(decode(TensorType::Q8_K, b), expected, what);
            if (std::isfinite(d) && d != 0.0f) {
                expect_mutations_caught<BlockQ8_K>(
                    TensorType::Q8_K, b, expected,
                    {{"the element order reversed", [](BlockQ8_K& m) { std::reverse(m.qs, m.qs + 256); }}}, what);
            }
        }
    }
}

TEST(QuantLayout, RowsOfSeveralBlocksDecodeBlockByBlock) {
    // Three Q4_K blocks with different scales, decoded as one row, at an odd (unaligned) address.
    std::vector<unsigned char> storage(3 * sizeof(BlockQ4_K) + 1);
    unsigned char* row = storage.data() + 1;
    std::vector<float> expected;
    const Half ds[3] = {kOne, kMinusHalf, kTwo};
    for (int i = 0; i < 3; ++i) {
        BlockQ4_K b{};
        b.d = ds[i].bits;
        b.dmin = kZero.bits;
        int scale[8], min[8];
        for (int k = 0; k < 8; ++k) {
            scale[k] = k + 1;
            min[k] = 0;
        }
        pack_k4_scales_for_test(scale, min, b.scales);
        for (int l = 0; l < 128; ++l) b.qs[l] = static_cast<uint8_t>(i + 1);  // low nibble i+1, high nibble 0
        std::memcpy(row + i * sizeof(BlockQ4_K), &b, sizeof(b));
        for (int e = 0; e < 256; ++e) {
            const int qv = (e % 64) < 32 ? i + 1 : 0;
            expected.push_back(ds[i].value * static_cast<float>(scale[e / 32]) * static_cast<float>(qv));
        }
    }
    std::vector<float> y(768);
    dequantize_row(TensorType::Q4_K, row, y.data(), 768);
    expect_values(y, expected, "three Q4_K blocks");
}

// ----------------------------------------------------------------------------------------------------------------
// Argument checking

TEST(QuantArguments, RowLengthMustBeAMultipleOfTheBlock) {
    std::vector<unsigned char> bytes(4096);
    std::vector<float> floats(1024);
    const TensorType all[] = {TensorType::Q4_0, TensorType::Q4_1, TensorType::Q5_0, TensorType::Q5_1,
                              TensorType::Q8_0, TensorType::Q8_1, TensorType::Q2_K, TensorType::Q3_K,
                              TensorType::Q4_K, TensorType::Q5_K, TensorType::Q6_K, TensorType::Q8_K};
    for (TensorType t : all) {
        const int64_t block = traits(t).block_elems;
        for (int64_t n : {block - 1, block + 1, int64_t{-block}, int64_t{-1}}) {
            try {
                dequantize_row(t, bytes.data(), floats.data(), n);
                ADD_FAILURE() << type_name(t) << " dequantize_row accepted n = " << n;
            } catch (const Error& e) {
                EXPECT_EQ(e.code(), ErrorCode::InvalidArgument);
            }
            try {
                quantize_row(t, floats.data(), bytes.data(), n);
                ADD_FAILURE() << type_name(t) << " quantize_row accepted n = " << n;
            } catch (const Error& e) {
                EXPECT_EQ(e.code(), ErrorCode::InvalidArgument);
            }
        }
        EXPECT_NO_THROW(dequantize_row(t, bytes.data(), floats.data(), 0));
    }
    EXPECT_THROW(dequantize_row(TensorType::F16, bytes.data(), floats.data(), -2), Error);
}

TEST(QuantArguments, UnknownTypeIsUnsupported) {
    const auto unknown = static_cast<TensorType>(99);
    float x[32] = {};
    unsigned char out[256] = {};
    EXPECT_FALSE(can_quantize(unknown));
    try {
        quantize_row(unknown, x, out, 32);
        ADD_FAILURE() << "quantize_row accepted an unknown type";
    } catch (const Error& e) {
        EXPECT_EQ(e.code(), ErrorCode::UnsupportedTensorType);
    }
    try {
        dequantize_row(unknown, out, x, 32);
        ADD_FAILURE() << "dequantize_row accepted an unknown type";
    } catch (const Error& e) {
        EXPECT_EQ(e.code(), ErrorCode::UnsupportedTensorType);
    }
}

// visit_format finds each quantized type's format through AllFormats: the format it calls fn with has that type and
// the block geometry of the GGUF specification (elements, bytes; written out here, not read from gguf/types.h); the
// float types and unknown ids call nothing and return false.
TEST(QuantRegistry, VisitFormatCallsTheFormatOfEachQuantizedTypeOnce) {
    struct Geometry {
        uint32_t raw, elems, bytes;
    };
    const Geometry quantized[] = {{2, 32, 18},    {3, 32, 20},    {6, 32, 22},    {7, 32, 24},
                                  {8, 32, 34},    {9, 32, 36},    {10, 256, 84},  {11, 256, 110},
                                  {12, 256, 144}, {13, 256, 176}, {14, 256, 210}, {15, 256, 292}};
    for (uint32_t raw = 0; raw < 100; ++raw) {
        SCOPED_TRACE(raw);
        int calls = 0;
        TensorType seen{};
        size_t elems = 0, bytes = 0;
        const bool found = visit_format(static_cast<TensorType>(raw), [&]<typename F>(F) {
            ++calls;
            seen = F::kType;
            elems = F::kBlockElems;
            bytes = sizeof(typename F::Block);
        });
        const Geometry* want = nullptr;
        for (const Geometry& g : quantized)
            if (g.raw == raw) want = &g;
        EXPECT_EQ(found, want != nullptr);
        EXPECT_EQ(calls, want ? 1 : 0);
        if (!want) continue;
        EXPECT_EQ(static_cast<uint32_t>(seen), raw);
        EXPECT_EQ(elems, want->elems);
        EXPECT_EQ(bytes, want->bytes);
    }
}

TEST(QuantArguments, TheRequiredQuantizersExist) {
    for (TensorType t :
         {TensorType::F32, TensorType::F16, TensorType::BF16, TensorType::Q4_0, TensorType::Q4_1, TensorType::Q5_0,
          TensorType::Q5_1, TensorType::Q8_0, TensorType::Q8_K, TensorType::Q4_K, TensorType::Q5_K, TensorType::Q6_K}) {
        EXPECT_TRUE(can_quantize(t)) << type_name(t);
    }
}

// ----------------------------------------------------------------------------------------------------------------
// Round trips

// Test data: 256-element blocks (a multiple of every block size) of many kinds, each kind at several magnitudes.
struct Scenario {
    std::string name;
    std::vector<float> x;
};

std::vector<Scenario> make_scenarios() {
    std::mt19937 rng(20251123);
    std::normal_distribution<float> normal(0.0f, 1.0f);
    std::uniform_real_distribution<float> uniform(-1.0f, 1.0f);
    std::vector<Scenario> out;
    const int blocks = 24;
    for (float magnitude : {1.0f, 1e-3f, 1e-6f, 300.0f, 5000.0f}) {
        const std::string m = " x" + std::to_string(magnitude);
        Scenario gauss{"gaussian" + m, {}}, unif{"uniform" + m, {}}, pos{"positive" + m, {}}, neg{"negative" + m, {}},
            spike{"spike" + m, {}}, shifted{"shifted" + m, {}};
        for (int i = 0; i < 256 * blocks; ++i) {
            gauss.x.push_back(magnitude * normal(rng));
            unif.x.push_back(magnitude * uniform(rng));
            pos.x.push_back(magnitude * (1.5f + uniform(rng)));
            neg.x.push_back(-magnitude * (1.5f + uniform(rng)));
            // One large element per 32 among small ones, alternating sign: the extremum decides the grid.
            spike.x.push_back(i % 32 == 5 ? magnitude * ((i / 32) % 2 ? 8.0f : -8.0f)
                                          : 0.05f * magnitude * normal(rng));
            shifted.x.push_back(magnitude * (0.25f * normal(rng) + ((i / 256) % 2 ? 3.0f : -3.0f)));
        }
        for (Scenario* s : {&gauss, &unif, &pos, &neg, &spike, &shifted}) out.push_back(std::move(*s));
    }
    Scenario zeros{"zeros", std::vector<float>(256 * 4, 0.0f)};
    Scenario constants{"constants", {}};
    for (float c : {1.0f, -7.0f, 0.1f, -1e-7f, 3e4f, -2.5e-5f}) constants.x.insert(constants.x.end(), 256, c);
    Scenario alternating{"alternating extremes", {}};
    for (int i = 0; i < 512; ++i) alternating.x.push_back(i % 2 ? 1000.0f : -1000.0f);
    out.push_back(std::move(zeros));
    out.push_back(std::move(constants));
    out.push_back(std::move(alternating));
    return out;
}

const std::vector<Scenario>& scenarios() {
    static const std::vector<Scenario> s = make_scenarios();
    return s;
}

// Rounding a positive value up to the next half costs at most 2^-10 relative (normal halves) or one subnormal step of
// 2^-24 (absolute); this bounds every stored half scale from above in terms of the ideal one.
float half_rounded_up(float v) { return v * (1.0f + 1.0f / 1024.0f) + 5.9604645e-8f; }

float max_abs_of(const float* x, int n) {
    float m = 0.0f;
    for (int i = 0; i < n; ++i) m = std::max(m, std::fabs(x[i]));
    return m;
}
float signed_extremum_of(const float* x, int n) {
    float best = 0.0f;
    for (int i = 0; i < n; ++i) {
        if (std::fabs(x[i]) > std::fabs(best)) best = x[i];
    }
    return best;
}

// Symmetric grid q*S, q in [-N, N-1], with S >= step := amax/N (the extremum must stay reachable) and S <= S_max.
// Elements reachable on the grid are off by at most S/2; an element on the opposite side of the extremum beyond
// (N-1)*S is clipped to (N-1)*S >= (N-1)*step, so its error is at most |x| - (N-1)*step.
float symmetric_bound(float x, float extremum, float step, float s_max, int levels_below) {
    const bool opposite = (x > 0.0f && extremum < 0.0f) || (x < 0.0f && extremum > 0.0f);
    const float clip = opposite ? std::fabs(x) - static_cast<float>(levels_below - 1) * step : 0.0f;
    return std::max(s_max / 2.0f, clip);
}

// Per-element error bounds for one block of `type`, derived from the data.
std::vector<float> error_bounds(TensorType type, const float* x) {
    const int n = static_cast<int>(traits(type).block_elems);
    std::vector<float> bound(n);
    switch (type) {
        case TensorType::Q8_0:
        case TensorType::Q8_1: {
            // d = amax/127 rounded up to a half; q = round(x/d) never clips: |err| <= d/2.
            const float d = half_rounded_up(max_abs_of(x, n) / 127.0f);
            for (int i = 0; i < n; ++i) bound[i] = d / 2.0f;
            break;
        }
        case TensorType::Q8_K: {
            // float32 d = amax/127 exactly: |err| <= d/2.
            const float d = max_abs_of(x, n) / 127.0f;
            for (int i = 0; i < n; ++i) bound[i] = d / 2.0f;
            break;
        }
        case TensorType::Q4_0:
        case TensorType::Q5_0: {
            // |d| = amax/N rounded up (N = 8 or 16), extremum mapped to -N.
            const int levels = type == TensorType::Q4_0 ? 8 : 16;
            const float step = max_abs_of(x, n) / static_cast<float>(levels);
            const float v = signed_extremum_of(x, n);
            for (int i = 0; i < n; ++i) bound[i] = symmetric_bound(x[i], v, step, half_rounded_up(step), levels);
            break;
        }
        case TensorType::Q4_1:
        case TensorType::Q5_1: {
            // m = min rounded down to a half (at most 2^-10*|min| + 2^-24 below it), d = (max - m)/q_max rounded up;
            // the grid m..m + q_max*d covers the block, so |err| <= d/2.
            const int q_max = type == TensorType::Q4_1 ? 15 : 31;
            const float lo = *std::min_element(x, x + n), hi = *std::max_element(x, x + n);
            const float m_slack = std::fabs(lo) / 1024.0f + 5.9604645e-8f;
            const float d = half_rounded_up((hi - lo + m_slack) / static_cast<float>(q_max));
            for (int i = 0; i < n; ++i) bound[i] = d / 2.0f;
            break;
        }
        case TensorType::Q2_K:
        case TensorType::Q4_K:
        case TensorType::Q5_K: {
            // Sub-block k: offset o_k = -min(0, min_k), stored as dmin*m_k with m_k = ceil(o_k/dmin), so it exceeds
            // o_k by < dmin, dmin = max(o)/code_max rounded up. The step must reach max_k from the stored offset:
            // need_k = (max_k + o_k + dmin)/q_max at most, and the stored step d*sc_k (sc_k = ceil(need_k/d),
            // d = max(need)/code_max rounded up) exceeds it by < d. The grid covers the sub-block: |err| <= step/2.
            const int sub_len = type == TensorType::Q2_K ? 16 : 32;
            const int q_max = type == TensorType::Q2_K ? 3 : type == TensorType::Q4_K ? 15 : 31;
            const int code_max = type == TensorType::Q2_K ? 15 : 63;
            const int n_sub = n / sub_len;
            std::vector<float> offset(n_sub), high(n_sub), need(n_sub);
            float max_offset = 0.0f;
            for (int k = 0; k < n_sub; ++k) {
                const float* s = x + k * sub_len;
                offset[k] = -std::min(0.0f, *std::min_element(s, s + sub_len));
                high[k] = *std::max_element(s, s + sub_len);
                max_offset = std::max(max_offset, offset[k]);
            }
            const float dmin = half_rounded_up(max_offset / static_cast<float>(code_max));
            float max_need = 0.0f;
            for (int k = 0; k < n_sub; ++k) {
                need[k] = (high[k] + offset[k] + dmin) / static_cast<float>(q_max);
                max_need = std::max(max_need, need[k]);
            }
            const float d = half_rounded_up(max_need / static_cast<float>(code_max));
            for (int i = 0; i < n; ++i) bound[i] = (need[i / sub_len] + d) / 2.0f;
            break;
        }
        case TensorType::Q3_K:
        case TensorType::Q6_K: {
            // Sub-block k: step_k = amax_k/N (N = 4 or 32, extremum on -N), stored as d*|sc_k| with
            // sc_k = ceil(step_k/d), d = max(step)/code_max rounded up: step_k <= S_k < step_k + d.
            const int levels = type == TensorType::Q3_K ? 4 : 32;
            const int code_max = type == TensorType::Q3_K ? 31 : 127;
            std::vector<float> step(16), extremum(16);
            float max_step = 0.0f;
            for (int k = 0; k < 16; ++k) {
                step[k] = max_abs_of(x + 16 * k, 16) / static_cast<float>(levels);
                extremum[k] = signed_extremum_of(x + 16 * k, 16);
                max_step = std::max(max_step, step[k]);
            }
            const float d = half_rounded_up(max_step / static_cast<float>(code_max));
            for (int i = 0; i < n; ++i) {
                const int k = i / 16;
                bound[i] = symmetric_bound(x[i], extremum[k], step[k], step[k] + d, levels);
            }
            break;
        }
        default: break;
    }
    return bound;
}

const TensorType kQuantizedTypes[] = {TensorType::Q4_0, TensorType::Q4_1, TensorType::Q5_0, TensorType::Q5_1,
                                      TensorType::Q8_0, TensorType::Q8_1, TensorType::Q2_K, TensorType::Q3_K,
                                      TensorType::Q4_K, TensorType::Q5_K, TensorType::Q6_K, TensorType::Q8_K};

std::vector<float> round_trip(TensorType type, const std::vector<float>& x) {
    std::vector<unsigned char> bytes(row_bytes(type, x.size()));
    quantize_row(type, x.data(), bytes.data(), static_cast<int64_t>(x.size()));
    std::vector<float> y(x.size());
    dequantize_row(type, bytes.data(), y.data(), static_cast<int64_t>(x.size()));
    return y;
}

class QuantRoundTrip : public ::testing::TestWithParam<TensorType> {};

TEST_P(QuantRoundTrip, EveryElementWithinTheFormatBound) {
    const TensorType type = GetParam();
    const int block = static_cast<int>(traits(type).block_elems);
    for (const Scenario& s : scenarios()) {
        const std::vector<float> y = round_trip(type, s.x);
        int failures = 0;
        for (size_t b0 = 0; b0 < s.x.size(); b0 += block) {
            const std::vector<float> bound = error_bounds(type, s.x.data() + b0);
            // Float arithmetic in the quantizer (x*(1/step), offsets) and the decoder adds a few ulps of the
            // block's magnitude on top of the format bound.
            const float slack = 4e-7f * max_abs_of(s.x.data() + b0, block) + 1e-30f;
            for (int i = 0; i < block; ++i) {
                const float err = std::fabs(y[b0 + i] - s.x[b0 + i]);
                if (!(err <= bound[i] + slack) && ++failures <= 3) {
                    ADD_FAILURE() << type_name(type) << " " << s.name << " element " << b0 + i
                                  << ": x = " << s.x[b0 + i] << ", got " << y[b0 + i] << ", |err| " << err
                                  << " > bound " << bound[i] + slack;
                }
            }
        }
        EXPECT_EQ(failures, 0) << type_name(type) << " " << s.name;
    }
}

TEST_P(QuantRoundTrip, ZerosStayExactlyZero) {
    const std::vector<float> x(1024, 0.0f);
    for (float v : round_trip(GetParam(), x)) ASSERT_EQ(v, 0.0f);
}

TEST_P(QuantRoundTrip, OutOfRangeInputsSaturateInsteadOfTurningNonFinite) {
    std::mt19937 rng(7);
    std::normal_distribution<float> normal(0.0f, 1e12f);
    std::vector<float> x(512);
    for (float& v : x) v = normal(rng);
    for (float v : round_trip(GetParam(), x)) ASSERT_TRUE(std::isfinite(v));
}

// The quantizers promise memory safety, not meaningful output, for NaN and infinities: under the sanitizer build this
// also shows that no float-to-int conversion of a NaN or an out-of-range value happens.
TEST_P(QuantRoundTrip, NonFiniteInputsAreHandledSafely) {
    std::vector<float> x(512, 1.0f);
    for (size_t i = 0; i < x.size(); i += 7) x[i] = std::numeric_limits<float>::quiet_NaN();
    for (size_t i = 3; i < x.size(); i += 11) x[i] = std::numeric_limits<float>::infinity();
    for (size_t i = 5; i < x.size(); i += 13) x[i] = -std::numeric_limits<float>::infinity();
    x[0] = std::numeric_limits<float>::quiet_NaN();  // a NaN first, where min/max scans start
    const std::vector<float> y = round_trip(GetParam(), x);
    EXPECT_EQ(y.size(), x.size());
}

TEST_P(QuantRoundTrip, IsDeterministic) {
    const TensorType type = GetParam();
    const std::vector<float>& x = scenarios().front().x;
    std::vector<unsigned char> a(row_bytes(type, x.size())), b(a.size(), 0xAB);
    quantize_row(type, x.data(), a.data(), static_cast<int64_t>(x.size()));
    quantize_row(type, x.data(), b.data(), static_cast<int64_t>(x.size()));
    EXPECT_EQ(a, b);
}

// Uniform rounding error over a step S has RMS S/sqrt(12). For Gaussian data every sub-block step is at most
// (block range + a small rounding margin)/q_max, so the RMS error over all blocks must stay below
// range/(q_max*sqrt(12)) with a margin; the scales actually chosen are smaller (sub-block ranges are narrower), so
// this also catches a quantizer that wastes levels badly.
TEST_P(QuantRoundTrip, RmsErrorRelativeToBlockRange) {
    const TensorType type = GetParam();
    // Affine formats span [min, max] with q_max steps; symmetric ones span [-amax, amax] with 2N steps (Q8: 254).
    int q_levels = 0;
    bool symmetric = true;
    switch (type) {
        case TensorType::Q4_1:
        case TensorType::Q4_K:
            q_levels = 15;
            symmetric = false;
            break;
        case TensorType::Q5_1:
        case TensorType::Q5_K:
            q_levels = 31;
            symmetric = false;
            break;
        case TensorType::Q2_K:
            q_levels = 3;
            symmetric = false;
            break;
        case TensorType::Q4_0: q_levels = 16; break;
        case TensorType::Q5_0: q_levels = 32; break;
        case TensorType::Q3_K: q_levels = 8; break;
        case TensorType::Q6_K: q_levels = 64; break;
        default: q_levels = 254; break;
    }
    const int block = static_cast<int>(traits(type).block_elems);
    const std::vector<float>& x = scenarios().front().x;  // gaussian x1
    const std::vector<float> y = round_trip(type, x);
    double err2 = 0.0, bound2 = 0.0;
    for (size_t b0 = 0; b0 < x.size(); b0 += block) {
        const float range = symmetric ? 2.0f * max_abs_of(x.data() + b0, block)
                                      : *std::max_element(x.begin() + b0, x.begin() + b0 + block) -
                                            *std::min_element(x.begin() + b0, x.begin() + b0 + block);
        const double step = range / q_levels;
        bound2 += block * step * step / 12.0;
        for (int i = 0; i < block; ++i) err2 += std::pow(double{y[b0 + i]} - x[b0 + i], 2);
    }
    EXPECT_LE(std::sqrt(err2), 1.1 * std::sqrt(bound2)) << type_name(type);
}

INSTANTIATE_TEST_SUITE_P(AllBlockTypes, QuantRoundTrip, ::testing::ValuesIn(kQuantizedTypes),
                         [](const ::testing::TestParamInfo<TensorType>& info) {
                             return std::string(type_name(info.param));
                         });

TEST(QuantRoundTripQuality, GaussianRelativeRmsIsInTheUsualRange) {
    // A regression guard on quality, not a format bound: relative RMS error on N(0,1) weights, with ceilings a bit
    // above what these quantizers measure (GGML's reference quantizers land in the same range).
    const std::vector<float>& x = scenarios().front().x;
    const std::vector<std::pair<TensorType, double>> ceilings = {
        {TensorType::Q4_0, 0.12},  {TensorType::Q4_1, 0.11}, {TensorType::Q5_0, 0.06}, {TensorType::Q5_1, 0.055},
        {TensorType::Q8_0, 0.006}, {TensorType::Q2_K, 0.45}, {TensorType::Q3_K, 0.25}, {TensorType::Q4_K, 0.11},
        {TensorType::Q5_K, 0.055}, {TensorType::Q6_K, 0.03}, {TensorType::Q8_K, 0.008}};
    for (const auto& [type, ceiling] : ceilings) {
        const std::vector<float> y = round_trip(type, x);
        double err2 = 0.0, sig2 = 0.0;
        for (size_t i = 0; i < x.size(); ++i) {
            err2 += std::pow(double{y[i]} - x[i], 2);
            sig2 += double{x[i]} * x[i];
        }
        const double rel = std::sqrt(err2 / sig2);
        EXPECT_LE(rel, ceiling) << type_name(type);
        std::printf("  %-5s relative RMS error on N(0,1): %.4f\n", std::string(type_name(type)).c_str(), rel);
    }
}

TEST(QuantRoundTripFloat, F16IsExactWhereRepresentableAndRoundsToNearestElsewhere) {
    // Every finite half bit pattern survives float -> half unchanged.
    std::vector<float> x;
    std::vector<uint16_t> bits;
    for (uint32_t h = 0; h < 0x10000; ++h) {
        if ((h & 0x7C00) == 0x7C00) continue;  // inf / nan
        bits.push_back(static_cast<uint16_t>(h));
    }
    x.resize(bits.size());
    dequantize_row(TensorType::F16, bits.data(), x.data(), static_cast<int64_t>(x.size()));
    std::vector<uint16_t> back(bits.size());
    quantize_row(TensorType::F16, x.data(), back.data(), static_cast<int64_t>(x.size()));
    EXPECT_EQ(back, bits);

    // Random floats in the normal half range: relative error at most 2^-11 (half an ulp of a 10-bit fraction).
    std::mt19937 rng(11);
    std::uniform_real_distribution<float> exponent(-14.0f, 15.0f), sign(-1.0f, 1.0f);
    std::vector<float> r(4096);
    for (float& v : r) v = std::copysign(std::exp2(exponent(rng)), sign(rng));
    std::vector<uint16_t> packed(r.size());
    quantize_row(TensorType::F16, r.data(), packed.data(), static_cast<int64_t>(r.size()));
    std::vector<float> y(r.size());
    dequantize_row(TensorType::F16, packed.data(), y.data(), static_cast<int64_t>(r.size()));
    for (size_t i = 0; i < r.size(); ++i) ASSERT_LE(std::fabs(y[i] - r[i]), std::fabs(r[i]) / 2048.0f) << r[i];
}

TEST(QuantRoundTripFloat, BF16IsExactWhereRepresentableAndRoundsToNearestElsewhere) {
    std::vector<uint16_t> bits;
    for (uint32_t h = 0; h < 0x10000; ++h) {
        if ((h & 0x7F80) == 0x7F80) continue;  // inf / nan
        bits.push_back(static_cast<uint16_t>(h));
    }
    std::vector<float> x(bits.size());
    dequantize_row(TensorType::BF16, bits.data(), x.data(), static_cast<int64_t>(x.size()));
    std::vector<uint16_t> back(bits.size());
    quantize_row(TensorType::BF16, x.data(), back.data(), static_cast<int64_t>(x.size()));
    EXPECT_EQ(back, bits);

    // Random normal floats: relative error at most 2^-8 (half an ulp of a 7-bit fraction).
    std::mt19937 rng(12);
    std::uniform_real_distribution<float> exponent(-100.0f, 100.0f), sign(-1.0f, 1.0f);
    std::vector<float> r(4096);
    for (float& v : r) v = std::copysign(std::exp2(exponent(rng)), sign(rng));
    std::vector<uint16_t> packed(r.size());
    quantize_row(TensorType::BF16, r.data(), packed.data(), static_cast<int64_t>(r.size()));
    std::vector<float> y(r.size());
    dequantize_row(TensorType::BF16, packed.data(), y.data(), static_cast<int64_t>(r.size()));
    for (size_t i = 0; i < r.size(); ++i) ASSERT_LE(std::fabs(y[i] - r[i]), std::fabs(r[i]) / 256.0f) << r[i];
}

TEST(QuantSideData, Q8_1SumAndQ8_KBlockSumsMatchTheQuants) {
    std::mt19937 rng(3);
    std::normal_distribution<float> normal(0.0f, 2.0f);
    std::vector<float> x(512);
    for (float& v : x) v = normal(rng);

    std::vector<BlockQ8_1> q81(512 / 32);
    quantize_row(TensorType::Q8_1, x.data(), q81.data(), 512);
    for (const BlockQ8_1& b : q81) {
        int sum = 0;
        for (int8_t q : b.qs) sum += q;
        const float expected = fp16_to_fp32(b.d) * static_cast<float>(sum);
        EXPECT_NEAR(fp16_to_fp32(b.s), expected, std::fabs(expected) / 1024.0f + 1e-6f);
    }

    std::vector<BlockQ8_K> q8k(2);
    quantize_row(TensorType::Q8_K, x.data(), q8k.data(), 512);
    for (const BlockQ8_K& b : q8k) {
        for (int k = 0; k < 16; ++k) {
            int sum = 0;
            for (int i = 0; i < 16; ++i) sum += b.qs[16 * k + i];
            EXPECT_EQ(b.bsums[k], sum) << "group " << k;
        }
    }
}

}  // namespace
}  // namespace orcd::quant
