// The tensor-core int8 matvec (matvec_q8_mma.cu, forced here at every batch size) against the dp4a kernel bit for
// bit: every column of a batch must equal that column run alone (n_cols = 1, the dp4a kernel, itself checked
// against the CPU's int8 matmul in test_matvec_q8.cpp). Covers every type with a q8 kernel, ragged row tiles (rows not
// a multiple of 16) and column groups (batches not a multiple of the block's columns), each epilogue, sources of
// mixed types, every reduction shape (threads per row 16 .. 256, which decide the summation order) and every split of
// the work over blocks and warps (8 / 16 / 32 columns, 4 / 8 / 16 warps a block, 1 .. 8 blocks a tile) and every way
// of reading the operands (from global memory, or staged in shared memory with one or two weight buffers, blocks
// that loop over tiles). Each case also asserts which kernel ran, so a silent fallback to dp4a cannot pass for the
// mma kernel.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <memory>

#include "backend/cuda/matvec_q8.h"
#include "cuda_test_util.h"
#include "quant/convert.h"

namespace orcd::cuda {
namespace {

using gguf::TensorType;
using test::DeviceBuffer;
using test::normal_vector;

struct Case {
    std::vector<std::pair<TensorType, int64_t>> srcs;  // type, rows
    int64_t cols;
    MatvecEpilogue epilogue;
    bool mma;  // whether the batches must take the mma kernel (false: tiles that mix types)
};

std::vector<uint8_t> random_rows(std::mt19937_64& rng, TensorType type, int64_t rows, int64_t cols) {
    const std::vector<float> w = normal_vector(rng, rows * cols, 1.0f / std::sqrt(static_cast<float>(cols)));
    const uint64_t rb = gguf::row_bytes(type, cols);
    std::vector<uint8_t> bytes(rb * rows);
    for (int64_t r = 0; r < rows; ++r) quant::quantize_row(type, w.data() + r * cols, bytes.data() + r * rb, cols);
    return bytes;
}

void check(const Case& c, std::mt19937_64& rng) {
    std::string name;
    int64_t total = 0;
    for (const auto& [t, r] : c.srcs) {
        name += std::string(gguf::type_name(t)) + "x" + std::to_string(r) + " ";
        total += r;
    }
    const int64_t n_out = c.epilogue == MatvecEpilogue::SwiGLU ? total / 2 : total;
    SCOPED_TRACE(testing::Message() << name << "cols " << c.cols << " epilogue " << static_cast<int>(c.epilogue)
                                    << " tpr " << q8_matvec_threads_per_row(n_out, c.cols));
    constexpr int kMax = 70;
    std::vector<std::unique_ptr<DeviceBuffer<uint8_t>>> dw;
    Q8Matvec op;
    for (const auto& [t, r] : c.srcs) {
        dw.push_back(std::make_unique<DeviceBuffer<uint8_t>>(random_rows(rng, t, r, c.cols)));
        op.src[op.n_src++] = {t, dw.back()->get(), r};
    }
    const std::vector<float> x = normal_vector(rng, static_cast<size_t>(kMax * c.cols), 2.0f);
    const std::vector<float> nw = normal_vector(rng, static_cast<size_t>(c.cols));
    const std::vector<float> y0 = normal_vector(rng, static_cast<size_t>(kMax * n_out));
    DeviceBuffer<float> dx(x), dnw(nw), dy(static_cast<size_t>(kMax * n_out));
    const int64_t qbytes = q8_vector_bytes(c.cols);
    DeviceBuffer<uint8_t> dq(static_cast<size_t>(kMax * qbytes));
    op.x = q8_vector_at(dq.get(), c.cols);
    op.cols = c.cols;
    op.epilogue = c.epilogue;
    op.y = dy.get();
    op.y_stride = n_out;
    op.mma_min_cols = 1;  // the tensor-core kernel at every batch size below (the default threshold is higher)
    auto reset_y = [&] {
        if (c.epilogue == MatvecEpilogue::Accumulate) {
            dy.upload(y0);
        } else {
            dy.poison();
        }
    };
    // Every column alone (dp4a), each from the same quantized activations the batches read.
    quantize_q8_columns(dx.get(), c.cols, kMax, dnw.get(), 1e-6f, c.cols, op.x, nullptr);
    reset_y();
    for (int col = 0; col < kMax; ++col) {
        Q8Matvec one = op;
        one.n_cols = 1;
        one.mma_min_cols = 0;  // the default: the dp4a kernel for one column
        one.x = q8_vector_at(dq.get() + col * qbytes, c.cols);
        one.y = dy.get() + col * n_out;
        ASSERT_FALSE(q8_matvec_uses_mma(one));
        q8_matvec(one, nullptr);
    }
    const std::vector<float> alone = dy.download();
    // Every split of the work: the automatic one, then forced columns a block (capped by tpr: 8 from tpr 64 on), warps
    // a block (one leaf a warp at tpr 16 with 16 warps; several with 4; capped at the block's leaves) and blocks a
    // tile (clusters that split the leaves, each block folding a chunk of the tile's elements).
    // Then what a block stages in shared memory (-1 nothing, 1 the weight rows, 2 the columns, 4 a second weight
    // buffer) and the most blocks (3: each block loops over many tiles, through both buffers and the single buffer's
    // reload during the fold). The kernel has one instance per columns a block and staged operands (rows, columns,
    // both, neither): each pair runs below where tpr allows the columns.
    struct Shape {
        int block_cols, warps, cluster, stage, max_blocks;
    };
    constexpr Shape kShapes[] = {{0, 0, 0, 0, 0},   {8, 4, 1, 0, 0},  {16, 16, 1, 0, 0}, {32, 8, 1, 0, 0},
                                 {8, 16, 2, 0, 0},  {8, 4, 4, 0, 0},  {16, 4, 8, 0, 0},  {32, 8, 2, 0, 0},
                                 {0, 0, 0, -1, 0},  {16, 8, 1, 1, 3}, {8, 4, 1, 2, 0},   {32, 4, 1, 3, 5},
                                 {16, 16, 1, 7, 3}, {0, 0, 0, 5, 2},  {8, 8, 1, 7, 0},   {32, 4, 1, 1, 0},
                                 {32, 8, 1, 2, 3},  {16, 4, 1, 2, 0}, {8, 16, 1, 1, 0},  {16, 8, 1, 3, 0}};
    for (const auto& [block_cols, warps, cluster, stage, max_blocks] : kShapes) {
        for (const int B : {1, 3, 8, 16, 17, 40, 64, 70}) {
            SCOPED_TRACE(testing::Message() << "block columns " << block_cols << " warps " << warps << " cluster "
                                            << cluster << " stage " << stage << " max blocks " << max_blocks);
            op.n_cols = B;
            op.mma_block_cols = block_cols;
            op.mma_warps = warps;
            op.mma_cluster = cluster;
            op.mma_stage = stage;
            op.mma_max_blocks = max_blocks;
            EXPECT_EQ(q8_matvec_uses_mma(op), c.mma) << "B " << B;
            reset_y();
            q8_matvec(op, nullptr);
            const std::vector<float> y = dy.download();
            for (int col = 0; col < B; ++col) {
                const float* got = y.data() + col * n_out;
                const float* want = alone.data() + col * n_out;
                if (std::memcmp(got, want, static_cast<size_t>(n_out) * 4) != 0) {
                    int64_t bad = 0, first = -1;
                    for (int64_t i = 0; i < n_out; ++i) {
                        if (std::memcmp(got + i, want + i, 4) != 0) {
                            if (first < 0) first = i;
                            ++bad;
                        }
                    }
                    ADD_FAILURE() << "B " << B << " column " << col << ": " << bad << " of " << n_out
                                  << " rows differ, first row " << first << ": " << got[first] << " vs alone "
                                  << want[first];
                }
            }
            // Columns past the batch are left alone.
            for (int64_t i = static_cast<int64_t>(B) * n_out; i < static_cast<int64_t>(kMax) * n_out; ++i) {
                if (c.epilogue == MatvecEpilogue::Accumulate) {
                    ASSERT_EQ(std::memcmp(&y[i], &y0[i], 4), 0) << "B " << B << " wrote past its columns at " << i;
                } else {
                    ASSERT_TRUE(std::isnan(y[i])) << "B " << B << " wrote past its columns at " << i;
                }
            }
        }
    }
}

TEST(CudaQ8MatvecMma, ColumnsBitIdenticalToDp4aForEveryType) {
    ORCD_SKIP_WITHOUT_GPU();
    std::mt19937_64 rng(test::fresh_seed());
    using E = MatvecEpilogue;
    std::vector<Case> all;
    // Each type: threads per row 16 (Qwen-like 896 / 1024 values) with a ragged last tile, 64 (77 long rows), and
    // SwiGLU's two halves (32 or 16 per row).
    for (const TensorType t : {TensorType::Q4_K, TensorType::Q5_K, TensorType::Q6_K, TensorType::Q8_0, TensorType::Q5_0,
                               TensorType::Q4_0, TensorType::Q4_1, TensorType::Q5_1}) {
        const bool k = t == TensorType::Q4_K || t == TensorType::Q5_K || t == TensorType::Q6_K;
        all.push_back({{{t, 200}}, k ? 1024 : 896, E::Store, true});        // 16 per row, ragged tile (200 = 12.5 x 16)
        all.push_back({{{t, 77}}, 4096, E::Accumulate, true});              // 64 per row, 77 rows
        all.push_back({{{t, 2 * 136}}, k ? 2048 : 1568, E::SwiGLU, true});  // gate/up halves of 136 rows
    }
    // Threads per row 32 (many rows, 96-128 units), 128 and 256 (few rows, long rows: the folded groups of 32 added
    // in order).
    all.push_back({{{TensorType::Q4_K, 3000}}, 4096, E::Store, true});
    all.push_back({{{TensorType::Q6_K, 40}}, 16384, E::Store, true});
    all.push_back({{{TensorType::Q8_0, 300}}, 8192, E::Accumulate, true});
    // Several sources: mixed types on 16-row boundaries (Qwen's q | k | v), one type across unaligned boundaries
    // (tiles that span two sources), and mixed types off the boundaries (the dp4a kernel runs those).
    all.push_back({{{TensorType::Q4_K, 128}, {TensorType::Q4_K, 32}, {TensorType::Q6_K, 32}}, 1024, E::Store, true});
    all.push_back({{{TensorType::Q8_0, 100}, {TensorType::Q8_0, 60}, {TensorType::Q8_0, 7}}, 512, E::Store, true});
    all.push_back({{{TensorType::Q4_K, 112}, {TensorType::Q5_K, 112}}, 512, E::SwiGLU, true});
    all.push_back({{{TensorType::Q4_K, 100}, {TensorType::Q6_K, 60}}, 512, E::Store, false});
    for (const Case& c : all) check(c, rng);
}

}  // namespace
}  // namespace orcd::cuda
