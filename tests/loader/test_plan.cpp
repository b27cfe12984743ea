// The plan is a pure function: offsets, sizes and the fit check, checked against numbers worked out by hand.
#include <gtest/gtest.h>

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>

#include "common/error.h"
#include "device/checksum.h"
#include "loader/copy_pool.h"
#include "loader/plan.h"
#include "model/model.h"
#include "test_models.h"

namespace orcd::loader {
namespace {

struct Parsed {
    std::vector<std::byte> bytes;
    model::Model model;
};

std::unique_ptr<Parsed> parse(const testing::TinyModel& t) {
    auto p = std::make_unique<Parsed>();
    p->bytes = testing::tiny_writer(t).to_bytes();
    p->model = model::describe_model(std::make_shared<const gguf::File>(gguf::File::parse(p->bytes, "m.gguf")));
    return p;
}

TEST(Plan, OffsetsAreAlignedInFileOrderAndBytesAreExact) {
    testing::TinyModel t = testing::tiny_qwen2();  // biases of 256 and 64 bytes force padding
    auto p = parse(t);
    const Plan plan = make_plan(p->model, {});
    const auto& ts = p->model.weights.tensors;
    ASSERT_EQ(plan.tensors.size(), ts.size());
    uint64_t end = 0, sum = 0;
    for (size_t i = 0; i < ts.size(); ++i) {
        EXPECT_EQ(plan.tensors[i].offset % kTensorAlignment, 0u);
        EXPECT_GE(plan.tensors[i].offset, end);
        EXPECT_LT(plan.tensors[i].offset, end + kTensorAlignment);  // no more padding than needed
        EXPECT_EQ(plan.tensors[i].bytes, ts[i].n_bytes);
        end = plan.tensors[i].offset + plan.tensors[i].bytes;
        sum += ts[i].n_bytes;
    }
    EXPECT_EQ(plan.tensor_bytes, sum);
    EXPECT_EQ(plan.weight_bytes, (end + 255) / 256 * 256);
    EXPECT_GT(plan.weight_bytes, plan.tensor_bytes);  // k bias: 2 heads x 8 dims x 4 B = 64 B, padded to 256
}

TEST(Plan, KvCacheAndWorkspaceFollowTheirFormulas) {
    testing::TinyModel t = testing::tiny_qwen2();  // 2 layers, n_embd 64, 8 heads of 8, 2 KV heads, n_ff 160
    auto p = parse(t);
    PlanOptions o;
    o.n_ctx = 200;
    o.n_batch = 16;
    const Plan plan = make_plan(p->model, o);
    EXPECT_EQ(plan.n_ctx, 200u);
    EXPECT_EQ(plan.kv_bytes, 2ull * 2 * 200 * (2 * 8) * 2);  // K+V x layers x ctx x kv_dim x f16
    // per token: 2 n_embd + 2 q_dim + 2 kv_dim + 2 n_ff = 128 + 128 + 32 + 320 floats
    EXPECT_EQ(plan.workspace.activations, 16ull * 608 * 4);
    EXPECT_EQ(plan.workspace.attention, 16ull * 8 * (8 + 2) * 16 * 4);
    EXPECT_EQ(plan.workspace.logits, 16ull * 300 * 4);
    EXPECT_EQ(plan.total_bytes, plan.weight_bytes + plan.kv_bytes + plan.workspace.total());
    // n_ctx 0 means the model's own context; the batch never exceeds the context
    o.n_ctx = 0;
    o.n_batch = 100000;
    const Plan full = make_plan(p->model, o);
    EXPECT_EQ(full.n_ctx, 256u);
    EXPECT_EQ(full.n_batch, 256u);
    EXPECT_EQ(full.kv_bytes, 2ull * 2 * 256 * 16 * 2);
}

TEST(Plan, RejectsImpossibleRequests) {
    auto p = parse(testing::tiny_llama());
    PlanOptions o;
    o.n_ctx = 1000;
    try {
        (void)make_plan(p->model, o);
        FAIL() << "no error";
    } catch (const Error& e) {
        EXPECT_EQ(e.code(), ErrorCode::InvalidArgument);
        EXPECT_NE(std::string(e.what()).find("1000 tokens exceeds the model's context_length 256"), std::string::npos)
            << e.what();
    }
    o.n_ctx = 0;
    o.n_batch = 0;
    EXPECT_THROW((void)make_plan(p->model, o), Error);
}

TEST(Plan, FitCheckUsesTheSmallerOfFreeAndLimit) {
    auto p = parse(testing::tiny_llama());
    const Plan plan = make_plan(p->model, {});
    device::DeviceInfo gpu{"cuda", 3, "NVIDIA H100 80GB HBM3", 80ull << 30, plan.total_bytes};
    EXPECT_NO_THROW(check_fit(plan, gpu, std::nullopt, "m.gguf"));
    EXPECT_NO_THROW(check_fit(plan, gpu, plan.total_bytes, "m.gguf"));
    gpu.free_bytes = plan.total_bytes - 10;
    try {
        check_fit(plan, gpu, std::nullopt, "/models/m.gguf");
        FAIL() << "no error";
    } catch (const Error& e) {
        const std::string m = e.what();
        EXPECT_EQ(e.code(), ErrorCode::InsufficientVram);
        EXPECT_NE(m.find("/models/m.gguf: needs " + std::to_string(plan.total_bytes) + " bytes"), std::string::npos)
            << m;
        EXPECT_NE(m.find("GPU 3 (NVIDIA H100 80GB HBM3) has " + std::to_string(plan.total_bytes - 10) + " bytes"),
                  std::string::npos)
            << m;
        EXPECT_NE(m.find("weights " + std::to_string(plan.weight_bytes)), std::string::npos) << m;
        EXPECT_EQ(m.find("--vram-limit"), std::string::npos) << m;
    }
    gpu.free_bytes = 80ull << 30;
    try {
        check_fit(plan, gpu, uint64_t{1000}, "m.gguf");
        FAIL() << "no error";
    } catch (const Error& e) {
        EXPECT_EQ(e.code(), ErrorCode::InsufficientVram);
        EXPECT_NE(std::string(e.what()).find("has 1000 bytes"), std::string::npos) << e.what();
        EXPECT_NE(std::string(e.what()).find("--vram-limit 1000 bytes"), std::string::npos) << e.what();
    }
}

TEST(Plan, FormatListsEveryTensorAndTheTotals) {
    auto p = parse(testing::tiny_qwen2());
    const Plan plan = make_plan(p->model, {});
    const std::string s = format_plan(plan, p->model, true);
    EXPECT_NE(s.find("qwen2"), std::string::npos);
    EXPECT_NE(s.find("output tied to token_embd"), std::string::npos);
    EXPECT_NE(s.find("neox"), std::string::npos);
    EXPECT_NE(s.find(std::to_string(plan.total_bytes)), std::string::npos);
    for (const auto& t : p->model.weights.tensors) EXPECT_NE(s.find(t.name), std::string::npos) << t.name;
    EXPECT_EQ(format_bytes(512), "512 B");
    EXPECT_EQ(format_bytes(3u << 20), "3.0 MiB");
    EXPECT_EQ(format_bytes(3ull << 30), "3.00 GiB");
}

TEST(Checksum, DefinedValuesAndSensitivity) {
    EXPECT_EQ(device::checksum_bytes({}), 0u);
    std::vector<std::byte> a(24);
    for (size_t i = 0; i < a.size(); ++i) a[i] = std::byte(i * 7 + 1);
    const uint64_t base = device::checksum_bytes(a);
    // the word-wise definition, written out
    uint64_t want = 0;
    for (uint64_t w = 0; w < 3; ++w) {
        uint64_t v;
        std::memcpy(&v, a.data() + w * 8, 8);
        want += device::checksum_mix(v, w);
    }
    EXPECT_EQ(base, want);
    auto swapped = a;  // two words exchanged: a plain sum of words would not notice
    std::swap_ranges(swapped.begin(), swapped.begin() + 8, swapped.begin() + 8);
    EXPECT_NE(device::checksum_bytes(swapped), base);
    auto flipped = a;
    flipped[13] ^= std::byte{1};
    EXPECT_NE(device::checksum_bytes(flipped), base);
    // a tail shorter than a word is read zero-padded as the last word
    std::vector<std::byte> b(a.begin(), a.begin() + 21);
    uint64_t w0, w1, w2 = 0;
    std::memcpy(&w0, a.data(), 8);
    std::memcpy(&w1, a.data() + 8, 8);
    std::memcpy(&w2, a.data() + 16, 5);
    EXPECT_EQ(device::checksum_bytes(b),
              device::checksum_mix(w0, 0) + device::checksum_mix(w1, 1) + device::checksum_mix(w2, 2));
}

TEST(CopyPool, CopiesAndZeroFillsEverySegment) {
    for (unsigned threads : {1u, 2u, 5u}) {
        CopyPool pool(threads);
        EXPECT_EQ(pool.threads(), threads);
        std::vector<std::byte> src(5u << 20), dst(6u << 20, std::byte{0xEE});
        for (size_t i = 0; i < src.size(); ++i) src[i] = std::byte(i * 31 + 7);
        for (int round = 0; round < 3; ++round) {  // reused across rounds, as the pipeline does
            const std::vector<Segment> segs = {{dst.data(), src.data(), 3u << 20},
                                               {dst.data() + (3u << 20), nullptr, 1000},
                                               {dst.data() + (3u << 20) + 1000, src.data() + 17, (2u << 20) + 5}};
            EXPECT_FALSE(pool.run(segs).has_value());
            EXPECT_EQ(std::memcmp(dst.data(), src.data(), 3u << 20), 0);
            for (size_t i = 0; i < 1000; ++i) ASSERT_EQ(dst[(3u << 20) + i], std::byte{0});
            EXPECT_EQ(std::memcmp(dst.data() + (3u << 20) + 1000, src.data() + 17, (2u << 20) + 5), 0);
            EXPECT_EQ(dst[(3u << 20) + 1000 + (2u << 20) + 5], std::byte{0xEE});  // nothing past the last segment
        }
    }
}

TEST(CopyPool, StreamingStoresCopyEveryAlignmentAndLength) {
    std::vector<std::byte> src(4096 + 64), dst(4096 + 128);
    for (size_t i = 0; i < src.size(); ++i) src[i] = std::byte(i * 29 + 3);
    for (size_t dst_off : {0u, 1u, 7u, 15u, 16u, 33u}) {
        for (size_t src_off : {0u, 3u, 16u}) {
            for (size_t n : {0u, 1u, 15u, 16u, 63u, 64u, 65u, 200u, 4000u}) {
                std::fill(dst.begin(), dst.end(), std::byte{0xEE});
                streaming_copy(dst.data() + dst_off, src.data() + src_off, n);
                ASSERT_EQ(std::memcmp(dst.data() + dst_off, src.data() + src_off, n), 0)
                    << dst_off << " " << src_off << " " << n;
                for (size_t i = 0; i < dst_off; ++i) ASSERT_EQ(dst[i], std::byte{0xEE});
                for (size_t i = dst_off + n; i < dst.size(); ++i) ASSERT_EQ(dst[i], std::byte{0xEE});
            }
        }
    }
    CopyPool pool(3, /*streaming=*/true);
    std::vector<std::byte> big(3u << 20), out((3u << 20) + 16);
    for (size_t i = 0; i < big.size(); ++i) big[i] = std::byte(i * 11 + 1);
    const std::vector<Segment> segs = {{out.data() + 5, big.data() + 1, big.size() - 1}, {out.data(), nullptr, 5}};
    EXPECT_FALSE(pool.run(segs).has_value());
    EXPECT_EQ(std::memcmp(out.data() + 5, big.data() + 1, big.size() - 1), 0);
    for (size_t i = 0; i < 5; ++i) EXPECT_EQ(out[i], std::byte{0});
}

TEST(CopyPool, ReadsFileSegmentsAndReportsTheFirstFailedRead) {
    testing::TempDir dir;
    const auto path = dir / "bytes.bin";
    std::vector<std::byte> src((3u << 20) + 123);
    for (size_t i = 0; i < src.size(); ++i) src[i] = std::byte(i * 13 + 5);
    std::ofstream(path, std::ios::binary).write(reinterpret_cast<const char*>(src.data()), std::streamsize(src.size()));
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    ASSERT_GE(fd, 0);
    for (unsigned threads : {1u, 4u}) {
        CopyPool pool(threads);
        std::vector<std::byte> dst(src.size() + 100, std::byte{0xEE});
        // a read spanning several pieces, a zero fill and a copy from memory, in one run
        const std::vector<Segment> segs = {{dst.data(), nullptr, (2u << 20) + 7, fd, 100},
                                           {dst.data() + (2u << 20) + 7, nullptr, 50},
                                           {dst.data() + (2u << 20) + 57, src.data(), 1000}};
        EXPECT_FALSE(pool.run(segs).has_value());
        EXPECT_EQ(std::memcmp(dst.data(), src.data() + 100, (2u << 20) + 7), 0);
        for (size_t i = 0; i < 50; ++i) ASSERT_EQ(dst[(2u << 20) + 7 + i], std::byte{0});
        EXPECT_EQ(std::memcmp(dst.data() + (2u << 20) + 57, src.data(), 1000), 0);

        // past the end of the file: the failure names the piece, how much arrived, and errno 0 (end of file)
        const std::vector<Segment> past = {{dst.data(), nullptr, 4096, fd, src.size() - 1000}};
        const auto f = pool.run(past);
        ASSERT_TRUE(f.has_value());
        EXPECT_EQ(f->file_offset, src.size() - 1000);
        EXPECT_EQ(f->bytes, 4096u);
        EXPECT_EQ(f->got, 1000u);
        EXPECT_EQ(f->error, 0);
        // a bad descriptor: errno; the pool is usable afterwards
        const std::vector<Segment> bad = {{dst.data(), nullptr, 10, 1 << 20, 0}};
        const auto g = pool.run(bad);
        ASSERT_TRUE(g.has_value());
        EXPECT_EQ(g->error, EBADF);
        EXPECT_FALSE(pool.run(segs).has_value());
    }
    ::close(fd);
}

}  // namespace
}  // namespace orcd::loader
