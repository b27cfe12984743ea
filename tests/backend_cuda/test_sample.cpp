// The device sampling chain (backend/cuda/sample.h) against the host chain (backend/sample_chain.h): on random logits
// of real vocabulary sizes and a grid of parameters (each filter alone and combined), the device picks what the host
// picks for the same u. The device's weights are f32 exps summed in fixed point (the host's double exps summed in
// double), so a pick may differ where u (or the top-p mass, or the min-p ratio) lies within rounding of a boundary:
// such a mismatch must be a token the host reaches when u, top_p or min_p moves by 1e-6, and those cases must be rare
// (counted and bounded). Batched: many rows with different parameters in one launch pick what each picks alone, and
// what the host picks. End to end: a seeded generate through the batched step's Want::Sample
// (PagedSequence::decode_sample) gives the same tokens as the host sampler on the same CUDA logits.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <random>
#include <climits>
#include <cstdint>
#include <set>
#include <vector>

#include "../engine/tiny_models.h"
#include "backend/cuda/cuda_backend.h"
#include "backend/cuda/sample.h"
#include "backend/cuda/sample_kernels.h"
#include "backend/sample_chain.h"
#include "common/error.h"
#include "cuda_test_util.h"
#include "engine/generator.h"
#include "device/cuda_device.h"
#include "model/model.h"
#include "tokenizer/tokenizer.h"

namespace orcd::backend {
namespace {

using ::orcd::cuda::test::DeviceBuffer;

struct Stream {
    cudaStream_t s = nullptr;
    Stream() { EXPECT_EQ(cudaStreamCreate(&s), cudaSuccess); }
    ~Stream() { cudaStreamDestroy(s); }
};

// The host picks for u (absolute), top_p and min_p (relative) each moved by eps: what rounding may turn the pick into.
std::vector<TokenId> near_picks(std::span<const float> logits, const SampleStep& s, double eps) {
    std::vector<TokenId> out;
    for (double du : {-eps, eps}) {
        SampleStep v = s;
        v.u = std::clamp(s.u + du, 0.0, std::nextafter(1.0, 0.0));
        out.push_back(sample_on_host(logits, v));
    }
    for (double f : {1 - eps, 1 + eps}) {
        SampleStep v = s;
        if (s.top_p < 1.f) {
            v.top_p = static_cast<float>(std::min(1.0, s.top_p * f));
            out.push_back(sample_on_host(logits, v));
        }
        v = s;
        if (s.min_p > 0.f) {
            v.min_p = static_cast<float>(s.min_p * f);
            out.push_back(sample_on_host(logits, v));
        }
    }
    return out;
}

// The position of `id` in the chain's order (penalized logit descending, ties by id ascending).
size_t rank_of(std::span<const float> logits, const SampleStep& s, TokenId id) {
    std::vector<float> l(logits.begin(), logits.end());
    if (s.repeat_penalty != 1.f) {
        const std::set<TokenId> seen(s.penalty_window.begin(), s.penalty_window.end());
        for (TokenId t : seen) {
            if (t < 0 || static_cast<size_t>(t) >= l.size()) continue;
            float& v = l[static_cast<size_t>(t)];
            v = v > 0.f ? v / s.repeat_penalty : v * s.repeat_penalty;
        }
    }
    const float x = l[static_cast<size_t>(id)];
    size_t r = 0;
    for (size_t i = 0; i < l.size(); ++i) r += l[i] > x || (l[i] == x && static_cast<TokenId>(i) < id);
    return r;
}

constexpr double kEps = 1e-6;

// A row of V logits for the batched tests: 2.5 x N(0, 1), `peak` added at n_peaks random ids (a few likely tokens,
// so that top-k and top-p cut inside them), and on a grid of 1/4 when `ties` (equal logits at every cut: the id rule).
std::vector<float> random_logit_row(std::mt19937_64& rng, int V, int n_peaks, float peak, bool ties) {
    std::normal_distribution<float> normal(0.f, 1.f);
    std::uniform_int_distribution<int> any_id(0, V - 1);
    std::vector<float> l(static_cast<size_t>(V));
    for (float& x : l) x = 2.5f * normal(rng);
    for (int i = 0; i < n_peaks; ++i) l[static_cast<size_t>(any_id(rng))] += peak;
    if (ties) {
        for (float& x : l) x = std::round(x * 4.f) / 4.f;
    }
    return l;
}

struct Tally {
    int cases = 0, exact = 0, boundary = 0;
};

// One device pick against the host chain; a mismatch outside the boundary set fails with the case's parameters.
void check_pick(TokenId got, std::span<const float> logits, const SampleStep& s, Tally& t) {
    const TokenId want = sample_on_host(logits, s);
    ++t.cases;
    if (got == want) {
        ++t.exact;
        return;
    }
    // A boundary case: the device's token lies, in the chain's order, between the host's picks for nearby u / top_p
    // / min_p (the tokens whose cumulative interval rounding can reach).
    std::vector<TokenId> near = near_picks(logits, s, kEps);
    near.push_back(want);
    size_t lo = SIZE_MAX, hi = 0;
    for (TokenId id : near) {
        const size_t r = rank_of(logits, s, id);
        lo = std::min(lo, r);
        hi = std::max(hi, r);
    }
    // u within eps of an end of [0, 1): past the host's pick for u - eps, rounding decides whether the total is
    // ever crossed (host and device then return the last survivor, or the token where their sums crossed).
    if (s.u + kEps >= 1.0) hi = SIZE_MAX;
    if (s.u - kEps <= 0.0) lo = 0;
    const size_t r = rank_of(logits, s, got);
    if (r >= lo && r <= hi) {
        ++t.boundary;
        return;
    }
    ADD_FAILURE() << "device picked " << got << ", host " << want << " (V " << logits.size() << ", temp "
                  << s.temperature << ", top_k " << s.top_k << ", top_p " << s.top_p << ", min_p " << s.min_p
                  << ", penalty " << s.repeat_penalty << " over " << s.penalty_window.size() << " ids, u " << s.u
                  << ")";
}

void compare(cuda::DeviceSampler& ds, const DeviceBuffer<float>& d_logits, std::span<const float> logits,
             const SampleStep& s, cudaStream_t stream, Tally& t) {
    check_pick(ds.sample(d_logits.get(), s, stream), logits, s, t);
}

class DeviceSampleParity : public testing::TestWithParam<int> {};

TEST_P(DeviceSampleParity, PicksWhatTheHostChainPicks) {
    ORCD_SKIP_WITHOUT_GPU();
    const int V = GetParam();
    const uint64_t seed = ::orcd::cuda::test::fresh_seed();
    std::mt19937_64 rng(seed);
    auto device = device::open_cuda_device(0);
    Stream stream;
    cuda::DeviceSampler ds(*device, V, stream.s);
    std::normal_distribution<float> normal(0.f, 1.f);
    std::uniform_real_distribution<double> unif(0.0, 1.0);
    std::uniform_int_distribution<TokenId> any_id(0, V - 1);

    Tally t;
    for (int trial = 0; trial < 3; ++trial) {
        // Logits of a plausible spread (a few tokens well above a wide tail); trial 2 rounds them to quarter steps,
        // so there are many ties and the id tie rule matters.
        std::vector<float> logits(static_cast<size_t>(V));
        for (float& l : logits) l = 2.5f * normal(rng);
        for (int i = 0; i < 20; ++i) logits[static_cast<size_t>(any_id(rng))] += 6.f + 3.f * normal(rng);
        if (trial == 2) {
            for (float& l : logits) l = std::round(l * 4.f) / 4.f;
        }
        DeviceBuffer<float> d_logits(logits);
        // A window of 64 ids with repeats, a few outside the vocabulary, and the top tokens, so the penalty bites.
        std::vector<TokenId> window;
        for (int i = 0; i < 56; ++i) window.push_back(any_id(rng));
        for (int i = 0; i < 4; ++i) window.push_back(window[static_cast<size_t>(i)]);
        window.push_back(-1);
        window.push_back(V + 5);
        const TokenId top = static_cast<TokenId>(std::max_element(logits.begin(), logits.end()) - logits.begin());
        window.push_back(top);
        window.push_back(top);

        for (float temp : {0.2f, 0.8f, 2.0f}) {
            for (int top_k : {1, 40, 0}) {
                for (float top_p : {0.5f, 0.95f, 1.f}) {
                    for (float min_p : {0.f, 0.05f, 0.2f}) {
                        for (float pen : {1.f, 1.3f}) {
                            SampleStep s;
                            s.temperature = temp;
                            s.top_k = top_k;
                            s.top_p = top_p;
                            s.min_p = min_p;
                            s.repeat_penalty = pen;
                            if (pen != 1.f) s.penalty_window = window;
                            for (int d = 0; d < 2; ++d) {
                                s.u = unif(rng);
                                compare(ds, d_logits, logits, s, stream.s, t);
                            }
                        }
                    }
                }
            }
        }
        // Greedy, with and without the penalty (u unused).
        for (float pen : {1.f, 1.3f}) {
            SampleStep s;
            s.temperature = 0.f;
            s.repeat_penalty = pen;
            s.penalty_window = window;
            compare(ds, d_logits, logits, s, stream.s, t);
        }
        // u at the ends of its range.
        SampleStep s;
        s.top_k = 0;
        s.top_p = 1.f;
        s.min_p = 0.f;
        for (double u : {0.0, std::nextafter(1.0, 0.0)}) {
            s.u = u;
            compare(ds, d_logits, logits, s, stream.s, t);
        }
    }
    std::printf("V %d: %d cases, %d exact, %d within 1e-6 of a boundary\n", V, t.cases, t.exact, t.boundary);
    EXPECT_LE(t.boundary * 100, t.cases) << "more than 1% of the picks sit on a boundary: the device sums drift";
}

INSTANTIATE_TEST_SUITE_P(RealVocabularies, DeviceSampleParity, testing::Values(151936, 32064));

TEST(DeviceSample, DeterministicAcrossRuns) {
    ORCD_SKIP_WITHOUT_GPU();
    const int V = 151936;
    std::mt19937_64 rng(5);
    std::normal_distribution<float> normal(0.f, 2.f);
    std::vector<float> logits(V);
    for (float& l : logits) l = normal(rng);
    DeviceBuffer<float> d_logits(logits);
    auto device = device::open_cuda_device(0);
    Stream stream;
    cuda::DeviceSampler a(*device, V, stream.s), b(*device, V, stream.s);
    SampleStep s;
    s.top_k = 0;
    s.top_p = 1.f;
    s.min_p = 0.f;
    for (int i = 0; i < 64; ++i) {
        s.u = (i + 0.5) / 64;
        const TokenId first = a.sample(d_logits.get(), s, stream.s);
        EXPECT_EQ(a.sample(d_logits.get(), s, stream.s), first);
        EXPECT_EQ(b.sample(d_logits.get(), s, stream.s), first);
    }
}

// Many rows in one launch, each with its own logits row (four distinct rows, reused), parameters and draw: every id
// equals the row sampled alone and the host chain's pick. Bit for bit although the splits differ: alone a row's
// vocabulary is spread over many blocks, in a batch of 64 over one or a few (sample_slices), and integer sums and
// extremes cannot depend on the split.
TEST(DeviceSample, BatchedRowsPickWhatEachRowPicksAlone) {
    ORCD_SKIP_WITHOUT_GPU();
    const int V = 151936;
    const uint64_t seed = ::orcd::cuda::test::fresh_seed();
    std::mt19937_64 rng(seed);
    std::uniform_real_distribution<double> unif(0.0, 1.0);
    std::uniform_int_distribution<TokenId> any_id(0, V - 1);
    constexpr int kDistinct = 4;
    std::vector<std::vector<float>> logits;
    std::vector<float> all;
    for (int r = 0; r < kDistinct; ++r) {
        logits.push_back(random_logit_row(rng, V, 20, 6.f, /*ties=*/r == 3));
        all.insert(all.end(), logits.back().begin(), logits.back().end());
    }
    DeviceBuffer<float> d_all(all);
    std::vector<std::vector<TokenId>> windows(kDistinct);
    for (auto& w : windows) {
        for (int i = 0; i < 40; ++i) w.push_back(any_id(rng));
        w.push_back(w.front());
    }
    // 64 rows (the step's most columns), cycling through parameter sets and logits rows, half of them with a penalty.
    auto logits_of = [](int r) { return static_cast<size_t>((r / 5) % kDistinct); };
    constexpr int kRows = 64;
    const float temps[] = {0.f, 0.5f, 1.f, 1.7f};
    const int top_ks[] = {0, 1, 40, 1000};
    const float top_ps[] = {1.f, 0.9f, 0.5f};
    const float min_ps[] = {0.f, 0.05f, 0.3f};
    std::vector<SampleStep> steps(kRows);
    for (int r = 0; r < kRows; ++r) {
        SampleStep& s = steps[static_cast<size_t>(r)];
        s.temperature = temps[r % 4];
        s.top_k = top_ks[(r / 4) % 4];
        s.top_p = top_ps[(r / 2) % 3];
        s.min_p = min_ps[(r / 3) % 3];
        if (r % 2 == 1) {
            s.repeat_penalty = 1.3f;
            s.penalty_window = windows[logits_of(r)];
        }
        s.u = unif(rng);
    }
    auto device = device::open_cuda_device(0);
    Stream stream;
    cuda::DeviceSampler ds(*device, V, stream.s);
    DeviceBuffer<int32_t> d_out(kRows);
    d_out.poison();
    std::vector<cuda::DeviceSampler::Row> rows;
    for (int r = 0; r < kRows; ++r) {
        rows.push_back({d_all.get() + logits_of(r) * V, &steps[static_cast<size_t>(r)], d_out.get() + r});
    }
    ds.sample_rows(rows, stream.s);
    ASSERT_EQ(cudaStreamSynchronize(stream.s), cudaSuccess);
    const std::vector<int32_t> batched = d_out.download();
    Tally t;
    for (int r = 0; r < kRows; ++r) {
        const SampleStep& s = steps[static_cast<size_t>(r)];
        const TokenId alone = ds.sample(d_all.get() + logits_of(r) * V, s, stream.s);
        EXPECT_EQ(batched[static_cast<size_t>(r)], alone) << "row " << r << " (seed " << seed << ")";
        check_pick(batched[static_cast<size_t>(r)], logits[logits_of(r)], s, t);
    }
    std::printf("batched: %d rows, %d exact, %d within 1e-6 of a boundary\n", t.cases, t.exact, t.boundary);
    EXPECT_LE(t.boundary * 10, t.cases);
}

// The short ways (top-k's first level counted with the extremes and its superset compacted after one level; a compacted
// list of at most kShortListCap survivors ordered by running sums) against the digit descent over the vocabulary on
// the same rows (short_cap 0 forces it): the same id for every row, bit for bit, as sample.cu's comments argue. Rows
// whose top-k or peaked top-p leave from one survivor to just past the cap, with ties at the cut (logits on a grid of
// 1/4) and without, every temperature, top-p and min-p, and u near both ends. The short ways run twice: all rows in
// one launch (one block a row), and four rows a launch (each row's vocabulary over many blocks, so the superset's
// compaction goes through the row's scratch and barrier).
TEST(DeviceSample, ShortListPathPicksWhatTheDigitPathPicks) {
    ORCD_SKIP_WITHOUT_GPU();
    const int V = 151936;
    const uint64_t seed = ::orcd::cuda::test::fresh_seed();
    std::mt19937_64 rng(seed);
    std::uniform_real_distribution<double> unif(0.0, 1.0);
    constexpr int kDistinct = 3;
    std::vector<float> all;
    for (int r = 0; r < kDistinct; ++r) {  // row 1: ties at every cut; row 2: peaked
        const std::vector<float> l = random_logit_row(rng, V, 30, r == 2 ? 14.f : 6.f, /*ties=*/r == 1);
        all.insert(all.end(), l.begin(), l.end());
    }
    DeviceBuffer<float> d_all(all);
    const int top_ks[] = {0, 1, 2, 17, 40, 64, 255, 256, 257, 300};
    const float temps[] = {0.3f, 0.8f, 1.f, 2.f};
    const float top_ps[] = {1.f, 0.95f, 0.5f};
    const float min_ps[] = {0.f, 0.05f, 0.4f};
    constexpr int kRows = 240;
    DeviceBuffer<int32_t> d_short(kRows), d_digit(kRows), d_split(kRows);
    d_short.poison();
    d_digit.poison();
    d_split.poison();
    std::vector<cuda::detail::SampleRow> headers(kRows);
    for (int r = 0; r < kRows; ++r) {
        const double u = r % 8 == 0 ? 1e-9 : r % 8 == 1 ? 1.0 - 1e-9 : unif(rng);
        headers[static_cast<size_t>(r)] = cuda::detail::SampleRow{.logits = d_all.get() + (r % kDistinct) * V,
                                                                  .out = nullptr,
                                                                  .work = nullptr,
                                                                  .u = u,
                                                                  .temperature = temps[(r / 3) % 4],
                                                                  .top_p = top_ps[(r / 12) % 3],
                                                                  .min_p = min_ps[(r / 5) % 3],
                                                                  .repeat_penalty = 1.f,
                                                                  .top_k = top_ks[(r / 7) % 10],
                                                                  .n_window = 0,
                                                                  .window_offset = 0};
    }
    DeviceBuffer<uint8_t> scratch(cuda::detail::sample_scratch_bytes(kRows));
    // Zeroed once, as the launch asks; the 60 split launches below then each start from the zero the last one left.
    ASSERT_EQ(cudaMemset(scratch.get(), 0, cuda::detail::sample_scratch_bytes(kRows)), cudaSuccess);
    DeviceBuffer<int32_t> no_ids(1);
    const int slices = cuda::detail::sample_slices(kRows, V, cuda::detail::sample_block_capacity());
    for (int pass = 0; pass < 2; ++pass) {
        for (int r = 0; r < kRows; ++r) headers[static_cast<size_t>(r)].out = (pass == 0 ? d_short : d_digit).get() + r;
        DeviceBuffer<cuda::detail::SampleRow> d_headers(headers);
        ASSERT_EQ(cuda::detail::launch_sample_rows(d_headers.get(), no_ids.get(), kRows, V, scratch.get(), slices,
                                                   nullptr, pass == 0 ? cuda::detail::kShortListCap : 0),
                  cudaSuccess);
        ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);
    }
    {
        constexpr int kGroup = 4;
        static_assert(kRows % kGroup == 0);
        const int split = cuda::detail::sample_slices(kGroup, V, cuda::detail::sample_block_capacity());
        for (int r = 0; r < kRows; ++r) headers[static_cast<size_t>(r)].out = d_split.get() + r;
        DeviceBuffer<cuda::detail::SampleRow> d_headers(headers);
        for (int r = 0; r < kRows; r += kGroup) {
            ASSERT_EQ(cuda::detail::launch_sample_rows(d_headers.get() + r, no_ids.get(), kGroup, V, scratch.get(),
                                                       split, nullptr, cuda::detail::kShortListCap),
                      cudaSuccess);
        }
        ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);
        std::printf("split: %d rows, %d slices a row\n", kRows, split);
    }
    const std::vector<int32_t> by_short = d_short.download(), by_digit = d_digit.download();
    const std::vector<int32_t> by_split = d_split.download();
    Tally t;
    for (int r = 0; r < kRows; ++r) {
        const auto& h = headers[static_cast<size_t>(r)];
        SampleStep s;
        s.temperature = h.temperature;
        s.top_k = h.top_k;
        s.top_p = h.top_p;
        s.min_p = h.min_p;
        s.u = h.u;
        check_pick(by_short[static_cast<size_t>(r)],
                   std::span<const float>(all).subspan(static_cast<size_t>(r % kDistinct) * V, V), s, t);
        ASSERT_GE(by_digit[static_cast<size_t>(r)], 0) << "row " << r;
        EXPECT_EQ(by_short[static_cast<size_t>(r)], by_digit[static_cast<size_t>(r)])
            << "row " << r << " (temp " << h.temperature << ", top_k " << h.top_k << ", top_p " << h.top_p << ", min_p "
            << h.min_p << ", u " << h.u << ", seed " << seed << ")";
        EXPECT_EQ(by_split[static_cast<size_t>(r)], by_digit[static_cast<size_t>(r)])
            << "split row " << r << " (temp " << h.temperature << ", top_k " << h.top_k << ", top_p " << h.top_p
            << ", min_p " << h.min_p << ", u " << h.u << ", seed " << seed << ")";
    }
    std::printf("short vs digit: %d rows, %d exact, %d within 1e-6 of a boundary\n", t.cases, t.exact, t.boundary);
    EXPECT_LE(t.boundary * 10, t.cases);
}

TEST(DeviceSample, RejectsOutOfRangeParameters) {
    ORCD_SKIP_WITHOUT_GPU();
    auto device = device::open_cuda_device(0);
    Stream stream;
    cuda::DeviceSampler ds(*device, 1000, stream.s);
    auto bad = [&](auto edit) {
        SampleStep s;
        edit(s);
        EXPECT_THROW(ds.sample(nullptr, s, stream.s), Error);
    };
    bad([](SampleStep& s) { s.u = 1.0; });
    bad([](SampleStep& s) { s.u = -0.1; });
    bad([](SampleStep& s) { s.top_p = 0.f; });
    bad([](SampleStep& s) { s.min_p = 1.5f; });
    bad([](SampleStep& s) { s.repeat_penalty = 0.f; });
    bad([](SampleStep& s) { s.temperature = NAN; });
}

// A Sequence that hands every call to another but keeps the default decode_sample: the host chain on decode()'s
// logits, which here are the CUDA backend's.
class HostSampled final : public Sequence {
public:
    explicit HostSampled(std::unique_ptr<Sequence> inner) : s_(std::move(inner)) {}
    std::span<const float> prefill(std::span<const TokenId> t, bool all) override { return s_->prefill(t, all); }
    std::span<const float> decode(TokenId t) override { return s_->decode(t); }
    void reset() override { s_->reset(); }
    uint32_t n_past() const override { return s_->n_past(); }
    uint32_t n_ctx() const override { return s_->n_ctx(); }

private:
    std::unique_ptr<Sequence> s_;
};

TEST(DeviceSample, SeededGenerateMatchesTheHostSamplerOnCudaLogits) {
    ORCD_SKIP_WITHOUT_GPU();
    ORCD_SKIP_WITHOUT_SHARED(test::shared_path("models/vocab/ggml-vocab-qwen2.5.gguf"));
    const model::Model m =
        model::open_model(test::tiny_model("qwen2.5-tiny", synth::FileType::F32, 3, "ggml-vocab-qwen2.5.gguf"));
    const tokenizer::Tokenizer tok = tokenizer::Tokenizer::from_gguf(*m.file);
    for (bool graph : {true, false}) {
        auto gpu = cuda::make_cuda_backend(m, {.use_graph = graph});
        engine::Generator gen(*gpu, tok);
        for (int variant = 0; variant < 3; ++variant) {
            engine::GenerateRequest req;
            req.prompt = "The quick brown fox jumps over";
            req.max_tokens = 40;
            req.sampling.temperature = 0.8f;  // llama.cpp's defaults otherwise: top-k 40, top-p 0.95, min-p 0.05
            req.sampling.seed = 11 + static_cast<uint64_t>(variant);
            if (variant == 1) {  // the whole vocabulary, a hotter distribution, a penalty over the whole history
                req.sampling.temperature = 1.5f;
                req.sampling.top_k = 0;
                req.sampling.top_p = 1.f;
                req.sampling.min_p = 0.f;
                req.sampling.repeat_penalty = 1.3f;
                req.sampling.repeat_last_n = -1;
            }
            if (variant == 2) {  // greedy with a penalty: also through decode_sample
                req.sampling.temperature = 0.f;
                req.sampling.repeat_penalty = 1.5f;
                req.sampling.repeat_last_n = 16;
            }
            auto dev_seq = gpu->new_sequence({.n_ctx = 128});
            HostSampled host_seq(gpu->new_sequence({.n_ctx = 128}));
            const engine::GenerateResult on_device = gen.generate(*dev_seq, req);
            const engine::GenerateResult on_host = gen.generate(host_seq, req);
            EXPECT_EQ(on_device.tokens, on_host.tokens) << "graph " << graph << ", variant " << variant;
            EXPECT_GE(on_device.tokens.size(), 2u);
        }
    }
}

}  // namespace
}  // namespace orcd::backend
