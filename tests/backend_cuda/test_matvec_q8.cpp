// The int8-activation (dp4a) decode matvec against the CPU backend's int8 path on the same weights and x:
// backend::cpu::matmul with Activations::Int8 (the same definition: 8-bit activation blocks of 32, exact integer
// sums). Also quantize_q8 against cpu::quantize_activation. Fresh random data every run (seed printed); outputs
// poisoned with NaN before each launch (Accumulate starts from random values, which it must keep); determinism.
//
// Bound per output row: both sides are the exact int8 result up to f32 rounding of the per-unit scalings and the
// sums, each within 1e-5 of sum_j |w_j| (|x_j| + d_b) (the rounding scale, as test_matvec_fused); plus, for every
// position where the GPU's q differs from the CPU's (x * 127 / max|x| within an ulp of a .5 boundary: then by one
// step), d_b * |w_j|. quantize_q8 itself: d bit-identical to the CPU's, q equal except such one-step differences
// (at most 1 in 10^4 values).
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <span>

#include "backend/cpu/matmul.h"
#include "backend/cpu/ops.h"
#include "backend/cpu/quant_dot.h"
#include "backend/cpu/thread_pool.h"
#include "backend/cuda/matvec_q8.h"
#include "common/error.h"
#include "cuda_test_util.h"
#include "quant/convert.h"
#include "same_bits.h"

namespace orcd::cuda {
namespace {

using gguf::TensorType;
using test::DeviceBuffer;
using test::normal_vector;

struct Source {
    TensorType type;
    int64_t rows;
    std::vector<uint8_t> bytes;
    std::vector<float> deq;
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

// The quantized x from the device and from the CPU.
struct Quantized {
    std::vector<int8_t> q;
    std::vector<float> d;
    std::vector<int32_t> s;  // the device's sums of each 16 values (empty for the CPU's)
};

Quantized download(const Q8Vector& v, int64_t cols) {
    Quantized out{std::vector<int8_t>(cols), std::vector<float>(cols / 32), std::vector<int32_t>(cols / 16)};
    EXPECT_EQ(cudaDeviceSynchronize(), cudaSuccess);
    EXPECT_EQ(cudaMemcpy(out.q.data(), v.q, cols, cudaMemcpyDeviceToHost), cudaSuccess);
    EXPECT_EQ(cudaMemcpy(out.d.data(), v.d, cols / 32 * 4, cudaMemcpyDeviceToHost), cudaSuccess);
    EXPECT_EQ(cudaMemcpy(out.s.data(), v.s, cols / 16 * 4, cudaMemcpyDeviceToHost), cudaSuccess);
    return out;
}

Quantized cpu_quantize(const std::vector<float>& x) {
    const int64_t n = static_cast<int64_t>(x.size());
    std::vector<backend::cpu::ActBlock> blocks(n / 32);
    backend::cpu::quantize_activation(x.data(), n, blocks.data());
    Quantized out{std::vector<int8_t>(n), std::vector<float>(n / 32), {}};
    for (int64_t b = 0; b < n / 32; ++b) {
        out.d[b] = blocks[b].d;
        std::memcpy(out.q.data() + 32 * b, blocks[b].q, 32);
    }
    return out;
}

struct Case {
    std::vector<std::pair<TensorType, int64_t>> srcs;
    int64_t cols;
    bool norm;
    MatvecEpilogue epilogue;
};

void check(const Case& c, uint64_t seed, backend::cpu::ThreadPool& pool) {
    std::mt19937_64 rng(seed);
    std::string name;
    for (const auto& [t, r] : c.srcs) name += std::string(gguf::type_name(t)) + "x" + std::to_string(r) + " ";
    int64_t total = 0;
    for (const auto& s : c.srcs) total += s.second;
    const int64_t n_out = c.epilogue == MatvecEpilogue::SwiGLU ? total / 2 : total;
    SCOPED_TRACE(testing::Message() << name << "cols " << c.cols << " norm " << c.norm << " epilogue "
                                    << static_cast<int>(c.epilogue) << " tpr "
                                    << q8_matvec_threads_per_row(n_out, c.cols));
    std::vector<Source> srcs;
    for (const auto& [t, r] : c.srcs) srcs.push_back(make_source(rng, t, r, c.cols));
    std::vector<float> x = normal_vector(rng, c.cols, 2.0f), nw = normal_vector(rng, c.cols);
    for (float& v : x) v += 0.3f;
    std::vector<float> h = x;
    const float eps = 1e-6f;
    if (c.norm) backend::cpu::rms_norm(x.data(), nw.data(), 1, c.cols, eps, h.data());

    // CPU: the int8 matmul of each source on the normalized x.
    std::vector<float> dot;
    for (const Source& s : srcs) {
        std::vector<float> y(s.rows);
        const backend::cpu::WeightView w{s.type, reinterpret_cast<const std::byte*>(s.bytes.data()), s.rows, c.cols};
        backend::cpu::matmul(w, h.data(), 1, y.data(), pool, backend::cpu::Activations::Int8);
        dot.insert(dot.end(), y.begin(), y.end());
    }

    // GPU: quantize (norm folded in), then the matvec.
    std::vector<std::unique_ptr<DeviceBuffer<uint8_t>>> dw;
    Q8Matvec op;
    for (const Source& s : srcs) {
        dw.push_back(std::make_unique<DeviceBuffer<uint8_t>>(s.bytes));
        op.src[op.n_src++] = {s.type, dw.back()->get(), s.rows};
    }
    DeviceBuffer<float> dx(x), dnw(nw), dy(n_out);
    DeviceBuffer<uint8_t> dq(static_cast<size_t>(q8_vector_bytes(c.cols)));
    dq.poison();
    const Q8Vector xq = q8_vector_at(dq.get(), c.cols);
    const std::vector<float> y0 = normal_vector(rng, n_out);
    op.x = xq;
    op.cols = c.cols;
    op.epilogue = c.epilogue;
    op.y = dy.get();
    auto launch = [&] {
        if (c.epilogue == MatvecEpilogue::Accumulate) {
            dy.upload(y0);
        } else {
            dy.poison();
        }
        quantize_q8(dx.get(), c.norm ? dnw.get() : nullptr, eps, c.cols, xq, nullptr);
        q8_matvec(op, nullptr);
        return dy.download();
    };
    const std::vector<float> y = launch();

    // quantize_q8 against the CPU's quantize_activation on the same (CPU-normalized) x.
    const Quantized g = download(xq, c.cols), want = cpu_quantize(h);
    std::vector<int> flipped;
    for (int64_t b = 0; b < c.cols / 32; ++b) {
        if (!c.norm) {
            EXPECT_EQ(g.d[b], want.d[b]) << "block " << b;
        }
        EXPECT_NEAR(g.d[b], want.d[b], 1e-6 * want.d[b]) << "block " << b;
    }
    for (int64_t j = 0; j < c.cols; ++j) {
        ASSERT_LE(std::abs(g.q[j] - want.q[j]), 1) << "element " << j;
        if (g.q[j] != want.q[j]) flipped.push_back(static_cast<int>(j));
    }
    EXPECT_LE(flipped.size(), static_cast<size_t>(c.cols / 10000 + 1));
    // The per-16 sums are those of the device's own q.
    for (int64_t k = 0; k < c.cols / 16; ++k) {
        int sum = 0;
        for (int64_t j = 16 * k; j < 16 * k + 16; ++j) sum += g.q[j];
        ASSERT_EQ(g.s[k], sum) << "sum " << k;
    }

    // Bound per logical row (see the top of the file).
    std::vector<double> bound;
    for (const Source& s : srcs) {
        for (int64_t r = 0; r < s.rows; ++r) {
            double scale = 0, flip = 0;
            const float* w = s.deq.data() + r * c.cols;
            for (int64_t j = 0; j < c.cols; ++j) scale += std::fabs(w[j]) * (std::fabs(h[j]) + want.d[j / 32]);
            for (int j : flipped) flip += std::fabs(w[j]) * want.d[j / 32];
            bound.push_back(2e-5 * scale + flip + 1e-30);
        }
    }
    double worst = 0;
    for (int64_t i = 0; i < n_out; ++i) {
        ASSERT_FALSE(std::isnan(y[i])) << "row " << i << " not written";
        double err, lim;
        if (c.epilogue == MatvecEpilogue::SwiGLU) {
            const double gt = dot[i], u = dot[n_out + i];
            const double silu = gt / (1 + std::exp(-gt));
            err = std::fabs(y[i] - silu * u);
            lim = 1.1 * bound[i] * std::fabs(u) + std::fabs(silu) * bound[n_out + i] + 1e-6 * std::fabs(silu * u);
        } else if (c.epilogue == MatvecEpilogue::Accumulate) {
            const double want_y = static_cast<double>(y0[i]) + dot[i];
            err = std::fabs(y[i] - want_y);
            lim = bound[i] + 1.2e-7 * (std::fabs(want_y) + std::fabs(y0[i]));
        } else {
            err = std::fabs(y[i] - dot[i]);
            lim = bound[i];
        }
        worst = std::max(worst, err / lim);
    }
    EXPECT_LT(worst, 1.0) << "worst error / bound";
    const std::vector<float> again = launch();
    EXPECT_TRUE(::orcd::test::same_bits(y, again)) << "not deterministic: " << ::orcd::test::bit_difference(y, again);
}

TEST(CudaQ8Matvec, MatchesCpuInt8MatmulOnDecodeShapes) {
    ORCD_SKIP_WITHOUT_GPU();
    const uint64_t seed = test::fresh_seed();
    backend::cpu::ThreadPool pool(2);
    using E = MatvecEpilogue;
    const Case cases[] = {
        // Qwen2.5-0.5B Q4_K_M: mixed-type Q/K/V, O, SwiGLU over two matrices, Q4_K and Q6_K down, the LM head type.
        {{{TensorType::Q5_0, 896}, {TensorType::Q5_0, 128}, {TensorType::Q8_0, 128}}, 896, true, E::Store},
        {{{TensorType::Q5_0, 896}}, 896, false, E::Accumulate},
        {{{TensorType::Q5_0, 4864}, {TensorType::Q8_0, 4864}}, 896, true, E::SwiGLU},
        {{{TensorType::Q4_K, 896}}, 4864, false, E::Accumulate},
        {{{TensorType::Q6_K, 896}}, 4864, false, E::Accumulate},
        {{{TensorType::Q8_0, 3000}}, 896, true, E::Store},
        // Phi-3-mini Q4_K_M: fused QKV (Q5_K), fused gate+up (Q4_K), Q6_K down over 8192 columns, Q6_K LM head.
        {{{TensorType::Q5_K, 9216}}, 3072, true, E::Store},
        {{{TensorType::Q4_K, 2 * 8192}}, 3072, true, E::SwiGLU},
        {{{TensorType::Q6_K, 3072}}, 8192, false, E::Accumulate},
        {{{TensorType::Q6_K, 4000}}, 3072, true, E::Store},
        // The other 32-element types; few rows over long rows (several warps per row).
        {{{TensorType::Q4_0, 128}}, 4864, false, E::Store},
        {{{TensorType::Q4_1, 200}, {TensorType::Q5_1, 56}}, 2048, true, E::Store},
        {{{TensorType::Q5_K, 8}, {TensorType::Q4_K, 8}}, 256, true, E::Store},
    };
    for (const Case& c : cases) check(c, seed, pool);
}

// Batch invariance of the batched matvec (decode_step's columns): for B = 1, 3, 8, 17, 64 activation columns, each
// column's output is bit-identical to that column run alone (n_cols = 1), for several types, each epilogue, and both
// reduction shapes (tpr <= 32: lane groups; tpr > 32: warps combined through shared memory). quantize_q8_columns
// is also checked bit for bit against quantize_q8 per column.
TEST(CudaQ8Matvec, ColumnsAreBitIdenticalForEveryBatchSize) {
    ORCD_SKIP_WITHOUT_GPU();
    std::mt19937_64 rng(test::fresh_seed());
    struct Shape {
        TensorType type;
        int64_t rows, cols;
        MatvecEpilogue epilogue;
    };
    constexpr int kMax = 64;
    for (const Shape& sh : {Shape{TensorType::Q4_K, 300, 4096, MatvecEpilogue::Store},
                            Shape{TensorType::Q6_K, 200, 512, MatvecEpilogue::Accumulate},
                            Shape{TensorType::Q8_0, 2 * 96, 256, MatvecEpilogue::SwiGLU},
                            Shape{TensorType::Q5_0, 77, 1024, MatvecEpilogue::Store}}) {
        SCOPED_TRACE(testing::Message() << gguf::type_name(sh.type) << " " << sh.rows << "x" << sh.cols);
        const Source src = make_source(rng, sh.type, sh.rows, sh.cols);
        const int64_t n_out = sh.epilogue == MatvecEpilogue::SwiGLU ? sh.rows / 2 : sh.rows;
        const std::vector<float> x = normal_vector(rng, static_cast<size_t>(kMax * sh.cols), 2.0f);
        const std::vector<float> nw = normal_vector(rng, static_cast<size_t>(sh.cols));
        const std::vector<float> y0 = normal_vector(rng, static_cast<size_t>(kMax * n_out));
        DeviceBuffer<uint8_t> dw(src.bytes);
        DeviceBuffer<float> dx(x), dnw(nw), dy(static_cast<size_t>(kMax * n_out));
        const int64_t qbytes = q8_vector_bytes(sh.cols);
        DeviceBuffer<uint8_t> dq(static_cast<size_t>(kMax * qbytes));
        const Q8Vector xq = q8_vector_at(dq.get(), sh.cols);
        Q8Matvec op;
        op.src[op.n_src++] = {sh.type, dw.get(), sh.rows};
        op.x = xq;
        op.cols = sh.cols;
        op.epilogue = sh.epilogue;
        op.y = dy.get();
        op.y_stride = n_out;
        auto run = [&](int n_cols) {
            if (sh.epilogue == MatvecEpilogue::Accumulate) {
                dy.upload(y0);
            } else {
                dy.poison();
            }
            dq.poison();
            quantize_q8_columns(dx.get(), sh.cols, n_cols, dnw.get(), 1e-6f, sh.cols, xq, nullptr);
            op.n_cols = n_cols;
            q8_matvec(op, nullptr);
            return std::make_pair(dy.download(), dq.download());
        };
        // Column c alone: its x at the front, its y0 at the front.
        std::vector<std::vector<float>> alone(kMax);
        std::vector<std::vector<uint8_t>> alone_q(kMax);
        for (int c = 0; c < kMax; ++c) {
            Q8Matvec one = op;
            one.n_cols = 1;
            if (sh.epilogue == MatvecEpilogue::Accumulate) {
                dy.upload(y0);
            } else {
                dy.poison();
            }
            dq.poison();
            quantize_q8(dx.get() + c * sh.cols, dnw.get(), 1e-6f, sh.cols, q8_vector_at(dq.get() + c * qbytes, sh.cols),
                        nullptr);
            one.x = q8_vector_at(dq.get() + c * qbytes, sh.cols);
            one.y = dy.get() + c * n_out;
            q8_matvec(one, nullptr);
            const std::vector<float> y = dy.download();
            alone[static_cast<size_t>(c)].assign(y.begin() + c * n_out, y.begin() + (c + 1) * n_out);
            const std::vector<uint8_t> q = dq.download();
            alone_q[static_cast<size_t>(c)].assign(q.begin() + c * qbytes, q.begin() + (c + 1) * qbytes);
        }
        for (const int B : {1, 3, 8, 17, 64}) {
            const auto [y, q] = run(B);
            for (int c = 0; c < B; ++c) {
                const std::span<const float> column = std::span<const float>(y).subspan(c * n_out, n_out);
                const std::vector<float>& want = alone[static_cast<size_t>(c)];
                EXPECT_TRUE(::orcd::test::same_bits(column, want))
                    << "B " << B << " column " << c << ": " << ::orcd::test::bit_difference(column, want);
                EXPECT_EQ(std::memcmp(q.data() + c * qbytes, alone_q[static_cast<size_t>(c)].data(),
                                      static_cast<size_t>(qbytes)),
                          0)
                    << "B " << B << " column " << c << " (quantized x)";
            }
        }
    }
}

TEST(CudaQ8Matvec, RejectsWhatItCannotRun) {
    Q8Matvec op;
    op.cols = 896;
    EXPECT_THROW(q8_matvec(op, nullptr), Error);  // no source
    op.src[0] = {TensorType::F16, reinterpret_cast<const void*>(256), 4};
    op.n_src = 1;
    EXPECT_FALSE(q8_matvec_supported(op));  // float types keep the f32 path
    EXPECT_THROW(q8_matvec(op, nullptr), Error);
    op.src[0].type = TensorType::Q4_K;  // 896 is not a multiple of 256
    EXPECT_FALSE(q8_matvec_supported(op));
    EXPECT_THROW(q8_matvec(op, nullptr), Error);
    EXPECT_THROW(quantize_q8(nullptr, nullptr, 0.f, 100, {}, nullptr), Error);  // not a multiple of 32
}

}  // namespace
}  // namespace orcd::cuda
