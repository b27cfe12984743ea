// Every weight type's matmul against the f32 product on the weights as the GGUF reference dequantizer
// (quant::dequantize_row, written independently of these kernels) decodes them, accumulated in f64.
//
// The bound (derived in quant_dot.h): quantizing the activation moves each x_j by at most d_b / 2, with
// d_b = max_{j in block b} |x_j| / 127 over blocks of 32, so for a weight row w
//     |y - y_ref| <= sum_b (d_b / 2) * sum_{j in b} |w_j|  +  f32 accumulation error.
// The f32 accumulation adds at most (k + 16) * 2^-24 * sum_j |w_j x_j| where k is the longest chain of sequential
// float additions (n / 16 for the AVX2 float kernels, n for the scalar ones, n / 32 chunk terms for the quantized
// kernels, whose per-block sums are exact integers); we allow twice that.
// A second, tighter check multiplies the decoded weights with the activation exactly as the kernels quantized it, so
// that only float rounding remains (see below).
// Float weight types do not quantize the activation, so for them only the accumulation term applies: a tight bound
// that catches a single wrong element.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <cstring>
#include <random>
#include <vector>

#include "backend/cpu/matmul.h"
#include "backend/cpu/quant_dot.h"
#include "common/error.h"
#include "common/half.h"
#include "quant/convert.h"
#include "quant/formats.h"

namespace orcd::backend::cpu {
namespace {

using gguf::TensorType;

const TensorType kQuantTypes[] = {TensorType::Q4_0, TensorType::Q4_1, TensorType::Q5_0, TensorType::Q5_1,
                                  TensorType::Q8_0, TensorType::Q2_K, TensorType::Q3_K, TensorType::Q4_K,
                                  TensorType::Q5_K, TensorType::Q6_K};
const TensorType kFloatTypes[] = {TensorType::F32, TensorType::F16, TensorType::BF16};

std::vector<float> normal(size_t n, std::mt19937& rng, float sigma = 1.f) {
    std::normal_distribution<float> dist(0.f, sigma);
    std::vector<float> v(n);
    for (auto& x : v) x = dist(rng);
    return v;
}

// Weights encoded by the library's quantizer from normal data (realistic blocks).
std::vector<std::byte> quantized_weights(TensorType t, int64_t rows, int64_t cols, std::mt19937& rng) {
    const auto w = normal(static_cast<size_t>(rows * cols), rng, 0.05f);
    const uint64_t rb = gguf::row_bytes(t, static_cast<uint64_t>(cols));
    std::vector<std::byte> out(rb * static_cast<uint64_t>(rows));
    for (int64_t r = 0; r < rows; ++r) quant::quantize_row(t, w.data() + r * cols, out.data() + r * rb, cols);
    return out;
}

// Random block bytes: every bit pattern of the quantized fields (extreme nibbles, Q8_0's -128, 6-bit scales up to
// 63), with the half-precision scale fields replaced by finite random values.
std::vector<std::byte> random_blocks(TensorType t, int64_t rows, int64_t cols, std::mt19937& rng) {
    const gguf::TypeTraits& tt = gguf::traits(t);
    const uint64_t n_blocks = static_cast<uint64_t>(rows * cols) / tt.block_elems;
    std::vector<std::byte> out(n_blocks * tt.block_bytes);
    std::uniform_int_distribution<int> byte(0, 255);
    for (auto& b : out) b = static_cast<std::byte>(byte(rng));
    std::uniform_real_distribution<float> scale(-0.02f, 0.02f);
    auto set_half = [&](std::byte* blk, size_t offset) {
        const uint16_t h = fp32_to_fp16(scale(rng));
        std::memcpy(blk + offset, &h, 2);
    };
    for (uint64_t i = 0; i < n_blocks; ++i) {
        std::byte* blk = out.data() + i * tt.block_bytes;
        switch (t) {
            case TensorType::Q4_0: set_half(blk, offsetof(quant::BlockQ4_0, d)); break;
            case TensorType::Q4_1:
                set_half(blk, offsetof(quant::BlockQ4_1, d));
                set_half(blk, offsetof(quant::BlockQ4_1, m));
                break;
            case TensorType::Q5_0: set_half(blk, offsetof(quant::BlockQ5_0, d)); break;
            case TensorType::Q5_1:
                set_half(blk, offsetof(quant::BlockQ5_1, d));
                set_half(blk, offsetof(quant::BlockQ5_1, m));
                break;
            case TensorType::Q8_0: set_half(blk, offsetof(quant::BlockQ8_0, d)); break;
            case TensorType::Q2_K:
                set_half(blk, offsetof(quant::BlockQ2_K, d));
                set_half(blk, offsetof(quant::BlockQ2_K, dmin));
                break;
            case TensorType::Q3_K: set_half(blk, offsetof(quant::BlockQ3_K, d)); break;
            case TensorType::Q4_K:
                set_half(blk, offsetof(quant::BlockQ4_K, d));
                set_half(blk, offsetof(quant::BlockQ4_K, dmin));
                break;
            case TensorType::Q5_K:
                set_half(blk, offsetof(quant::BlockQ5_K, d));
                set_half(blk, offsetof(quant::BlockQ5_K, dmin));
                break;
            case TensorType::Q6_K: set_half(blk, offsetof(quant::BlockQ6_K, d)); break;
            default: ADD_FAILURE() << "no random blocks for " << gguf::type_name(t);
        }
    }
    return out;
}

std::vector<std::byte> float_weights(TensorType t, int64_t rows, int64_t cols, std::mt19937& rng) {
    const auto w = normal(static_cast<size_t>(rows * cols), rng, 0.05f);
    std::vector<std::byte> out(gguf::row_bytes(t, static_cast<uint64_t>(cols)) * static_cast<uint64_t>(rows));
    for (size_t i = 0; i < w.size(); ++i) {
        if (t == TensorType::F32) {
            std::memcpy(out.data() + 4 * i, &w[i], 4);
        } else {
            const uint16_t h = t == TensorType::F16 ? fp32_to_fp16(w[i]) : fp32_to_bf16(w[i]);
            std::memcpy(out.data() + 2 * i, &h, 2);
        }
    }
    return out;
}

struct Shape {
    int64_t rows, cols, tokens;
};

// Checks matmul (and matmul_scalar) of `bytes` against the f64 reference on the dequantized weights.
void check(TensorType t, const std::vector<std::byte>& bytes, Shape s, std::mt19937& rng, ThreadPool& pool) {
    SCOPED_TRACE(testing::Message() << gguf::type_name(t) << " rows=" << s.rows << " cols=" << s.cols
                                    << " tokens=" << s.tokens);
    const WeightView w{t, bytes.data(), s.rows, s.cols};
    check_matmul_weight(w, "test");
    // Activations with outliers, like real hidden states: most blocks' scale is set by one large value.
    auto x = normal(static_cast<size_t>(s.tokens * s.cols), rng);
    for (size_t i = 0; i < x.size(); i += 97) x[i] *= 8.f;

    std::vector<float> deq(static_cast<size_t>(s.rows * s.cols));
    for (int64_t r = 0; r < s.rows; ++r) quant::dequantize_row(t, w.row(r), deq.data() + r * s.cols, s.cols);

    std::vector<float> y(static_cast<size_t>(s.tokens * s.rows), NAN), ys(y.size(), NAN);
    matmul(w, x.data(), s.tokens, y.data(), pool);
    matmul_scalar(w, x.data(), s.tokens, ys.data(), pool);

    const bool quant = uses_quantized_activation(t);
    const double u = std::ldexp(1.0, -24);
    // The activation as the kernels see it (quantize_activation is checked on its own below): the product of the
    // decoded weights with it leaves only float rounding, a bound tight enough to catch any decoding slip (a wrong
    // offset or scale in one half-block moves the result by percents of the half-block's terms).
    std::vector<double> xq(x.size());
    if (quant) {
        std::vector<ActBlock> ab(x.size() / kActBlock);
        detail::quantize_activation_scalar(x.data(), static_cast<int64_t>(x.size()), ab.data());
        for (size_t i = 0; i < x.size(); ++i) xq[i] = double(ab[i / 32].d) * ab[i / 32].q[i % 32];
    }
    double worst_ratio = 0, sum_err = 0, sum_bound = 0;
    for (int64_t tok = 0; tok < s.tokens; ++tok) {
        const float* xt = x.data() + tok * s.cols;
        for (int64_t r = 0; r < s.rows; ++r) {
            const float* wr = deq.data() + r * s.cols;
            double ref = 0, abs_sum = 0, qbound = 0, ref_q = 0, mag_q = 0;
            for (int64_t b = 0; b < (s.cols + 31) / 32; ++b) {  // float types may end in a partial block
                double amax = 0, wabs = 0;
                for (int64_t j = b * 32; j < std::min(s.cols, b * 32 + 32); ++j) {
                    ref += static_cast<double>(wr[j]) * xt[j];
                    abs_sum += std::fabs(static_cast<double>(wr[j]) * xt[j]);
                    amax = std::max(amax, std::fabs(static_cast<double>(xt[j])));
                    wabs += std::fabs(static_cast<double>(wr[j]));
                }
                qbound += amax / 127.0 / 2.0 * wabs;
                if (quant) {
                    double wmax = 0;
                    for (int64_t j = b * 32; j < b * 32 + 32; ++j) wmax = std::max(wmax, std::fabs(double(wr[j])));
                    for (int64_t j = b * 32; j < b * 32 + 32; ++j) {
                        const double xv = xq[static_cast<size_t>(tok * s.cols + j)];
                        ref_q += wr[j] * xv;
                        mag_q += (std::fabs(double(wr[j])) + wmax) * std::fabs(xv);
                    }
                }
            }
            const double chain_avx2 = quant ? s.cols / 32.0 : s.cols / 16.0;
            const double chain_scalar = quant ? s.cols / 32.0 : static_cast<double>(s.cols);
            // The quantized kernels also round each chunk's scale product (sc * d_x) to f32: one more ulp per term.
            const double extra = quant ? 4.0 : 0.0;
            const double bound_avx2 = (quant ? qbound : 0) + 2 * (chain_avx2 + 16 + extra) * u * abs_sum + 1e-30;
            const double bound_scalar = (quant ? qbound : 0) + 2 * (chain_scalar + 16 + extra) * u * abs_sum + 1e-30;
            const size_t i = static_cast<size_t>(tok * s.rows + r);
            const double err = std::fabs(y[i] - ref), err_s = std::fabs(ys[i] - ref);
            ASSERT_LE(err, bound_avx2) << "row " << r << " token " << tok << ": got " << y[i] << ", want " << ref;
            ASSERT_LE(err_s, bound_scalar)
                << "scalar row " << r << " token " << tok << ": got " << ys[i] << ", want " << ref;
            if (quant) {
                // Rounding only: each chunk's (scale * d_x) product and its minimum term, summed over n / 32 chunks.
                const double bound_q = 4 * (s.cols / 32.0 + 16) * u * mag_q;
                ASSERT_LE(std::fabs(y[i] - ref_q), bound_q) << "row " << r << " token " << tok << " vs quantized x";
                ASSERT_LE(std::fabs(ys[i] - ref_q), bound_q) << "scalar row " << r << " token " << tok;
            }
            worst_ratio = std::max(worst_ratio, err / bound_avx2);
            sum_err += err;
            sum_bound += bound_avx2;
        }
    }
    // The bound is a worst case; real errors, being sums of independent roundings, sit well inside it. An error that
    // used most of the bound on average would mean a systematic bias (a wrong offset or scale that happens to be small).
    if (quant) {
        EXPECT_LT(sum_err / sum_bound, 0.25) << "worst err/bound " << worst_ratio;
    }
}

class QuantMatmul : public testing::TestWithParam<TensorType> {};

TEST_P(QuantMatmul, QuantizerEncodedWeightsWithinActivationBound) {
    const TensorType t = GetParam();
    ThreadPool pool(2);
    std::mt19937 rng(1234 + static_cast<unsigned>(t));
    const bool k = gguf::traits(t).block_elems == 256;
    // Real row lengths: 896 (Qwen2.5-0.5B hidden) for 32-blocks, 4864 (its FFN), 3072 (Phi-3 hidden), 8192 (Phi-3 FFN).
    const std::vector<Shape> shapes = k ? std::vector<Shape>{{67, 4864, 1}, {33, 3072, 6}, {16, 8192, 2}}
                                        : std::vector<Shape>{{67, 896, 1}, {45, 4864, 5}, {33, 3072, 3}, {9, 8192, 1}};
    for (const Shape& s : shapes) check(t, quantized_weights(t, s.rows, s.cols, rng), s, rng, pool);
}

TEST_P(QuantMatmul, RandomBlockBytesWithinActivationBound) {
    const TensorType t = GetParam();
    ThreadPool pool(2);
    std::mt19937 rng(99 + static_cast<unsigned>(t));
    const int64_t cols = gguf::traits(t).block_elems == 256 ? 3072 : 896;
    const Shape s{41, cols, 7};  // 7 tokens: one call of 4 columns and one of 3
    check(t, random_blocks(t, s.rows, s.cols, rng), s, rng, pool);
}

// Activations::F32: the row is dequantized and multiplied by the f32 activation, so the result is the f64 dot of the
// decoded weights with x up to f32 accumulation rounding alone — no 8-bit activation term in the bound (a path that
// still quantized x would miss this bound by orders of magnitude on activations with outliers).
TEST_P(QuantMatmul, F32ActivationsMatchF64WithinAccumulationBound) {
    const TensorType t = GetParam();
    ThreadPool pool(2);
    std::mt19937 rng(4321 + static_cast<unsigned>(t));
    const int64_t cols = gguf::traits(t).block_elems == 256 ? 3072 : 896;
    for (const Shape s : {Shape{37, cols, 1}, Shape{19, cols, 6}}) {
        SCOPED_TRACE(testing::Message() << gguf::type_name(t) << " tokens=" << s.tokens);
        const auto bytes = quantized_weights(t, s.rows, s.cols, rng);
        const WeightView w{t, bytes.data(), s.rows, s.cols};
        auto x = normal(static_cast<size_t>(s.tokens * s.cols), rng);
        for (size_t i = 0; i < x.size(); i += 97) x[i] *= 8.f;
        std::vector<float> deq(static_cast<size_t>(s.cols));
        std::vector<float> y(static_cast<size_t>(s.tokens * s.rows), NAN);
        matmul(w, x.data(), s.tokens, y.data(), pool, Activations::F32);
        const double u = std::ldexp(1.0, -24);
        for (int64_t r = 0; r < s.rows; ++r) {
            quant::dequantize_row(t, w.row(r), deq.data(), s.cols);
            for (int64_t tok = 0; tok < s.tokens; ++tok) {
                double ref = 0, abs_sum = 0;
                for (int64_t j = 0; j < s.cols; ++j) {
                    const double p = static_cast<double>(deq[j]) * x[static_cast<size_t>(tok * s.cols + j)];
                    ref += p;
                    abs_sum += std::fabs(p);
                }
                const double chain = detected_isa() != Isa::Scalar ? s.cols / 16.0 : static_cast<double>(s.cols);
                const double bound = 2 * (chain + 16) * u * abs_sum + 1e-30;
                const float got = y[static_cast<size_t>(tok * s.rows + r)];
                ASSERT_LE(std::fabs(got - ref), bound)
                    << "row " << r << " token " << tok << ": got " << got << ", want " << ref;
            }
        }
    }
}

INSTANTIATE_TEST_SUITE_P(AllQuantTypes, QuantMatmul, testing::ValuesIn(kQuantTypes),
                         [](const auto& info) { return std::string(gguf::type_name(info.param)); });

class FloatMatmul : public testing::TestWithParam<TensorType> {};

TEST_P(FloatMatmul, MatchesF64WithinAccumulationBound) {
    const TensorType t = GetParam();
    ThreadPool pool(2);
    std::mt19937 rng(7 + static_cast<unsigned>(t));
    for (const Shape s : {Shape{67, 896, 1}, Shape{31, 4864, 7}, Shape{8, 8192, 1}, Shape{5, 40, 2}}) {
        check(t, float_weights(t, s.rows, s.cols, rng), s, rng, pool);
    }
}

INSTANTIATE_TEST_SUITE_P(AllFloatTypes, FloatMatmul, testing::ValuesIn(kFloatTypes),
                         [](const auto& info) { return std::string(gguf::type_name(info.param)); });

TEST(ActivationQuant, ScalarAndAvx2AgreeAndStayWithinHalfStep) {
    std::mt19937 rng(5);
    auto x = normal(32 * 200, rng, 3.f);
    for (size_t i = 0; i < 32; ++i) x[i] = 0.f;  // an all-zero block: d = 0, q = 0
    x[40] = 1e30f;                               // a huge value next to small ones
    std::vector<ActBlock> a(200), b(200);
    detail::quantize_activation_scalar(x.data(), static_cast<int64_t>(x.size()), a.data());
    if (detected_isa() != Isa::Scalar) {
        detail::quantize_activation_avx2(x.data(), static_cast<int64_t>(x.size()), b.data());
        EXPECT_EQ(0, std::memcmp(a.data(), b.data(), sizeof(ActBlock) * a.size())) << "AVX2 and scalar differ";
    }
    for (size_t blk = 0; blk < a.size(); ++blk) {
        int s0 = 0, s1 = 0;
        for (int j = 0; j < 32; ++j) {
            const double xv = x[blk * 32 + static_cast<size_t>(j)];
            const double err = std::fabs(xv - static_cast<double>(a[blk].d) * a[blk].q[j]);
            ASSERT_LE(err, a[blk].d * 0.5 * (1 + 1e-6) + 1e-30) << "block " << blk << " j " << j;
            ASSERT_GE(a[blk].q[j], -127);
            (j < 16 ? s0 : s1) += a[blk].q[j];
        }
        EXPECT_EQ(a[blk].sum[0], s0);
        EXPECT_EQ(a[blk].sum[1], s1);
    }
    EXPECT_EQ(a[0].d, 0.f);
}

// The x86 instruction sets compute the same integer block sums (quant_dot_x86.h): AVX2 and AVX-512 VNNI must give the
// same bits for every type, on random block bytes (every extreme value), and a column's result must not depend on how
// many columns share the call (the CPU half of batch invariance). Rows of 896 and 4864 values: a tail of blocks past
// the last group of eight, and none.
TEST(QuantDotIsa, Avx2AndVnniAgreeBitForBitWhateverTheColumnCount) {
    std::vector<Isa> isas;
    if (detected_isa() != Isa::Scalar) isas.push_back(Isa::Avx2);
    if (detected_isa() == Isa::Avx512Vnni) isas.push_back(Isa::Avx512Vnni);
    if (isas.empty()) GTEST_SKIP() << "SKIP: this CPU has no AVX2";
    if (isas.size() == 1)
        std::printf("this CPU has no AVX-512 VNNI: only the column-count invariance of AVX2 is checked\n");
    std::mt19937 rng(17);
    for (TensorType t : kQuantTypes) {
        for (int64_t cols : {896, 4864}) {
            if (cols % gguf::traits(t).block_elems != 0) continue;
            SCOPED_TRACE(testing::Message() << gguf::type_name(t) << " cols=" << cols);
            const int64_t rows = 8;
            const auto bytes = random_blocks(t, rows, cols, rng);
            auto x = normal(static_cast<size_t>(kMaxCols * cols), rng);
            ActBuffer act;
            act.resize(kMaxCols, cols);
            for (int c = 0; c < kMaxCols; ++c) act.quantize(c, x.data() + c * cols, detected_isa());
            const uint64_t rb = gguf::row_bytes(t, static_cast<uint64_t>(cols));
            for (int64_t r = 0; r < rows; ++r) {
                const std::byte* row = bytes.data() + static_cast<uint64_t>(r) * rb;
                // Column c alone (nc = 1, its own ActColumns) is the reference for every ISA and every nc.
                float alone[kMaxCols];
                for (int c = 0; c < kMaxCols; ++c) {
                    // A copy of column c alone, so that nothing of the other columns is within the kernel's reach.
                    ActBuffer one;
                    one.resize(1, cols);
                    one.quantize(0, x.data() + c * cols, detected_isa());
                    quant_dot_fn(t, isas[0])(row, one.columns(), 1, cols, &alone[c]);
                }
                for (Isa isa : isas) {
                    for (int nc = 1; nc <= kMaxCols; ++nc) {
                        float out[kMaxCols];
                        quant_dot_fn(t, isa)(row, act.columns(), nc, cols, out);
                        EXPECT_EQ(0, std::memcmp(out, alone, sizeof(float) * static_cast<size_t>(nc)))
                            << "row " << r << " nc " << nc << (isa == Isa::Avx2 ? " avx2" : " vnni") << ": " << out[0]
                            << " vs " << alone[0];
                    }
                }
            }
        }
    }
}

TEST(MatmulWeightCheck, RejectsRowLengthsOffTheBlock) {
    std::vector<std::byte> dummy(1024);
    EXPECT_THROW(check_matmul_weight({TensorType::Q4_K, dummy.data(), 1, 896}, "w"), Error);
    EXPECT_THROW(check_matmul_weight({TensorType::Q8_0, dummy.data(), 1, 48}, "w"), Error);
    EXPECT_NO_THROW(check_matmul_weight({TensorType::Q8_0, dummy.data(), 1, 64}, "w"));
}

}  // namespace
}  // namespace orcd::backend::cpu
