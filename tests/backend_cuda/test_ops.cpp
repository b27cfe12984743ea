// The CUDA ops against the CPU reference ops (backend/cpu/ops.h) on fresh random data of the reference models' shapes
// (Qwen2.5-0.5B: 896 wide, 14 query heads over 2 KV heads of 64; Phi-3-mini: 3072 wide, 32 heads of 96; a llama
// shape with 128-dim heads and partial rotation). Outputs are poisoned with NaN before every launch.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>

#include "backend/cpu/ops.h"
#include "backend/cuda/matvec_q8.h"
#include "backend/cuda/ops.h"
#include "common/error.h"
#include "common/half.h"
#include "quant/convert.h"
#include "cuda_test_util.h"

namespace orcd::cuda {
namespace {

using test::argument_error;
using test::DeviceBuffer;
using test::fake_kv;
using test::fresh_seed;
using test::normal_vector;
using test::rel_error;

// Each refused call names the op and the values that failed, runs on a machine without a GPU, and launches nothing.
TEST(CudaOps, ArgumentChecksNameTheOpAndTheValues) {
    float* none = nullptr;
    static const int32_t pos[1] = {0};
    const DecodeColumns cols{pos, nullptr};
    EXPECT_EQ(argument_error([&] { rms_norm(none, none, 2, 8, -1e-5f, none, nullptr); }),
              "cuda rms_norm: epsilon -1e-05 is not a finite value >= 0");
    EXPECT_EQ(argument_error([&] { rms_norm(none, none, 0, 8, 1e-5f, none, nullptr); }),
              "cuda rms_norm: needs n_tokens > 0 and n > 0");
    EXPECT_EQ(argument_error([&] { rms_norm_heads(none, 1, 100, 2, 64, none, NAN, nullptr); }),
              "cuda rms_norm_heads: row stride 100 is shorter than 2 heads of 64");
    EXPECT_EQ(argument_error([&] { rms_norm_heads(none, 1, 128, 2, 64, none, NAN, nullptr); }),
              "cuda rms_norm_heads: epsilon nan is not a finite value >= 0");
    EXPECT_EQ(argument_error([&] { rope(none, 1, 2, 64, 3, pos, nullptr, RopeLayout::Interleaved, nullptr); }),
              "cuda rope: rotated dimensions 3 must be even and within the head dimension 64");
    EXPECT_EQ(argument_error([&] { add(none, none, 0, nullptr); }), "cuda add: needs n > 0");
    EXPECT_EQ(argument_error([&] { kv_store(fake_kv(16, 2, 64), 17, none, none, pos, nullptr); }),
              "cuda kv_store: 17 tokens do not fit a cache of 16");
    KvCacheView paged = fake_kv(16, 2, 64);
    paged.pages = pos;
    EXPECT_EQ(argument_error([&] { kv_store(paged, 1, none, none, pos, nullptr); }),
              "cuda kv_store: a paged KV cache view needs page_size and page_stride > 0 (found 0 and 0)");
    EXPECT_EQ(argument_error([&] {
                  qkv_rope_store(none, 0, 1, none, none, none, 3, fake_kv(16, 2, 64), 64, cols, nullptr,
                                 RopeLayout::Interleaved, nullptr);
              }),
              "cuda qkv_rope_store: 3 query heads are not a multiple of 2 KV heads");
    EXPECT_EQ(argument_error([&] {
                  qkv_rope_store(none, 0, 1, none, none, none, 4, fake_kv(16, 2, 64), 66, cols, nullptr,
                                 RopeLayout::Interleaved, nullptr);
              }),
              "cuda qkv_rope_store: rotated dimensions 66 must be even and within the head dimension 64");
    EXPECT_EQ(
        argument_error([&] { attention_decode(none, 0, 0, fake_kv(16, 2, 64), 4, cols, none, 0, none, nullptr); }),
        "cuda attention_decode: 0 columns (1 .. 65535)");
    EXPECT_EQ(
        argument_error([&] { attention_decode(none, 0, 1, fake_kv(16, 1, 60), 4, cols, none, 0, none, nullptr); }),
        "cuda attention_decode: head dimension 60 is not a multiple of 8");
    // 64 heads over one KV head: 64 * (136 + 64) floats of scores and queries = 51200 B.
    EXPECT_EQ(
        argument_error([&] { attention_decode(none, 0, 1, fake_kv(16, 1, 136), 64, cols, none, 0, none, nullptr); }),
        "cuda attention_decode: a group of 64 heads of dimension 136 needs 51200 B of shared memory (limit 48 "
        "KiB)");
    // The int8 form checks what attention_decode does under its own name, then its output's blocks and alignment.
    void* ws = reinterpret_cast<void*>(uintptr_t{256});
    EXPECT_EQ(argument_error([&] { attention_decode_q8(none, 0, 1, fake_kv(16, 1, 60), 4, cols, {}, ws, nullptr); }),
              "cuda attention_decode_q8: head dimension 60 is not a multiple of 8");
    EXPECT_EQ(argument_error([&] { attention_decode_q8(none, 0, 1, fake_kv(16, 1, 8), 3, cols, {}, ws, nullptr); }),
              "cuda attention_decode_q8: 3 heads of dimension 8 (24 values) are not 32-blocks");
    const Q8Vector odd{reinterpret_cast<int8_t*>(uintptr_t{264}), nullptr, nullptr};
    EXPECT_EQ(argument_error([&] { attention_decode_q8(none, 0, 1, fake_kv(16, 1, 8), 4, cols, odd, ws, nullptr); }),
              "cuda attention_decode_q8: q must be 16-byte aligned");
    EXPECT_EQ(argument_error([&] { embedding_row(gguf::TensorType::Q4_K, nullptr, 100, pos, none, nullptr); }),
              "cuda embedding_row: row length 100 is not a positive multiple of the Q4_K block size 256");
    EXPECT_EQ(argument_error([&] { argmax(none, 10, nullptr, nullptr, 0); }), "cuda argmax: 0 rows (1 .. 65535)");
}

TEST(CudaOps, RmsNormMatchesCpu) {
    ORCD_SKIP_WITHOUT_GPU();
    std::mt19937_64 rng(fresh_seed());
    struct Case {
        int64_t tokens, n;
        float eps;
    };
    for (const Case c : {Case{1, 896, 1e-6f}, Case{7, 3072, 1e-5f}, Case{3, 4096, 1e-5f}, Case{2, 33, 1e-6f}}) {
        SCOPED_TRACE(testing::Message() << c.tokens << "x" << c.n);
        // Offset and scale the input so the norm is not ~1 by construction.
        std::vector<float> x = normal_vector(rng, c.tokens * c.n, 3.0f), w = normal_vector(rng, c.n);
        for (float& v : x) v += 0.5f;
        std::vector<float> ref(x.size());
        backend::cpu::rms_norm(x.data(), w.data(), c.tokens, c.n, c.eps, ref.data());
        DeviceBuffer<float> dx(x), dw(w), dout(x.size());
        dout.poison();
        rms_norm(dx.get(), dw.get(), c.tokens, c.n, c.eps, dout.get(), nullptr);
        // Both reduce the squares in double; only the summation order differs, so the f32 scale agrees to an ulp.
        EXPECT_LT(rel_error(dout.download(), ref), 1e-6);
        // In place (out aliases x), as the backend uses it.
        rms_norm(dx.get(), dw.get(), c.tokens, c.n, c.eps, dx.get(), nullptr);
        EXPECT_LT(rel_error(dx.download(), ref), 1e-6);
    }
}

// The q/k norm (qwen3): every head of a strided [q | k | v] row normalized on its own, as the CPU backend does it
// with rms_norm over rows of head_dim values; the rest of the row untouched.
TEST(CudaOps, RmsNormHeadsMatchesCpuPerHead) {
    ORCD_SKIP_WITHOUT_GPU();
    std::mt19937_64 rng(fresh_seed());
    struct Case {
        int64_t tokens;
        int heads, hd;
        int64_t stride;
    };
    // qwen3-0.6b q (16 x 128 in a row of 16*128 + 2*8*128), its k (8 heads), one decode token, an odd head size.
    for (const Case c : {Case{5, 16, 128, 4096}, Case{5, 8, 128, 4096}, Case{1, 16, 128, 4096}, Case{3, 3, 40, 200}}) {
        SCOPED_TRACE(testing::Message() << c.tokens << " x " << c.heads << " heads of " << c.hd);
        std::vector<float> x = normal_vector(rng, c.tokens * c.stride, 3.0f), w = normal_vector(rng, c.hd);
        for (float& v : x) v += 0.5f;
        std::vector<float> ref = x;
        for (int64_t t = 0; t < c.tokens; ++t) {
            float* row = ref.data() + t * c.stride;
            backend::cpu::rms_norm(row, w.data(), c.heads, c.hd, 1e-6f, row);
        }
        DeviceBuffer<float> dx(x), dw(w);
        rms_norm_heads(dx.get(), c.tokens, c.stride, c.heads, c.hd, dw.get(), 1e-6f, nullptr);
        const std::vector<float> got = dx.download();
        EXPECT_LT(rel_error(got, ref), 1e-6);
        for (int64_t t = 0; t < c.tokens; ++t) {
            for (int64_t i = static_cast<int64_t>(c.heads) * c.hd; i < c.stride; ++i) {
                ASSERT_EQ(got[t * c.stride + i], x[t * c.stride + i]) << "token " << t << " element " << i;
            }
        }
    }
    float* none = nullptr;
    EXPECT_THROW(rms_norm_heads(none, 1, 100, 2, 64, none, 1e-6f, nullptr), Error);  // row shorter than the heads
}

TEST(CudaOps, RopeMatchesCpuInBothLayouts) {
    ORCD_SKIP_WITHOUT_GPU();
    std::mt19937_64 rng(fresh_seed());
    struct Case {
        int heads, head_dim, n_rot;
        double theta;
        backend::cpu::RopeLayout layout;
    };
    const Case cases[] = {
        {14, 64, 64, 1e6, backend::cpu::RopeLayout::NeoX},           // qwen2.5 q
        {2, 64, 64, 1e6, backend::cpu::RopeLayout::NeoX},            // qwen2.5 k
        {32, 96, 96, 1e4, backend::cpu::RopeLayout::NeoX},           // phi3
        {32, 128, 128, 5e5, backend::cpu::RopeLayout::Interleaved},  // llama
        {8, 128, 64, 1e4, backend::cpu::RopeLayout::Interleaved},    // partial rotation: dims 64.. untouched
        {4, 80, 32, 1e4, backend::cpu::RopeLayout::NeoX},            // partial NeoX
    };
    std::uniform_int_distribution<int32_t> pos_dist(0, 30000);
    for (const Case& c : cases) {
        const int64_t tokens = 3;
        const int32_t pos0 = pos_dist(rng);
        SCOPED_TRACE(testing::Message() << c.heads << "x" << c.head_dim << " rot " << c.n_rot << " pos " << pos0);
        std::vector<float> x = normal_vector(rng, tokens * c.heads * c.head_dim);
        std::vector<float> ref = x;
        const std::vector<double> inv = backend::cpu::rope_inv_freq(c.n_rot, c.theta);
        for (int64_t t = 0; t < tokens; ++t) {
            backend::cpu::rope(ref.data() + t * c.heads * c.head_dim, c.heads, c.head_dim, c.n_rot, pos0 + t, inv,
                               c.layout);
        }
        DeviceBuffer<float> dx(x);
        DeviceBuffer<double> dinv(inv);
        DeviceBuffer<int32_t> dpos(std::vector<int32_t>{pos0});
        rope(dx.get(), tokens, c.heads, c.head_dim, c.n_rot, dpos.get(), dinv.get(),
             c.layout == backend::cpu::RopeLayout::NeoX ? RopeLayout::NeoX : RopeLayout::Interleaved, nullptr);
        const std::vector<float> got = dx.download();
        // Same double angles and f32 products as the CPU: agreement to the last bits of the f32 result.
        EXPECT_LT(rel_error(got, ref), 1e-6);
        // A wrong layout or position would move values by O(1): make sure the rotation did something.
        EXPECT_GT(rel_error(x, ref), 1e-2);
    }
}

TEST(CudaOps, BiasAddResidualAddAndSwiglu) {
    ORCD_SKIP_WITHOUT_GPU();
    std::mt19937_64 rng(fresh_seed());
    const int64_t tokens = 3, n = 4864;
    std::vector<float> y = normal_vector(rng, tokens * n), b = normal_vector(rng, n);
    std::vector<float> ref = y;
    for (int64_t t = 0; t < tokens; ++t) backend::cpu::add(ref.data() + t * n, b.data(), n);
    DeviceBuffer<float> dy(y), db(b);
    add_bias(dy.get(), db.get(), tokens, n, nullptr);
    EXPECT_EQ(rel_error(dy.download(), ref), 0.0);  // one f32 add per element: exact

    std::vector<float> r = normal_vector(rng, tokens * n);
    DeviceBuffer<float> dr(r);
    add(dy.get(), dr.get(), tokens * n, nullptr);
    backend::cpu::add(ref.data(), r.data(), tokens * n);
    EXPECT_EQ(rel_error(dy.download(), ref), 0.0);

    // SwiGLU over the fused [gate | up] layout, gate first (phi3's ffn_up rows).
    std::vector<float> gu = normal_vector(rng, tokens * 2 * n, 2.0f);
    std::vector<float> want(tokens * n);
    for (int64_t t = 0; t < tokens; ++t) {
        backend::cpu::swiglu(gu.data() + t * 2 * n, gu.data() + t * 2 * n + n, n, want.data() + t * n);
    }
    DeviceBuffer<float> dgu(gu), dout(tokens * n);
    dout.poison();
    swiglu(dgu.get(), tokens, n, dout.get(), nullptr);
    // expf on the device and in libm may differ by an ulp or two.
    EXPECT_LT(rel_error(dout.download(), want), 1e-6);
    // One token in place over the gate half, as the decode step runs it.
    swiglu(dgu.get(), 1, n, dgu.get(), nullptr);
    std::vector<float> got = dgu.download();
    got.resize(n);
    want.resize(n);
    EXPECT_LT(rel_error(got, want), 1e-6);
}

// Fills a CPU f16 cache view and the matching device cache with random K/V for positions < filled and NaN beyond
// (attention must never read past the current position).
struct Caches {
    int64_t n_ctx;
    int n_kv, hd;
    std::vector<uint16_t> k, v;
    Caches(std::mt19937_64& rng, int64_t n_ctx_, int n_kv_, int hd_, int64_t filled)
        : n_ctx(n_ctx_), n_kv(n_kv_), hd(hd_), k(n_ctx_ * n_kv_ * hd_, 0x7e00), v(k.size(), 0x7e00) {
        const int64_t n = filled * n_kv * hd;
        const std::vector<float> kf = normal_vector(rng, n, 1.5f), vf = normal_vector(rng, n);
        backend::cpu::kv_store(cpu_view(), 0, filled, kf.data(), vf.data());
    }
    backend::cpu::KvLayerView cpu_view() { return {backend::cpu::KvType::F16, k.data(), v.data(), n_ctx, n_kv, hd}; }
};

TEST(CudaOps, KvStoreRoundsLikeCpu) {
    ORCD_SKIP_WITHOUT_GPU();
    std::mt19937_64 rng(fresh_seed());
    const int64_t n_ctx = 64, tokens = 2;
    const int n_kv = 2, hd = 64;
    const int32_t pos = 37;
    std::vector<float> k = normal_vector(rng, tokens * n_kv * hd, 100.0f), v = normal_vector(rng, k.size(), 1e-3f);
    k[0] = 1e6f;  // overflows f16: must become inf as on the CPU
    std::vector<uint16_t> ck(n_ctx * n_kv * hd, 0), cv(ck.size(), 0);
    backend::cpu::kv_store({backend::cpu::KvType::F16, ck.data(), cv.data(), n_ctx, n_kv, hd}, pos, tokens, k.data(),
                           v.data());
    DeviceBuffer<uint16_t> dk(std::vector<uint16_t>(ck.size(), 0)), dv(std::vector<uint16_t>(cv.size(), 0));
    DeviceBuffer<float> dkf(k), dvf(v);
    DeviceBuffer<int32_t> dpos(std::vector<int32_t>{pos});
    kv_store({dk.get(), dv.get(), n_ctx, n_kv, hd}, tokens, dkf.get(), dvf.get(), dpos.get(), nullptr);
    EXPECT_EQ(dk.download(), ck);  // round-to-nearest-even on both sides: bit-identical
    EXPECT_EQ(dv.download(), cv);
}

// The fused bias + RoPE + KV store of one decode token against the CPU's add, rope and kv_store in sequence.
TEST(CudaOps, QkvRopeStoreMatchesBiasRopeAndStore) {
    ORCD_SKIP_WITHOUT_GPU();
    std::mt19937_64 rng(fresh_seed());
    struct Case {
        int heads, n_kv, hd, n_rot;
        double theta;
        backend::cpu::RopeLayout layout;
        bool bias;
    };
    const Case cases[] = {
        {14, 2, 64, 64, 1e6, backend::cpu::RopeLayout::NeoX, true},            // qwen2.5-0.5b
        {32, 32, 96, 96, 1e4, backend::cpu::RopeLayout::NeoX, false},          // phi3-mini
        {32, 8, 128, 128, 5e5, backend::cpu::RopeLayout::Interleaved, false},  // llama
        {8, 4, 128, 64, 1e4, backend::cpu::RopeLayout::Interleaved, true},     // partial rotation, with biases
        {4, 2, 80, 32, 1e4, backend::cpu::RopeLayout::NeoX, true},             // partial NeoX
    };
    const int64_t n_ctx = 300;
    for (const Case& c : cases) {
        const int32_t pos = std::uniform_int_distribution<int32_t>(0, n_ctx - 1)(rng);
        SCOPED_TRACE(testing::Message() << c.heads << "/" << c.n_kv << "x" << c.hd << " rot " << c.n_rot << " pos "
                                        << pos);
        const int qd = c.heads * c.hd, kd = c.n_kv * c.hd;
        const std::vector<float> qkv = normal_vector(rng, qd + 2 * kd, 2.0f);
        const std::vector<float> bq = normal_vector(rng, qd), bk = normal_vector(rng, kd), bv = normal_vector(rng, kd);
        // CPU: biases, rotation of q and k, f16 store of k and v.
        std::vector<float> ref = qkv;
        if (c.bias) {
            backend::cpu::add(ref.data(), bq.data(), qd);
            backend::cpu::add(ref.data() + qd, bk.data(), kd);
            backend::cpu::add(ref.data() + qd + kd, bv.data(), kd);
        }
        const std::vector<double> inv = backend::cpu::rope_inv_freq(c.n_rot, c.theta);
        backend::cpu::rope(ref.data(), c.heads, c.hd, c.n_rot, pos, inv, c.layout);
        backend::cpu::rope(ref.data() + qd, c.n_kv, c.hd, c.n_rot, pos, inv, c.layout);
        std::vector<uint16_t> ck(n_ctx * kd, 0), cv(ck.size(), 0);
        backend::cpu::kv_store({backend::cpu::KvType::F16, ck.data(), cv.data(), n_ctx, c.n_kv, c.hd}, pos, 1,
                               ref.data() + qd, ref.data() + qd + kd);

        DeviceBuffer<float> dqkv(qkv), dbq(bq), dbk(bk), dbv(bv);
        DeviceBuffer<uint16_t> dk(std::vector<uint16_t>(ck.size(), 0)), dv(std::vector<uint16_t>(cv.size(), 0));
        DeviceBuffer<double> dinv(inv);
        DeviceBuffer<int32_t> dpos(std::vector<int32_t>{pos});
        qkv_rope_store(
            dqkv.get(), c.bias ? dbq.get() : nullptr, c.bias ? dbk.get() : nullptr, c.bias ? dbv.get() : nullptr,
            c.heads, {dk.get(), dv.get(), n_ctx, c.n_kv, c.hd}, c.n_rot, dpos.get(), dinv.get(),
            c.layout == backend::cpu::RopeLayout::NeoX ? RopeLayout::NeoX : RopeLayout::Interleaved, nullptr);
        // q: the same f32 expressions as rope() (which agrees with the CPU to the last bits, see above).
        std::vector<float> q = dqkv.download();
        q.resize(qd);
        EXPECT_LT(rel_error(q, std::vector<float>(ref.begin(), ref.begin() + qd)), 1e-6);
        // The cache: the same values rounded to f16; a last-bit difference in f32 can move a value across an f16
        // rounding boundary, so compare as floats within one f16 ulp (2^-10 relative) and require almost all equal.
        const std::vector<uint16_t> gk = dk.download(), gv = dv.download();
        auto as_float = [](const std::vector<uint16_t>& h) {
            std::vector<float> f(h.size());
            for (size_t i = 0; i < h.size(); ++i) f[i] = ::orcd::fp16_to_fp32(h[i]);
            return f;
        };
        EXPECT_LT(rel_error(as_float(gk), as_float(ck)), 1e-3);
        EXPECT_EQ(gv, cv);  // v is not rotated: one add and one rounding on both sides
        size_t differ = 0;
        for (size_t i = 0; i < gk.size(); ++i) differ += gk[i] != ck[i];
        EXPECT_LE(differ, gk.size() / 1000 + 2);
        // Only the row at pos is written.
        for (int64_t p = 0; p < n_ctx; ++p) {
            if (p == pos) continue;
            for (int i = 0; i < kd; ++i) ASSERT_EQ(gk[p * kd + i] | gv[p * kd + i], 0) << "position " << p;
        }
    }
}

TEST(CudaOps, AttentionDecodeMatchesCpuWithGqa) {
    ORCD_SKIP_WITHOUT_GPU();
    std::mt19937_64 rng(fresh_seed());
    backend::cpu::ThreadPool pool(2);
    struct Case {
        int heads, n_kv, hd;
        int64_t n_ctx;
    };
    const Case cases[] = {{14, 2, 64, 4096}, {32, 32, 96, 4096}, {32, 8, 128, 1024}, {4, 4, 64, 200}};
    for (const Case& c : cases) {
        // Positions around chunk edges (64), the first and last slot, and a random one.
        std::vector<int64_t> positions = {0, 1, 63, 64, 65, c.n_ctx - 1};
        positions.push_back(std::uniform_int_distribution<int64_t>(0, c.n_ctx - 1)(rng));
        for (const int64_t pos : positions) {
            // Without a window, and with windows that start inside a chunk, on a chunk edge, or beyond the position.
            for (const uint32_t window : {0u, 16u, 64u, 100u, 5000u}) {
                SCOPED_TRACE(testing::Message() << c.heads << "/" << c.n_kv << " heads of " << c.hd << " at " << pos
                                                << ", window " << window);
                Caches caches(rng, c.n_ctx, c.n_kv, c.hd, pos + 1);
                const std::vector<float> q = normal_vector(rng, c.heads * c.hd);
                std::vector<float> ref(q.size());
                backend::cpu::attention(q.data(), caches.cpu_view(), pos, 1, c.heads, ref.data(), pool, window);

                DeviceBuffer<uint16_t> dk(caches.k), dv(caches.v);
                DeviceBuffer<float> dq(q), dout(q.size());
                DeviceBuffer<int32_t> dpos(std::vector<int32_t>{static_cast<int32_t>(pos)});
                DeviceBuffer<uint8_t> ws(attention_workspace_bytes(c.n_ctx, c.heads, c.hd));
                ws.poison();
                dout.poison();
                const KvCacheView kv{dk.get(), dv.get(), c.n_ctx, c.n_kv, c.hd};
                attention_decode(dq.get(), kv, c.heads, dpos.get(), dout.get(), ws.get(), nullptr, window);
                const std::vector<float> got = dout.download();
                // f32 dot products and softmax on both sides, summed in different orders (chunked vs sequential).
                EXPECT_LT(rel_error(got, ref), 2e-5);
                // Bit-identical on a second run (fixed reduction order, no atomics).
                dout.poison();
                attention_decode(dq.get(), kv, c.heads, dpos.get(), dout.get(), ws.get(), nullptr, window);
                const std::vector<float> again = dout.download();
                EXPECT_EQ(std::memcmp(got.data(), again.data(), got.size() * sizeof(float)), 0);
            }
        }
    }
}

// attention_decode_q8 promises quantize_q8_columns' bits on attention_decode's output (the decode step's O input
// takes it in int8 mode): compared byte for byte, padding included, over several columns at different positions of
// one cache, with a query stride wider than the heads, windows, and heads narrower than a 32-block (hd 16: one block
// spans two heads).
TEST(CudaOps, AttentionDecodeQ8IsTheQuantizationOfAttentionDecode) {
    ORCD_SKIP_WITHOUT_GPU();
    std::mt19937_64 rng(fresh_seed());
    struct Case {
        int heads, n_kv, hd;
        int64_t n_ctx;
    };
    const Case cases[] = {{14, 2, 64, 4096}, {32, 32, 96, 4096}, {4, 2, 16, 300}};
    for (const Case& c : cases) {
        const int64_t width = static_cast<int64_t>(c.heads) * c.hd, q_stride = width + 2LL * c.n_kv * c.hd;
        const int64_t last = std::uniform_int_distribution<int64_t>(66, c.n_ctx - 1)(rng);
        const std::vector<int32_t> pos = {0, 64, 65, static_cast<int32_t>(last)};
        const int n_cols = static_cast<int>(pos.size());
        for (const uint32_t window : {0u, 100u}) {
            SCOPED_TRACE(testing::Message() << c.heads << "/" << c.n_kv << " heads of " << c.hd << " up to " << last
                                            << ", window " << window);
            Caches caches(rng, c.n_ctx, c.n_kv, c.hd, last + 1);
            DeviceBuffer<uint16_t> dk(caches.k), dv(caches.v);
            DeviceBuffer<float> dq(normal_vector(rng, n_cols * q_stride)), dout(n_cols * width);
            DeviceBuffer<int32_t> dpos(pos);
            DeviceBuffer<uint8_t> ws(attention_workspace_bytes(c.n_ctx, c.heads, c.hd, n_cols));
            const int64_t q8_bytes = q8_vector_bytes(width);
            DeviceBuffer<uint8_t> want(n_cols * q8_bytes), got(n_cols * q8_bytes);
            want.poison();
            got.poison();
            ws.poison();
            const KvCacheView kv{dk.get(), dv.get(), c.n_ctx, c.n_kv, c.hd};
            const DecodeColumns cols{dpos.get(), nullptr};
            attention_decode(dq.get(), q_stride, n_cols, kv, c.heads, cols, dout.get(), width, ws.get(), nullptr,
                             window);
            quantize_q8_columns(dout.get(), width, n_cols, nullptr, 0.f, width, q8_vector_at(want.get(), width),
                                nullptr);
            ws.poison();
            attention_decode_q8(dq.get(), q_stride, n_cols, kv, c.heads, cols, q8_vector_at(got.get(), width), ws.get(),
                                nullptr, window);
            const std::vector<uint8_t> w = want.download(), g = got.download();
            const auto [at, unused] = std::mismatch(w.begin(), w.end(), g.begin());
            EXPECT_TRUE(at == w.end()) << "the bytes part at " << (at - w.begin()) << " of " << w.size() << " (column "
                                       << (at - w.begin()) / q8_bytes << ")";
        }
    }
}

TEST(CudaOps, EmbeddingRowMatchesCpuDequantization) {
    ORCD_SKIP_WITHOUT_GPU();
    std::mt19937_64 rng(fresh_seed());
    using gguf::TensorType;
    for (const TensorType type :
         {TensorType::F32, TensorType::F16, TensorType::BF16, TensorType::Q4_0, TensorType::Q4_1, TensorType::Q5_0,
          TensorType::Q5_1, TensorType::Q8_0, TensorType::Q4_K, TensorType::Q5_K, TensorType::Q6_K}) {
        const int64_t cols = gguf::traits(type).block_elems == 256 ? 3072 : 896, rows = 37;
        SCOPED_TRACE(gguf::type_name(type));
        const std::vector<float> w = normal_vector(rng, rows * cols, 0.05f);
        const uint64_t rb = gguf::row_bytes(type, cols);
        std::vector<uint8_t> table(rb * rows);
        for (int64_t r = 0; r < rows; ++r) quant::quantize_row(type, w.data() + r * cols, table.data() + r * rb, cols);
        const int32_t token = std::uniform_int_distribution<int32_t>(0, rows - 1)(rng);
        std::vector<float> ref(cols);
        quant::dequantize_row(type, table.data() + token * rb, ref.data(), cols);
        DeviceBuffer<uint8_t> dt(table);
        DeviceBuffer<int32_t> dtok(std::vector<int32_t>{token});
        DeviceBuffer<float> dout(cols);
        dout.poison();
        embedding_row(type, dt.get(), cols, dtok.get(), dout.get(), nullptr);
        // The same expressions in the same order: equal up to an fma the host compiler may have contracted.
        EXPECT_LT(rel_error(dout.download(), ref), 1e-6);
    }
    EXPECT_THROW(embedding_row(gguf::TensorType::Q2_K, nullptr, 256, nullptr, nullptr, nullptr), Error);
}

TEST(CudaOps, ArgmaxTakesLowestIndexOnTiesAndSkipsNan) {
    ORCD_SKIP_WITHOUT_GPU();
    std::mt19937_64 rng(fresh_seed());
    for (const int64_t n : {int64_t{151936}, int64_t{32064}, int64_t{1}, int64_t{1025}}) {
        SCOPED_TRACE(n);
        std::vector<float> x = normal_vector(rng, n);
        std::uniform_int_distribution<int64_t> idx(0, n - 1);
        const int64_t a = idx(rng), b = idx(rng);
        x[a] = x[b] = 10.0f;                                     // a tie for the maximum
        if (n > 2) x[(std::max(a, b) + 1) % n] = std::nanf("");  // a NaN must not win
        if (x[std::min(a, b)] != 10.0f) x[std::min(a, b)] = 10.0f;
        int64_t want = 0;
        for (int64_t i = 0; i < n; ++i) {
            if (!std::isnan(x[i]) && (std::isnan(x[want]) || x[i] > x[want])) want = i;
        }
        DeviceBuffer<float> dx(x);
        DeviceBuffer<int32_t> dout(1);
        dout.poison();
        argmax(dx.get(), n, dout.get(), nullptr);
        EXPECT_EQ(dout.download()[0], want);
        if (n > 1) {
            EXPECT_EQ(want, std::min(a, b));
        }
    }
}

}  // namespace
}  // namespace orcd::cuda
