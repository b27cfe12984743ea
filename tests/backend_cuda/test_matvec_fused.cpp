// The fused decode matvec (norm prologue, store / residual / SwiGLU epilogues, several row sources of different types)
// against the CPU reference: rows quantized and dequantized on the CPU (quant::quantize_row / dequantize_row), x
// normalized by backend::cpu::rms_norm, products summed in f64. Fresh random data every run (seed printed); outputs
// poisoned with NaN before each launch (Accumulate starts from random values instead, which it must keep).
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>

#include "backend/cpu/ops.h"
#include "backend/cuda/matvec_fused.h"
#include "common/error.h"
#include "cuda_test_util.h"
#include "quant/convert.h"

namespace orcd::cuda {
namespace {

using gguf::TensorType;
using test::DeviceBuffer;
using test::normal_vector;

// One row source on both sides.
struct Source {
    TensorType type;
    int64_t rows;
    std::vector<uint8_t> bytes;  // quantized rows
    std::vector<float> deq;      // the same rows dequantized by the CPU reference
};

Source make_source(std::mt19937_64& rng, TensorType type, int64_t rows, int64_t cols) {
    Source s{type, rows, {}, {}};
    const std::vector<float> w = normal_vector(rng, rows * cols, 1.0f / std::sqrt(static_cast<float>(cols)));
    const uint64_t rb = gguf::row_bytes(type, cols);
    s.bytes.resize(rb * rows);
    s.deq.resize(rows * cols);
    for (int64_t r = 0; r < rows; ++r) {
        quant::quantize_row(type, w.data() + r * cols, s.bytes.data() + r * rb, cols);
        quant::dequantize_row(type, s.bytes.data() + r * rb, s.deq.data() + r * cols, cols);
    }
    return s;
}

// Dot products of every logical row with x, in f64, and the sum of |products| per row (the rounding scale).
void reference(const std::vector<Source>& srcs, const std::vector<float>& x, std::vector<double>& dot,
               std::vector<double>& scale) {
    const int64_t cols = static_cast<int64_t>(x.size());
    for (const Source& s : srcs) {
        for (int64_t r = 0; r < s.rows; ++r) {
            double acc = 0, abs = 0;
            for (int64_t c = 0; c < cols; ++c) {
                const double p = static_cast<double>(s.deq[r * cols + c]) * x[c];
                acc += p;
                abs += std::fabs(p);
            }
            dot.push_back(acc);
            scale.push_back(abs);
        }
    }
}

struct Case {
    std::vector<std::pair<TensorType, int64_t>> srcs;  // type and rows of each source
    int64_t cols;
    bool norm;
    MatvecEpilogue epilogue;
};

void check(const Case& c, uint64_t seed) {
    std::mt19937_64 rng(seed);
    std::string name;
    for (const auto& [t, r] : c.srcs) name += std::string(gguf::type_name(t)) + "x" + std::to_string(r) + " ";
    SCOPED_TRACE(testing::Message() << name << "cols " << c.cols << " norm " << c.norm << " epilogue "
                                    << static_cast<int>(c.epilogue) << " wpr "
                                    << fused_matvec_warps_per_row(
                                           c.epilogue == MatvecEpilogue::SwiGLU
                                               ? (c.srcs[0].second + (c.srcs.size() > 1 ? c.srcs[1].second : 0)) / 2
                                               : c.srcs[0].second,
                                           c.cols));
    std::vector<Source> srcs;
    for (const auto& [t, r] : c.srcs) srcs.push_back(make_source(rng, t, r, c.cols));
    std::vector<float> x = normal_vector(rng, c.cols, 2.0f), nw = normal_vector(rng, c.cols);
    for (float& v : x) v += 0.3f;
    std::vector<float> h = x;
    const float eps = 1e-6f;
    if (c.norm) backend::cpu::rms_norm(x.data(), nw.data(), 1, c.cols, eps, h.data());
    std::vector<double> dot, scale;
    reference(srcs, h, dot, scale);
    const int64_t rows = static_cast<int64_t>(dot.size());
    const int64_t n_out = c.epilogue == MatvecEpilogue::SwiGLU ? rows / 2 : rows;

    std::vector<std::unique_ptr<DeviceBuffer<uint8_t>>> dw;
    FusedMatvec op;
    for (const Source& s : srcs) {
        dw.push_back(std::make_unique<DeviceBuffer<uint8_t>>(s.bytes));
        op.src[op.n_src++] = {s.type, dw.back()->get(), s.rows};
    }
    DeviceBuffer<float> dx(x), dnw(nw), dy(n_out);
    const std::vector<float> y0 = normal_vector(rng, n_out);
    op.x = dx.get();
    op.cols = c.cols;
    op.norm = c.norm ? dnw.get() : nullptr;
    op.eps = eps;
    op.epilogue = c.epilogue;
    op.y = dy.get();
    auto launch = [&] {
        if (c.epilogue == MatvecEpilogue::Accumulate) {
            dy.upload(y0);
        } else {
            dy.poison();
        }
        fused_matvec(op, nullptr);
        return dy.download();
    };
    const std::vector<float> y = launch();

    // Bound: the matvec's f32 sums are within 1e-5 of the sum of |products| (as test_matvec); the normalized x
    // agrees with the CPU's to an ulp (same double reduction), which the same 1e-5 covers. Accumulate adds one f32
    // rounding of |y0 + dot|; SwiGLU propagates the two dot errors through silu(g) * u (|silu'| < 1.1) plus the
    // rounding of expf and the product (a few ulps).
    double worst = 0;
    for (int64_t i = 0; i < n_out; ++i) {
        ASSERT_FALSE(std::isnan(y[i])) << "row " << i << " not written";
        double want, bound;
        if (c.epilogue == MatvecEpilogue::SwiGLU) {
            const double g = dot[i], u = dot[n_out + i];
            const double silu = g / (1 + std::exp(-g));
            want = silu * u;
            bound = 1.1 * 1e-5 * scale[i] * std::fabs(u) + std::fabs(silu) * 1e-5 * scale[n_out + i] +
                    1e-6 * std::fabs(want) + 1e-30;
        } else if (c.epilogue == MatvecEpilogue::Accumulate) {
            want = y0[i] + dot[i];
            bound = 1e-5 * scale[i] + 1.2e-7 * std::fabs(want) + 1e-30;
        } else {
            want = dot[i];
            bound = 1e-5 * scale[i] + 1e-30;
        }
        worst = std::max(worst, std::fabs(y[i] - want) / bound);
    }
    EXPECT_LT(worst, 1.0) << "worst error / bound";
    // Deterministic: bit-identical on a second launch.
    const std::vector<float> again = launch();
    EXPECT_EQ(std::memcmp(y.data(), again.data(), y.size() * 4), 0);
}

TEST(CudaFusedMatvec, MatchesCpuReferenceOnDecodeShapes) {
    ORCD_SKIP_WITHOUT_GPU();
    const uint64_t seed = test::fresh_seed();
    using E = MatvecEpilogue;
    const Case cases[] = {
        // Qwen2.5-0.5B: norm + separate Q/K/V of mixed types into [q | k | v]; O and down with the residual; norm +
        // separate gate/up + SwiGLU; a short LM head.
        {{{TensorType::Q5_0, 896}, {TensorType::Q5_0, 128}, {TensorType::Q8_0, 128}}, 896, true, E::Store},
        {{{TensorType::Q5_0, 896}}, 896, false, E::Accumulate},
        {{{TensorType::Q5_0, 4864}, {TensorType::Q8_0, 4864}}, 896, true, E::SwiGLU},
        {{{TensorType::Q4_K, 896}}, 4864, false, E::Accumulate},
        {{{TensorType::Q6_K, 896}}, 4864, false, E::Accumulate},
        {{{TensorType::Q8_0, 3000}}, 896, true, E::Store},
        // Phi-3-mini: fused QKV, fused gate+up (2 n_ff rows of one matrix), Q6_K down over 8192 columns.
        {{{TensorType::Q5_K, 9216}}, 3072, true, E::Store},
        {{{TensorType::Q4_K, 2 * 2048}}, 3072, true, E::SwiGLU},
        {{{TensorType::Q6_K, 3072}}, 8192, false, E::Accumulate},
        // Few rows over long rows (8 warps per row), the other block types, and the float types.
        {{{TensorType::Q4_0, 128}}, 4864, false, E::Store},
        {{{TensorType::Q4_1, 200}, {TensorType::Q5_1, 56}}, 2048, true, E::Store},
        {{{TensorType::F32, 64}, {TensorType::F16, 64}, {TensorType::BF16, 64}}, 256, true, E::Store},
        {{{TensorType::F16, 6}, {TensorType::F32, 6}}, 12, true, E::SwiGLU},  // tiny: one partial block
    };
    for (const Case& c : cases) check(c, seed);
}

TEST(CudaFusedMatvec, RejectsWhatItCannotRun) {
    FusedMatvec op;
    op.cols = 896;
    EXPECT_THROW(fused_matvec(op, nullptr), Error);  // no source
    op.src[0] = {TensorType::Q2_K, reinterpret_cast<const void*>(256), 4};
    op.n_src = 1;
    EXPECT_FALSE(fused_matvec_supported(op));
    EXPECT_THROW(fused_matvec(op, nullptr), Error);
    op.src[0].type = TensorType::Q4_K;  // 896 is not a multiple of 256
    EXPECT_THROW(fused_matvec(op, nullptr), Error);
    op.src[0].type = TensorType::Q8_0;
    op.src[0].rows = 3;
    op.epilogue = MatvecEpilogue::SwiGLU;  // odd row count
    EXPECT_THROW(fused_matvec(op, nullptr), Error);
}

}  // namespace
}  // namespace orcd::cuda
