// CUDA matvec kernels against the CPU reference: weights quantized on the CPU, dequantized by the CPU reference
// (quant::dequantize_row) and multiplied in f64 give the expected y; the kernel must match within f32 rounding of the
// same dequantized values. Inputs are fresh random data every run (the seed is printed), and y is poisoned with NaN
// before each launch so an unwritten row cannot pass.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <cuda_runtime.h>  // (not _api.h: the typed cudaMalloc template)
#include <random>

#include "backend/cuda/matvec.h"
#include "cuda_test_util.h"
#include "common/error.h"
#include "quant/convert.h"

namespace orcd::cuda {
namespace {

using gguf::TensorType;

using test::DeviceBuffer;

struct Shape {
    int64_t rows, cols;
};

void check_type(TensorType type, Shape s, uint64_t seed) {
    SCOPED_TRACE(testing::Message() << gguf::type_name(type) << " " << s.rows << "x" << s.cols << " seed " << seed);
    std::mt19937_64 rng(seed);
    std::normal_distribution<float> normal(0.0f, 1.0f);
    std::vector<float> w(s.rows * s.cols), x(s.cols);
    for (float& v : w) v = normal(rng) / std::sqrt(static_cast<float>(s.cols));
    for (float& v : x) v = normal(rng);
    const uint64_t row_bytes = gguf::row_bytes(type, s.cols);
    std::vector<uint8_t> q(row_bytes * s.rows);
    std::vector<float> deq(s.cols);
    std::vector<double> expected(s.rows);
    for (int64_t r = 0; r < s.rows; ++r) {
        quant::quantize_row(type, w.data() + r * s.cols, q.data() + r * row_bytes, s.cols);
        quant::dequantize_row(type, q.data() + r * row_bytes, deq.data(), s.cols);
        double acc = 0;
        for (int64_t c = 0; c < s.cols; ++c) acc += static_cast<double>(deq[c]) * x[c];
        expected[r] = acc;
    }
    DeviceBuffer<uint8_t> dw(q);
    DeviceBuffer<float> dx(x), dy(s.rows);
    dy.poison();
    matvec(type, dw.get(), s.rows, s.cols, dx.get(), dy.get(), nullptr);
    const std::vector<float> y = dy.download();
    // Error bound: f32 accumulation of `cols` products of magnitude ~|w||x| — relative to the sum of |products|,
    // a few ulps times log2(cols) for the tree part plus the sequential per-lane part: 1e-5 is generous and still
    // far below any layout mistake (which gives O(1) relative error).
    double max_rel = 0;
    for (int64_t r = 0; r < s.rows; ++r) {
        ASSERT_FALSE(std::isnan(y[r])) << "row " << r << " not written";
        double scale = 0;
        quant::dequantize_row(type, q.data() + r * row_bytes, deq.data(), s.cols);
        for (int64_t c = 0; c < s.cols; ++c) scale += std::fabs(static_cast<double>(deq[c]) * x[c]);
        max_rel = std::max(max_rel, std::fabs(y[r] - expected[r]) / scale);
    }
    EXPECT_LT(max_rel, 1e-5);
    // Deterministic: a second launch gives the same bits.
    dy.poison();
    matvec(type, dw.get(), s.rows, s.cols, dx.get(), dy.get(), nullptr);
    const std::vector<float> y2 = dy.download();
    EXPECT_EQ(std::memcmp(y.data(), y2.data(), s.rows * 4), 0);
}

class CudaMatvec : public testing::TestWithParam<TensorType> {};

TEST_P(CudaMatvec, MatchesCpuReferenceOnRealShapes) {
    ORCD_SKIP_WITHOUT_GPU();
    const TensorType t = GetParam();
    const uint64_t seed = test::fresh_seed();
    const bool k_quant = gguf::traits(t).block_elems == 256;
    // Qwen2.5-0.5B rows (896, 4864) for 32-element types; Phi-3-mini rows (3072, 8192) for K-quants; plus long rows:
    // the largest tiles that still fit shared memory (Q4_0, Q5_0 ...) and rows over that limit, which take the
    // direct-read kernel (Q8_0, Q5_1, the K-quants).
    const std::vector<Shape> shapes =
        k_quant ? std::vector<Shape>{{9216, 3072}, {3072, 8192}, {256, 256}, {7, 512}, {3, 65536}}
                : std::vector<Shape>{{896, 896}, {128, 896}, {896, 4864}, {5, 32}, {3, 32768}};
    for (const Shape& s : shapes) check_type(t, s, seed);
}

INSTANTIATE_TEST_SUITE_P(AllTypes, CudaMatvec,
                         testing::Values(TensorType::F32, TensorType::F16, TensorType::BF16, TensorType::Q4_0,
                                         TensorType::Q4_1, TensorType::Q5_0, TensorType::Q5_1, TensorType::Q8_0,
                                         TensorType::Q4_K, TensorType::Q5_K, TensorType::Q6_K),
                         [](const auto& info) { return std::string(gguf::type_name(info.param)); });

TEST(CudaMatvecErrors, UnsupportedTypeAndBadShape) {
    EXPECT_THROW(matvec(TensorType::Q2_K, nullptr, 1, 256, nullptr, nullptr, nullptr), Error);
    EXPECT_THROW(matvec(TensorType::Q4_K, nullptr, 1, 100, nullptr, nullptr, nullptr), Error);
}

}  // namespace
}  // namespace orcd::cuda
