// engine::run_bench and its pieces: the options it refuses, the token ids, the statistics, the bytes one decode step
// reads (checked against the GGUF file's own tensor sizes, not against ModelWeights), the calls it makes on a
// sequence (a recording backend), and a real run on the CPU backend.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <thread>

#include "backend/check_batch.h"
#include "backend/cpu/cpu_backend.h"
#include "common/error.h"
#include "engine/bench.h"
#include "gguf/file.h"
#include "model/model.h"
#include "tiny_models.h"

namespace orcd::engine {
namespace {

void expect_invalid(const BenchOptions& o, uint32_t ctx, const std::string& says) {
    try {
        check_bench_options(o, ctx);
        ADD_FAILURE() << "accepted: " << says;
    } catch (const Error& e) {
        EXPECT_EQ(e.code(), ErrorCode::InvalidArgument);
        EXPECT_NE(std::string(e.what()).find(says), std::string::npos) << e.what();
    }
}

TEST(Bench, RejectsBadOptions) {
    BenchOptions o;
    o.n_prompt = 512;
    o.n_gen = 128;
    EXPECT_NO_THROW(check_bench_options(o, 640));
    expect_invalid(o, 639, "-d 0 + -p 512 + -n 128 = 640 tokens exceeds the model's context length of 639");
    o.depth = 4096;
    expect_invalid(o, 4096, "= 4736 tokens exceeds");
    o = {};
    o.reps = 0;
    expect_invalid(o, 4096, "-r 0: expected at least 1");
    o.reps = -3;
    expect_invalid(o, 4096, "-r -3");
    o = {};
    o.n_prompt = 0;
    o.n_gen = 0;
    expect_invalid(o, 4096, "nothing to measure");
    o.n_gen = 1;  // tg alone is a valid benchmark (llama-bench's -p 0)
    EXPECT_NO_THROW(check_bench_options(o, 4096));
}

TEST(Bench, TokensAreDeterministicAndValid) {
    const auto a = bench_tokens(1000, 37, 5);
    EXPECT_EQ(a, bench_tokens(1000, 37, 5));
    EXPECT_NE(a, bench_tokens(1000, 37, 6));
    EXPECT_TRUE(std::all_of(a.begin(), a.end(), [](backend::TokenId t) { return t >= 0 && t < 37; }));
    // Spread over the vocabulary, not stuck on a few ids.
    std::vector<int> seen(37);
    for (auto t : a) seen[static_cast<size_t>(t)]++;
    EXPECT_TRUE(std::all_of(seen.begin(), seen.end(), [](int n) { return n > 5; }));
}

TEST(Bench, MeanAndSampleStddev) {
    const BenchStat s = bench_stat({2, 4, 4, 4, 5, 5, 7, 9});
    EXPECT_DOUBLE_EQ(s.mean, 5.0);
    EXPECT_NEAR(s.stddev, std::sqrt(32.0 / 7.0), 1e-12);  // n - 1, as llama-bench
    EXPECT_EQ(bench_stat({3.5}).stddev, 0.0);
    EXPECT_EQ(bench_stat({3.5}).mean, 3.5);
    EXPECT_EQ(bench_stat({}).mean, 0.0);
}

// Bytes one decode step reads, from the file's tensor table: every tensor in full except token_embd, of which one
// row; a file without output.weight (tied head) reads token_embd in full once more as the LM head.
uint64_t bytes_per_token_from_file(const std::filesystem::path& path) {
    const gguf::File f = gguf::File::open(path);
    uint64_t sum = 0;
    const gguf::TensorInfo* embd = nullptr;
    for (const gguf::TensorInfo& t : f.tensors()) {
        if (t.name == "token_embd.weight") {
            embd = &t;
        } else {
            sum += t.n_bytes;
        }
    }
    EXPECT_NE(embd, nullptr);
    sum += embd->n_bytes / embd->rows();
    if (f.find_tensor("output.weight") == nullptr) sum += embd->n_bytes;
    return sum;
}

TEST(Bench, DecodeWeightBytesMatchTheFile) {
    for (const char* preset : {"qwen2.5-tiny", "llama-tiny", "phi3-tiny"}) {
        for (synth::FileType type : {synth::FileType::Q8_0, synth::FileType::F32}) {
            SCOPED_TRACE(std::string(preset) + " " + std::string(synth::file_type_name(type)));
            const auto path = test::tiny_model(preset, type);
            const model::Model m = model::open_model(path);
            EXPECT_EQ(decode_weight_bytes(m.weights), bytes_per_token_from_file(path));
        }
    }
    // qwen2.5-tiny ties its head: the table counts once as the head (plus one row), which makes it the biggest term.
    const model::Model q = model::open_model(test::tiny_model("qwen2.5-tiny", synth::FileType::Q8_0));
    ASSERT_TRUE(q.weights.output_tied);
    EXPECT_GT(decode_weight_bytes(q.weights), q.weights.total_bytes());
}

TEST(Bench, KvBytesRead) {
    model::Config c;
    c.n_layers = 3;
    c.n_kv_heads = 2;
    c.head_dim = 8;
    // K and V, 3 layers, 16 values per position, 2 bytes each: 192 bytes per position attended.
    EXPECT_EQ(kv_bytes_read(c, 0), 192u);
    EXPECT_EQ(kv_bytes_read(c, 9), 1920u);
    EXPECT_EQ(kv_bytes_read(c, 9, 4), 3840u);
}

// Records what run_bench asks of a sequence.
struct Recorder {
    int sequences = 0, resets = 0;
    std::vector<std::pair<uint32_t, size_t>> prefills;  // (n_past before, tokens)
    std::vector<uint32_t> decodes;                      // n_past before each decode
    backend::KvCacheType kv_type{};
    uint32_t n_ctx = 0;
};

class RecordingSequence final : public backend::Sequence {
public:
    RecordingSequence(Recorder& r, uint32_t n_ctx, uint32_t n_vocab) : r_(r), n_ctx_(n_ctx), logits_(n_vocab) {}
    std::span<const float> prefill(std::span<const backend::TokenId> tokens, bool) override {
        r_.prefills.emplace_back(n_past_, tokens.size());
        n_past_ += static_cast<uint32_t>(tokens.size());
        std::this_thread::sleep_for(std::chrono::microseconds(50));
        return logits_;
    }
    std::span<const float> decode(backend::TokenId) override {
        r_.decodes.push_back(n_past_++);
        std::this_thread::sleep_for(std::chrono::microseconds(20));
        return logits_;
    }
    void reset() override {
        ++r_.resets;
        n_past_ = 0;
    }
    uint32_t n_past() const override { return n_past_; }
    uint32_t n_ctx() const override { return n_ctx_; }

private:
    Recorder& r_;
    uint32_t n_ctx_, n_past_ = 0;
    std::vector<float> logits_;
};

class RecordingBackend final : public backend::Backend {
public:
    explicit RecordingBackend(model::Config c) : c_(std::move(c)) {}
    std::string_view name() const override { return "recording"; }
    const model::Config& config() const override { return c_; }
    std::unique_ptr<backend::Sequence> new_sequence(const backend::SequenceOptions& o) override {
        ++rec.sequences;
        rec.kv_type = o.kv_type;
        rec.n_ctx = o.n_ctx;
        return std::make_unique<RecordingSequence>(rec, o.n_ctx, c_.n_vocab);
    }
    backend::DeviceMemoryReport device_memory() const override { return {1000, 200, 30}; }
    Recorder rec;

private:
    model::Config c_;
};

TEST(Bench, WarmUpThenRepetitionsOnOneSequence) {
    const model::Model m = model::open_model(test::tiny_model("qwen2.5-tiny", synth::FileType::Q8_0));
    RecordingBackend be(m.config);
    BenchOptions o;
    o.depth = 10;
    o.n_prompt = 6;
    o.n_gen = 4;
    o.reps = 3;
    const BenchResult r = run_bench(be, m.weights, o);
    EXPECT_EQ(be.rec.sequences, 1);
    EXPECT_EQ(be.rec.n_ctx, 20u);
    EXPECT_EQ(be.rec.kv_type, backend::KvCacheType::F16);
    EXPECT_EQ(be.rec.resets, 4);  // warm-up + 3
    ASSERT_EQ(be.rec.prefills.size(), 8u);
    for (size_t i = 0; i < 8; i += 2) {
        EXPECT_EQ(be.rec.prefills[i], (std::pair<uint32_t, size_t>{0, 10}));      // depth, from a fresh sequence
        EXPECT_EQ(be.rec.prefills[i + 1], (std::pair<uint32_t, size_t>{10, 6}));  // pp on top of it
    }
    ASSERT_EQ(be.rec.decodes.size(), 16u);
    for (size_t i = 0; i < 16; ++i) EXPECT_EQ(be.rec.decodes[i], 16 + i % 4);
    EXPECT_EQ(r.pp.samples.size(), 3u);
    EXPECT_EQ(r.tg.samples.size(), 3u);
    EXPECT_EQ(r.n_ctx, 20u);
    EXPECT_EQ(r.memory.total(), 1230u);  // the backend's report, passed through
    // Decode steps at positions 16..19 attend to 17..20 positions.
    const double kv_mean = (kv_bytes_read(m.config, 16) + kv_bytes_read(m.config, 19)) / 2.0;
    EXPECT_DOUBLE_EQ(r.kv_bytes_per_token, kv_mean);
    EXPECT_DOUBLE_EQ(r.effective_gbps(), (decode_weight_bytes(m.weights) + kv_mean) * r.tg.mean / 1e9);

    // -p 0: tg alone, right after the depth.
    be.rec = {};
    o.n_prompt = 0;
    o.reps = 1;
    const BenchResult tg_only = run_bench(be, m.weights, o);
    EXPECT_TRUE(tg_only.pp.samples.empty());
    EXPECT_EQ(tg_only.tg.samples.size(), 1u);
    EXPECT_EQ(be.rec.prefills.size(), 2u);
    EXPECT_EQ(be.rec.decodes.front(), 10u);
}

// A backend whose step records its entries (after the real batch checks) and answers token 0.
class StepRecordingBackend final : public backend::Backend {
public:
    explicit StepRecordingBackend(model::Config c) : c_(std::move(c)) {}
    std::string_view name() const override { return "step-recording"; }
    const model::Config& config() const override { return c_; }
    struct Pool final : backend::KvPool {
        explicit Pool(const backend::KvPoolOptions& o) : KvPool(o, 64) {}
    };
    std::unique_ptr<backend::KvPool> new_kv_pool(const backend::KvPoolOptions& o) override {
        pools.push_back(o.num_pages);
        return std::make_unique<Pool>(o);
    }
    struct Entry {
        uint32_t first, n;
        backend::Phase phase;
        backend::Want want;
        std::vector<uint32_t> pages;
    };
    void step(backend::KvPool& pool, std::span<const backend::BatchEntry> batch,
              std::span<backend::BatchResult> results) override {
        backend::check_batch_entries(pool, batch, results, c_.n_vocab, c_.context_length);
        std::vector<Entry> rec;
        for (size_t i = 0; i < batch.size(); ++i) {
            const auto& e = batch[i];
            rec.push_back({e.first_position,
                           static_cast<uint32_t>(e.tokens.size()),
                           e.phase,
                           e.want,
                           {e.pages.begin(), e.pages.end()}});
            results[i].token = 0;
        }
        steps.push_back(std::move(rec));
    }
    std::vector<uint32_t> pools;
    std::vector<std::vector<Entry>> steps;

private:
    model::Config c_;
};

// Per batch size: one pool for B sequences with disjoint pages; each repetition prefills the depth, then the prompt
// (one step of B entries each, the last wanting the argmax), then n_gen steps of B single Generated tokens at the
// next position.
TEST(Bench, BatchBenchStepsEverySequenceTogether) {
    const model::Model m = model::open_model(test::tiny_model("qwen2.5-tiny", synth::FileType::Q8_0));
    StepRecordingBackend be(m.config);
    BenchOptions o;
    o.depth = 10;
    o.n_prompt = 6;
    o.n_gen = 4;
    o.reps = 2;
    const std::vector<uint32_t> sizes = {1, 3};
    const std::vector<BatchBenchPoint> pts = run_batch_bench(be, o, sizes);
    ASSERT_EQ(pts.size(), 2u);
    ASSERT_EQ(be.pools, (std::vector<uint32_t>{2, 6}));  // 20 positions: 2 pages of 16 per sequence
    ASSERT_EQ(be.steps.size(), 2u * 3 * (2 + 4));        // 2 sizes x (warm-up + 2) x (depth, prompt, 4 decodes)
    size_t k = 0;
    for (const uint32_t B : sizes) {
        for (int rep = 0; rep < 3; ++rep) {
            for (int s = 0; s < 6; ++s, ++k) {
                const auto& step = be.steps[k];
                ASSERT_EQ(step.size(), B);
                for (uint32_t i = 0; i < B; ++i) {
                    const auto& e = step[i];
                    EXPECT_EQ(e.pages, (std::vector<uint32_t>{2 * i, 2 * i + 1}));
                    if (s == 0) {
                        EXPECT_EQ(e.first, 0u);
                        EXPECT_EQ(e.n, 10u);
                        EXPECT_EQ(e.phase, backend::Phase::Prompt);
                    } else if (s == 1) {
                        EXPECT_EQ(e.first, 10u);
                        EXPECT_EQ(e.n, 6u);
                        EXPECT_EQ(e.phase, backend::Phase::Prompt);
                        EXPECT_EQ(e.want, backend::Want::Argmax);
                    } else {
                        EXPECT_EQ(e.first, 16u + (s - 2));
                        EXPECT_EQ(e.n, 1u);
                        EXPECT_EQ(e.phase, backend::Phase::Generated);
                        EXPECT_EQ(e.want, backend::Want::Argmax);
                    }
                }
            }
        }
    }
    for (size_t i = 0; i < pts.size(); ++i) {
        EXPECT_EQ(pts[i].batch, sizes[i]);
        EXPECT_EQ(pts[i].pp.samples.size(), 2u);
        EXPECT_EQ(pts[i].tg.samples.size(), 2u);
        EXPECT_GT(pts[i].tg.mean, 0.0);
        EXPECT_DOUBLE_EQ(pts[i].tg_per_sequence, pts[i].tg.mean / sizes[i]);
    }
    EXPECT_THROW(run_batch_bench(be, o, std::vector<uint32_t>{}), Error);
    EXPECT_THROW(run_batch_bench(be, o, std::vector<uint32_t>{0}), Error);
}

TEST(Bench, RunsOnTheCpuBackend) {
    const model::Model m = model::open_model(test::tiny_model("qwen2.5-tiny", synth::FileType::Q8_0));
    auto be = backend::cpu::make_cpu_backend(m, {.n_threads = 2});
    BenchOptions o;
    o.depth = 8;
    o.n_prompt = 16;
    o.n_gen = 8;
    o.reps = 2;
    const BenchResult r = run_bench(*be, m.weights, o);
    ASSERT_EQ(r.pp.samples.size(), 2u);
    ASSERT_EQ(r.tg.samples.size(), 2u);
    for (const BenchStat* s : {&r.pp, &r.tg}) {
        EXPECT_GT(s->mean, 0.0);
        EXPECT_GE(s->stddev, 0.0);
        EXPECT_GE(s->mean, *std::min_element(s->samples.begin(), s->samples.end()));
        EXPECT_LE(s->mean, *std::max_element(s->samples.begin(), s->samples.end()));
    }
    EXPECT_EQ(r.memory.total(), 0u);  // the CPU backend holds no device memory
    EXPECT_GT(r.effective_gbps(), 0.0);
    EXPECT_THROW(run_bench(*be, m.weights, {.n_prompt = 2048, .n_gen = 1}), Error);  // 2049 > 2048
}

}  // namespace
}  // namespace orcd::engine
