// The batched prefill path: f16 dequantization against the CPU dequantizer (exact), the batched embedding lookup,
// prefill attention against the CPU reference, and end to end the batched prefill's logits against the CPU backend
// and against token-by-token CUDA decode on the tiny synth presets, plus `--weights f16` against quantized weights.
//
// Bounds of the batched path (stated here, checked below): weights and activations enter the GEMMs as f16 (relative
// rounding 2^-11 each) with f32 accumulation, Q and P enter attention as f16: on the F32 tiny models the logits stay
// within 2e-2 of the CPU's (relative to the largest |logit|; measured values are printed); on Q4_K_M the comparison
// with the CPU backend keeps the decode test's bounds (the CPU's 8-bit activations dominate).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <deque>
#include <memory>
#include <numeric>
#include <random>

#include "../engine/tiny_models.h"
#include "backend/cpu/cpu_backend.h"
#include "backend/cpu/ops.h"
#include "backend/cuda/cuda_backend.h"
#include "backend/cuda/gemm.h"
#include "backend/cuda/prefill_ops.h"
#include "common/half.h"
#include "cuda_test_util.h"
#include "quant/convert.h"
#include "model/model.h"

namespace orcd {
namespace {

using ::orcd::cuda::test::argument_error;
using ::orcd::cuda::test::DeviceBuffer;
using ::orcd::cuda::test::fresh_seed;
using ::orcd::cuda::test::normal_vector;
using ::orcd::cuda::test::rel_error;
using gguf::TensorType;

constexpr TensorType kTypes[] = {TensorType::F32,  TensorType::F16,  TensorType::BF16, TensorType::Q4_0,
                                 TensorType::Q4_1, TensorType::Q5_0, TensorType::Q5_1, TensorType::Q8_0,
                                 TensorType::Q4_K, TensorType::Q5_K, TensorType::Q6_K};

std::vector<uint8_t> quantized_matrix(std::mt19937_64& rng, TensorType type, int64_t rows, int64_t cols) {
    const std::vector<float> w = normal_vector(rng, rows * cols, 0.05f);
    const uint64_t rb = gguf::row_bytes(type, cols);
    std::vector<uint8_t> m(rb * rows);
    for (int64_t r = 0; r < rows; ++r) quant::quantize_row(type, w.data() + r * cols, m.data() + r * rb, cols);
    return m;
}

// Each refused call names the op and the values that failed; the checks run before any launch (no device needed).
TEST(CudaPrefillOps, ArgumentChecksNameTheOpAndTheValues) {
    const cuda::KvCacheView kv = cuda::test::fake_kv(16, 2, 64);
    uint16_t* none16 = nullptr;
    EXPECT_EQ(argument_error([&] { cuda::rms_norm_to_f16(nullptr, nullptr, 4, 8, INFINITY, none16, nullptr); }),
              "cuda rms_norm_to_f16: epsilon inf is not a finite value >= 0");
    EXPECT_EQ(argument_error([&] { cuda::swiglu_to_f16(nullptr, 4, 0, none16, nullptr); }),
              "cuda swiglu_to_f16: needs n_tokens > 0 and n > 0");
    EXPECT_EQ(argument_error([&] {
                  cuda::qkv_rope_store(nullptr, 256, 8, 2, {}, 64, 10, nullptr, cuda::RopeLayout::Interleaved, kv,
                                       none16, nullptr);
              }),
              "cuda qkv_rope_store: positions 10 .. 17 do not fit a cache of 16");
    cuda::KvCacheView kv72 = kv;
    kv72.head_dim = 72;
    EXPECT_EQ(argument_error([&] { cuda::attention_prefill(none16, kv72, 4, 0, 1, none16, nullptr); }),
              "cuda attention_prefill: no kernel for head dimension 72 (64, 80, 96, 128)");
    EXPECT_EQ(argument_error([&] { cuda::attention_prefill(none16, kv, 3, 0, 1, none16, nullptr); }),
              "cuda attention_prefill: 3 query heads are not a multiple of 2 KV heads");
    EXPECT_EQ(argument_error([&] { cuda::dequantize_to_f16(TensorType::Q4_K, nullptr, 2, 100, none16, nullptr); }),
              "cuda dequantize_to_f16: 2 x 100 is not a valid Q4_K matrix (row length must be a positive multiple "
              "of 256)");
    EXPECT_EQ(
        argument_error([&] { cuda::embedding_rows(TensorType::Q8_0, nullptr, 64, nullptr, 0, nullptr, nullptr); }),
        "cuda embedding_rows: 0 tokens (1 .. 65535)");
}

TEST(CudaPrefillOps, DequantizeToF16EqualsCpuDequantizationRounded) {
    ORCD_SKIP_WITHOUT_GPU();
    std::mt19937_64 rng(fresh_seed());
    for (const TensorType type : kTypes) {
        SCOPED_TRACE(gguf::type_name(type));
        ASSERT_TRUE(cuda::dequant_f16_supported(type));
        const int64_t cols = gguf::traits(type).block_elems == 256 ? 1536 : 896, rows = 29;
        const std::vector<uint8_t> m = quantized_matrix(rng, type, rows, cols);
        std::vector<float> ref(rows * cols);
        quant::dequantize_row(type, m.data(), ref.data(), rows * cols);  // rows are contiguous blocks
        DeviceBuffer<uint8_t> dm(m);
        DeviceBuffer<uint16_t> out(rows * cols);
        out.poison();
        cuda::dequantize_to_f16(type, dm.get(), rows, cols, out.get(), nullptr);
        const std::vector<uint16_t> got = out.download();
        int64_t mismatches = 0;
        for (int64_t i = 0; i < rows * cols; ++i) mismatches += got[i] != fp32_to_fp16(ref[i]);
        // Exact: the f32 value of the CPU reference, rounded to nearest f16.
        EXPECT_EQ(mismatches, 0);
    }
}

// A layer's matrices in one launch: every block format, mixed and back to back as the prefill stages them, give the
// bits of one dequantize_to_f16 each.
TEST(CudaPrefillOps, DequantizeManyEqualsOneMatrixAtATime) {
    ORCD_SKIP_WITHOUT_GPU();
    std::mt19937_64 rng(fresh_seed());
    std::vector<TensorType> types;
    for (const TensorType type : kTypes) {
        if (gguf::traits(type).block_elems > 1) types.push_back(type);
    }
    std::shuffle(types.begin(), types.end(), rng);
    ASSERT_EQ(types.size(), static_cast<size_t>(cuda::kMaxDequantJobs));
    std::deque<DeviceBuffer<uint8_t>> src;  // not movable: a deque keeps them in place
    std::vector<cuda::DequantJob> jobs;
    int64_t total = 0;
    for (size_t j = 0; j < types.size(); ++j) {
        const int64_t cols = gguf::traits(types[j]).block_elems == 256 ? 512 : 224;
        const int64_t rows = 3 + static_cast<int64_t>(j) * 5;
        src.emplace_back(quantized_matrix(rng, types[j], rows, cols));
        jobs.push_back({types[j], src.back().get(), rows, cols, nullptr});
        total += rows * cols;
    }
    DeviceBuffer<uint16_t> many(total), one(total);
    many.poison();
    one.poison();
    int64_t at = 0;
    for (cuda::DequantJob& job : jobs) {
        cuda::dequantize_to_f16(job.type, job.src, job.rows, job.cols, one.get() + at, nullptr);
        job.dst = many.get() + at;
        at += job.rows * job.cols;
    }
    cuda::dequantize_many_to_f16(jobs, nullptr);
    EXPECT_EQ(many.download(), one.download());
    // Refusals name the matrix: a plain type has no batched kernel, a row length off its blocks.
    std::vector<cuda::DequantJob> bad = {jobs[0], {TensorType::F32, nullptr, 2, 64, many.get()}};
    try {
        cuda::dequantize_many_to_f16(bad, nullptr);
        ADD_FAILURE() << "F32 accepted";
    } catch (const Error& e) {
        EXPECT_EQ(e.code(), ErrorCode::UnsupportedTensorType);
        EXPECT_STREQ(e.what(), "no CUDA batched f16 dequantization kernel for tensor type F32");
    }
    bad[1] = {TensorType::Q4_K, nullptr, 2, 100, many.get()};
    EXPECT_EQ(argument_error([&] { cuda::dequantize_many_to_f16(bad, nullptr); }),
              "cuda dequantize_many_to_f16: matrix 1: 2 x 100 is not a valid Q4_K matrix (row length must be a "
              "positive multiple of 256)");
    EXPECT_EQ(argument_error([&] { cuda::dequantize_many_to_f16({}, nullptr); }),
              "cuda dequantize_many_to_f16: 0 matrices (1 .. 8)");
}

// The prefill's products give a token's row the same bits whatever else the call holds (gemm.h): a prompt computed
// after cached prefix pages runs its first positions in a shorter chunk than a fresh run does. The weight shapes of
// Qwen2.5-0.5B and Phi-3-mini (fused q|k|v, o, gate|up, down): 600 tokens in one call (split at 512) against the same
// tokens in the chunks a cached prefix leaves (1 .. 481 tokens at odd offsets), and the accumulating form (o and
// down add into the residual) whole against in pieces.
TEST(CudaPrefillOps, GemmRowsDoNotDependOnTheTokenCount) {
    ORCD_SKIP_WITHOUT_GPU();
    std::mt19937_64 rng(fresh_seed());
    struct Shape {
        int64_t rows, cols;
    };
    constexpr Shape kShapes[] = {{1152, 896},  {896, 896},   {9728, 896},   {896, 4864},
                                 {9216, 3072}, {3072, 3072}, {16384, 3072}, {3072, 8192}};
    constexpr int64_t kN = 600;
    constexpr std::pair<int64_t, int64_t> kChunks[] = {{0, 1}, {480, 32}, {511, 1}, {300, 76}, {7, 481}, {512, 88}};
    constexpr size_t kWorkspace = 32u << 20;
    DeviceBuffer<uint8_t> workspace(kWorkspace);
    cuda::Gemm gemm(nullptr, workspace.get(), kWorkspace);
    std::uniform_real_distribution<float> u(-1.f, 1.f);
    auto halves = [&](size_t n) {
        std::vector<uint16_t> v(n);
        for (uint16_t& h : v) h = fp32_to_fp16(u(rng));
        return v;
    };
    for (const auto& [rows, cols] : kShapes) {
        SCOPED_TRACE(std::to_string(rows) + " x " + std::to_string(cols));
        std::printf("%lld x %lld: %s\n", static_cast<long long>(rows), static_cast<long long>(cols),
                    gemm.algorithm(rows, cols, rows).c_str());
        const DeviceBuffer<uint16_t> w(halves(static_cast<size_t>(rows * cols))),
            x(halves(static_cast<size_t>(kN * cols)));
        DeviceBuffer<float> y(static_cast<size_t>(kN * rows));
        y.poison();
        gemm.run(w.get(), rows, cols, x.get(), kN, y.get(), rows, false);
        const std::vector<float> whole = y.download();
        for (const auto& [t0, n] : kChunks) {
            y.poison();
            gemm.run(w.get(), rows, cols, x.get() + t0 * cols, n, y.get(), rows, false);
            const std::vector<float> part = y.download();
            EXPECT_EQ(std::memcmp(part.data(), whole.data() + t0 * rows, static_cast<size_t>(n * rows) * 4), 0)
                << n << " tokens from token " << t0;
        }
        const std::vector<float> residual = normal_vector(rng, static_cast<size_t>(kN * rows));
        y.upload(residual);
        gemm.run(w.get(), rows, cols, x.get(), kN, y.get(), rows, true);
        const std::vector<float> added = y.download();
        y.upload(residual);
        for (const auto& [t0, n] : {std::pair<int64_t, int64_t>{0, 100}, {100, 1}, {101, 499}}) {
            gemm.run(w.get(), rows, cols, x.get() + t0 * cols, n, y.get() + t0 * rows, rows, true);
        }
        EXPECT_EQ(y.download(), added) << "accumulated in pieces";
    }
    // Operands off the 16-byte alignment the algorithms were chosen for are refused.
    const DeviceBuffer<uint16_t> w(halves(64 * 64)), x(halves(64 * 2));
    DeviceBuffer<float> y(128);
    try {
        gemm.run(w.get(), 64, 64, x.get() + 1, 1, y.get(), 64, false);
        ADD_FAILURE() << "a misaligned operand accepted";
    } catch (const Error& e) {
        EXPECT_EQ(e.code(), ErrorCode::Internal);
        EXPECT_STREQ(e.what(), "prefill product of 64 x 64 weights: operands and rows must be 16-byte aligned");
    }
}

TEST(CudaPrefillOps, EmbeddingRowsMatchCpuDequantization) {
    ORCD_SKIP_WITHOUT_GPU();
    std::mt19937_64 rng(fresh_seed());
    for (const TensorType type : kTypes) {
        SCOPED_TRACE(gguf::type_name(type));
        const int64_t cols = gguf::traits(type).block_elems == 256 ? 1024 : 896, rows = 41, n = 9;
        const std::vector<uint8_t> table = quantized_matrix(rng, type, rows, cols);
        std::vector<int32_t> tokens(n);
        for (int32_t& t : tokens) t = std::uniform_int_distribution<int32_t>(0, rows - 1)(rng);
        const uint64_t rb = gguf::row_bytes(type, cols);
        std::vector<float> ref(n * cols);
        for (int64_t t = 0; t < n; ++t) {
            quant::dequantize_row(type, table.data() + tokens[t] * rb, ref.data() + t * cols, cols);
        }
        DeviceBuffer<uint8_t> dt(table);
        DeviceBuffer<int32_t> dtok(tokens);
        DeviceBuffer<float> out(n * cols);
        out.poison();
        cuda::embedding_rows(type, dt.get(), cols, dtok.get(), n, out.get(), nullptr);
        EXPECT_LT(rel_error(out.download(), ref), 1e-6);
    }
}

// Prefill attention against the CPU reference fed the same f16-rounded queries: the remaining difference is P rounded
// to f16 before P V (relative 2^-11 per weight) and the summation order: bound 4e-3 relative to max |out|.
TEST(CudaPrefillOps, AttentionPrefillMatchesCpuWithGqa) {
    ORCD_SKIP_WITHOUT_GPU();
    std::mt19937_64 rng(fresh_seed());
    backend::cpu::ThreadPool pool(2);
    struct Case {
        int heads, n_kv, hd;
        int64_t pos0, n_tokens;
    };
    const Case cases[] = {{14, 2, 64, 0, 77},  {14, 2, 64, 130, 64}, {32, 32, 96, 0, 200}, {8, 8, 96, 63, 65},
                          {8, 2, 128, 5, 129}, {4, 4, 80, 1, 3},     {4, 2, 64, 300, 1}};
    for (const Case& c : cases) {
        SCOPED_TRACE(testing::Message() << c.heads << "/" << c.n_kv << " heads of " << c.hd << ", " << c.n_tokens
                                        << " tokens after " << c.pos0);
        const int64_t n_ctx = c.pos0 + c.n_tokens + 70;  // slots past the batch hold NaN: must never be read
        const int64_t filled = c.pos0 + c.n_tokens;
        std::vector<uint16_t> k(n_ctx * c.n_kv * c.hd, 0x7e00), v(k.size(), 0x7e00);
        const backend::cpu::KvLayerView view{backend::cpu::KvType::F16, k.data(), v.data(), n_ctx, c.n_kv, c.hd};
        const std::vector<float> kf = normal_vector(rng, filled * c.n_kv * c.hd, 1.5f);
        const std::vector<float> vf = normal_vector(rng, kf.size());
        backend::cpu::kv_store(view, 0, filled, kf.data(), vf.data());
        std::vector<float> q = normal_vector(rng, c.n_tokens * c.heads * c.hd);
        std::vector<uint16_t> q16(q.size());
        for (size_t i = 0; i < q.size(); ++i) {
            q16[i] = fp32_to_fp16(q[i]);
            q[i] = fp16_to_fp32(q16[i]);
        }
        DeviceBuffer<uint16_t> dk(k), dv(v), dq(q16), dout(q.size());
        const cuda::KvCacheView kv{dk.get(), dv.get(), n_ctx, c.n_kv, c.hd};
        // The same cache in pages of 1, 5, 16 and 64 positions, stored in a shuffled order behind a page table: the
        // kernel must read the same rows (so give the same bits) whatever the page size.
        struct Paged {
            int page_size;
            std::unique_ptr<DeviceBuffer<uint16_t>> k, v;
            std::unique_ptr<DeviceBuffer<int32_t>> table;
            cuda::KvCacheView view;
        };
        std::vector<Paged> paged;
        const int64_t kv_dim = static_cast<int64_t>(c.n_kv) * c.hd;
        for (const int ps : {1, 5, 16, 64}) {
            const int64_t n_pages = (n_ctx + ps - 1) / ps;
            std::vector<int32_t> table(static_cast<size_t>(n_pages));
            std::iota(table.begin(), table.end(), 0);
            std::shuffle(table.begin(), table.end(), rng);
            std::vector<uint16_t> pk(static_cast<size_t>(n_pages * ps * kv_dim), 0x7e00), pv(pk.size(), 0x7e00);
            for (int64_t pos = 0; pos < n_ctx; ++pos) {
                const int64_t at = (table[static_cast<size_t>(pos / ps)] * ps + pos % ps) * kv_dim;
                std::copy_n(k.begin() + pos * kv_dim, kv_dim, pk.begin() + at);
                std::copy_n(v.begin() + pos * kv_dim, kv_dim, pv.begin() + at);
            }
            Paged pg{ps,
                     std::make_unique<DeviceBuffer<uint16_t>>(pk),
                     std::make_unique<DeviceBuffer<uint16_t>>(pv),
                     std::make_unique<DeviceBuffer<int32_t>>(table),
                     {}};
            pg.view = {pg.k->get(), pg.v->get(), n_pages * ps, c.n_kv, c.hd, pg.table->get(), ps, ps * kv_dim};
            paged.push_back(std::move(pg));
        }
        // Without a window; windows shorter than a key tile (rows of a block then start in different tiles, some
        // rows' first tiles fully masked), spanning tiles, and longer than every position.
        for (const uint32_t window : {0u, 16u, 100u, 5000u}) {
            SCOPED_TRACE(testing::Message() << "window " << window);
            std::vector<float> ref(q.size());
            backend::cpu::attention(q.data(), view, c.pos0, c.n_tokens, c.heads, ref.data(), pool, window);
            dout.poison();
            cuda::attention_prefill(dq.get(), kv, c.heads, c.pos0, c.n_tokens, dout.get(), nullptr, window);
            const std::vector<uint16_t> got16 = dout.download();
            std::vector<float> got(got16.size());
            for (size_t i = 0; i < got.size(); ++i) got[i] = fp16_to_fp32(got16[i]);
            const double err = rel_error(got, ref);
            std::printf("attention_prefill %d/%d x %d, %lld after %lld, window %u: relative error %.3g\n", c.heads,
                        c.n_kv, c.hd, static_cast<long long>(c.n_tokens), static_cast<long long>(c.pos0), window, err);
            EXPECT_LT(err, 4e-3);
            // Bit-identical on a second run.
            dout.poison();
            cuda::attention_prefill(dq.get(), kv, c.heads, c.pos0, c.n_tokens, dout.get(), nullptr, window);
            EXPECT_EQ(dout.download(), got16);
            for (const Paged& pg : paged) {
                SCOPED_TRACE(testing::Message() << "pages of " << pg.page_size);
                dout.poison();
                cuda::attention_prefill(dq.get(), pg.view, c.heads, c.pos0, c.n_tokens, dout.get(), nullptr, window);
                EXPECT_EQ(dout.download(), got16);
            }
        }
    }
}

// ---- End to end --------------------------------------------------------------------------------------------------

using backend::TokenId;

std::vector<float> copy(std::span<const float> v) { return {v.begin(), v.end()}; }

int32_t argmax(const float* v, size_t n) { return static_cast<int32_t>(std::max_element(v, v + n) - v); }

struct Compare {
    double worst = 0;
    int agree = 0, rows = 0;
};

// Row-by-row comparison of [rows][V] logits.
Compare compare(const std::vector<float>& got, const std::vector<float>& want, size_t V) {
    Compare c;
    for (size_t r = 0; r * V < want.size(); ++r) {
        const std::vector<float> a(got.begin() + r * V, got.begin() + (r + 1) * V);
        const std::vector<float> b(want.begin() + r * V, want.begin() + (r + 1) * V);
        c.worst = std::max(c.worst, rel_error(a, b));
        c.agree += argmax(a.data(), V) == argmax(b.data(), V);
        ++c.rows;
    }
    return c;
}

// The schedule every backend runs: prefill a (all logits), decode 3 tokens, prefill b (all logits), prefill c (last
// only). Returns the concatenated logits.
std::vector<float> schedule(backend::Backend& be, const std::vector<TokenId>& a, const std::vector<TokenId>& b,
                            const std::vector<TokenId>& c) {
    auto seq = be.new_sequence({.n_ctx = 2048, .kv_type = backend::KvCacheType::F16});
    std::vector<float> out = copy(seq->prefill(a, true));
    for (TokenId t : {5, 17, 301}) {
        const auto l = seq->decode(t);
        out.insert(out.end(), l.begin(), l.end());
    }
    auto lb = seq->prefill(b, true);
    out.insert(out.end(), lb.begin(), lb.end());
    auto lc = seq->prefill(c, false);
    out.insert(out.end(), lc.begin(), lc.end());
    EXPECT_EQ(seq->n_past(), a.size() + 3 + b.size() + c.size());
    return out;
}

std::vector<TokenId> random_tokens(std::mt19937_64& rng, size_t n) {
    std::vector<TokenId> t(n);
    for (TokenId& x : t) x = std::uniform_int_distribution<TokenId>(0, 511)(rng);
    return t;
}

class CudaPrefillE2E : public testing::TestWithParam<std::string> {};

// Every CUDA backend of these tests decodes with f32 activations: they isolate the batched prefill (and the f16
// weights); the int8-activation decode path has its own tests (test_matvec_q8.cpp, CudaBackendE2E).
constexpr auto kF32 = backend::cuda::Activations::F32;
// Micro-batches of 128 tokens (the default is 1024): a spans several, so later micro-batches attend across the
// boundaries.
constexpr backend::cuda::CudaOptions kSmallBatches{.prefill_ubatch = 128, .activations = kF32};

TEST_P(CudaPrefillE2E, F32WeightsMatchCpuBackendAndTokenByTokenDecode) {
    ORCD_SKIP_WITHOUT_GPU();
    std::mt19937_64 rng(fresh_seed());
    const model::Model m = model::open_model(test::tiny_model(GetParam(), synth::FileType::F32));
    const auto a = random_tokens(rng, 600), b = random_tokens(rng, 37), c = random_tokens(rng, 2);
    auto cpu = backend::cpu::make_cpu_backend(m, {.n_threads = 2});
    auto gpu = backend::cuda::make_cuda_backend(m, kSmallBatches);
    auto ref_gpu = backend::cuda::make_cuda_backend(m, {.batched_prefill = false, .activations = kF32});
    const size_t V = cpu->n_vocab();
    const std::vector<float> want = schedule(*cpu, a, b, c);
    const std::vector<float> got = schedule(*gpu, a, b, c);
    const std::vector<float> stepwise = schedule(*ref_gpu, a, b, c);
    ASSERT_EQ(got.size(), want.size());
    const Compare vs_cpu = compare(got, want, V), vs_steps = compare(got, stepwise, V);
    std::printf("F32 %s batched vs CPU: worst %.3g, argmax %d/%d; vs CUDA token-by-token: worst %.3g, argmax %d/%d\n",
                GetParam().c_str(), vs_cpu.worst, vs_cpu.agree, vs_cpu.rows, vs_steps.worst, vs_steps.agree,
                vs_steps.rows);
    EXPECT_LT(vs_cpu.worst, 2e-2);
    EXPECT_LT(vs_steps.worst, 2e-2);
    EXPECT_GE(vs_cpu.agree, vs_cpu.rows * 95 / 100);
    EXPECT_GE(vs_steps.agree, vs_steps.rows * 95 / 100);

    // Deterministic: a second run gives the same bits.
    const std::vector<float> again = schedule(*gpu, a, b, c);
    EXPECT_EQ(std::memcmp(again.data(), got.data(), got.size() * sizeof(float)), 0);
    // The last-token-only logits equal the last row of an all-logits prefill.
    auto s1 = gpu->new_sequence({.n_ctx = 1024, .kv_type = backend::KvCacheType::F16});
    auto s2 = gpu->new_sequence({.n_ctx = 1024, .kv_type = backend::KvCacheType::F16});
    const std::vector<float> last = copy(s1->prefill(b, false));
    const std::vector<float> all = copy(s2->prefill(b, true));
    const std::vector<float> all_last(all.end() - static_cast<std::ptrdiff_t>(V), all.end());
    EXPECT_LT(rel_error(last, all_last), 2e-2);  // matvec on f32 vs GEMM on f16: different roundings
}

TEST_P(CudaPrefillE2E, Q4KMAgreesWithCpuBackendAndTokenByTokenDecode) {
    ORCD_SKIP_WITHOUT_GPU();
    std::mt19937_64 rng(fresh_seed());
    const model::Model m = model::open_model(test::tiny_model(GetParam(), synth::FileType::Q4_K_M));
    const auto a = random_tokens(rng, 530), b = random_tokens(rng, 20), c = random_tokens(rng, 9);
    auto cpu = backend::cpu::make_cpu_backend(m, {.n_threads = 2});
    auto gpu = backend::cuda::make_cuda_backend(m, kSmallBatches);
    auto ref_gpu = backend::cuda::make_cuda_backend(m, {.batched_prefill = false, .activations = kF32});
    const size_t V = cpu->n_vocab();
    const Compare vs_cpu = compare(schedule(*gpu, a, b, c), schedule(*cpu, a, b, c), V);
    const Compare vs_steps = compare(schedule(*gpu, a, b, c), schedule(*ref_gpu, a, b, c), V);
    std::printf(
        "Q4_K_M %s batched vs CPU: worst %.3g, argmax %d/%d; vs CUDA token-by-token: worst %.3g, "
        "argmax %d/%d\n",
        GetParam().c_str(), vs_cpu.worst, vs_cpu.agree, vs_cpu.rows, vs_steps.worst, vs_steps.agree, vs_steps.rows);
    EXPECT_LT(vs_cpu.worst, 0.1);
    EXPECT_GE(vs_cpu.agree, vs_cpu.rows * 8 / 10);
    // Same weights on both CUDA sides; only f16 activations / f16 P separate them.
    EXPECT_LT(vs_steps.worst, 2e-2);
    EXPECT_GE(vs_steps.agree, vs_steps.rows * 95 / 100);
}

// `--weights f16`: every matrix dequantized once to f16 (exact values of the quantized weights, rounded to f16):
// decode and prefill logits within 2e-2 of the quantized mode.
TEST_P(CudaPrefillE2E, F16WeightsMatchQuantizedWeights) {
    ORCD_SKIP_WITHOUT_GPU();
    std::mt19937_64 rng(fresh_seed());
    const model::Model m = model::open_model(test::tiny_model(GetParam(), synth::FileType::Q4_K_M));
    const auto a = random_tokens(rng, 100), b = random_tokens(rng, 20), c = random_tokens(rng, 3);
    auto q = backend::cuda::make_cuda_backend(m, {.activations = kF32});
    auto f = backend::cuda::make_cuda_backend(m, {.weights = backend::cuda::WeightsMode::F16, .activations = kF32});
    const size_t V = q->n_vocab();
    const Compare batched = compare(schedule(*f, a, b, c), schedule(*q, a, b, c), V);
    auto qs = backend::cuda::make_cuda_backend(m, {.batched_prefill = false, .activations = kF32});
    auto fs = backend::cuda::make_cuda_backend(
        m, {.weights = backend::cuda::WeightsMode::F16, .batched_prefill = false, .activations = kF32});
    const Compare steps = compare(schedule(*fs, a, b, c), schedule(*qs, a, b, c), V);
    std::printf("--weights f16 %s vs quantized: batched worst %.3g (argmax %d/%d), decode worst %.3g (%d/%d)\n",
                GetParam().c_str(), batched.worst, batched.agree, batched.rows, steps.worst, steps.agree, steps.rows);
    EXPECT_LT(batched.worst, 2e-2);
    EXPECT_LT(steps.worst, 2e-2);
    EXPECT_GE(steps.agree, steps.rows * 95 / 100);
}

// phi3-tiny has a sliding window of 16: its 600-token prefill and the decodes after it run far past the window.
INSTANTIATE_TEST_SUITE_P(Tiny, CudaPrefillE2E, testing::Values("qwen2.5-tiny", "qwen3-tiny", "phi3-tiny", "llama-tiny"),
                         [](const auto& info) {
                             std::string n = info.param;
                             std::replace_if(
                                 n.begin(), n.end(), [](char ch) { return !std::isalnum(ch); }, '_');
                             return n;
                         });

}  // namespace
}  // namespace orcd
