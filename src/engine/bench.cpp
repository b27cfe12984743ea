#include "engine/bench.h"

#include <fmt/format.h>

#include <chrono>
#include <cmath>
#include <numeric>

#include "backend/paged_sequence.h"
#include "common/error.h"
#include "gguf/types.h"

namespace orcd::engine {

namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

// splitmix64: a tiny, well-mixed generator whose sequence is fixed by the seed on every platform (std::
// distributions are not specified bit-for-bit).
uint64_t splitmix64(uint64_t& state) {
    uint64_t z = (state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

void throw_if_cancelled(const BenchOptions& o) {
    if (o.cancel && o.cancel->load()) throw Error(ErrorCode::Cancelled, "the benchmark was interrupted");
}

}  // namespace

BenchStat bench_stat(std::vector<double> samples) {
    BenchStat s;
    s.samples = std::move(samples);
    const size_t n = s.samples.size();
    if (n == 0) return s;
    s.mean = std::accumulate(s.samples.begin(), s.samples.end(), 0.0) / static_cast<double>(n);
    if (n > 1) {
        double ss = 0.0;
        for (double v : s.samples) ss += (v - s.mean) * (v - s.mean);
        s.stddev = std::sqrt(ss / static_cast<double>(n - 1));
    }
    return s;
}

void check_bench_options(const BenchOptions& o, uint32_t context_length) {
    if (o.reps < 1) {
        throw Error(ErrorCode::InvalidArgument, fmt::format("-r {}: expected at least 1 repetition", o.reps));
    }
    if (o.n_prompt == 0 && o.n_gen == 0) {
        throw Error(ErrorCode::InvalidArgument, "-p 0 and -n 0: nothing to measure (give prompt or generated tokens)");
    }
    const uint64_t need = static_cast<uint64_t>(o.depth) + o.n_prompt + o.n_gen;
    if (need > context_length) {
        throw Error(ErrorCode::InvalidArgument,
                    fmt::format("-d {} + -p {} + -n {} = {} tokens exceeds the model's context length of {}", o.depth,
                                o.n_prompt, o.n_gen, need, context_length));
    }
}

std::vector<backend::TokenId> bench_tokens(size_t n, uint32_t n_vocab, uint64_t seed) {
    if (n_vocab == 0) throw Error(ErrorCode::InvalidArgument, "bench_tokens: empty vocabulary");
    std::vector<backend::TokenId> t(n);
    uint64_t state = seed;
    for (auto& id : t) id = static_cast<backend::TokenId>(splitmix64(state) % n_vocab);
    return t;
}

uint64_t decode_weight_bytes(const model::ModelWeights& w) {
    uint64_t bytes = 0;
    for (size_t i = 0; i < w.tensors.size(); ++i) {
        if (model::TensorId{static_cast<uint32_t>(i)} == w.token_embd) continue;
        bytes += w.tensors[i].n_bytes;
    }
    const model::TensorRef& embd = w[w.token_embd];
    bytes += gguf::row_bytes(embd.type, embd.row_length());  // the embedding lookup reads one row
    if (w.output == w.token_embd) bytes += embd.n_bytes;     // tied LM head: the whole table once more
    return bytes;
}

uint64_t kv_bytes_read(const model::Config& c, uint64_t pos, uint32_t element_bytes) {
    return 2ull * c.n_layers * (pos + 1) * c.kv_dim() * element_bytes;
}

BenchResult run_bench(backend::Backend& backend, const model::ModelWeights& weights, const BenchOptions& o) {
    const model::Config& c = backend.config();
    check_bench_options(o, c.context_length);
    BenchResult r;
    r.options = o;
    r.n_ctx = o.depth + o.n_prompt + o.n_gen;

    // One stream of ids for every repetition: [depth | prompt | generated], the same work each time.
    const std::vector<backend::TokenId> ids = bench_tokens(r.n_ctx, c.n_vocab, o.seed);
    const std::span<const backend::TokenId> all(ids);
    const auto depth_ids = all.subspan(0, o.depth);
    const auto prompt_ids = all.subspan(o.depth, o.n_prompt);
    const auto gen_ids = all.subspan(o.depth + o.n_prompt, o.n_gen);

    backend::SequenceOptions so;
    so.n_ctx = r.n_ctx;
    so.kv_type = backend::KvCacheType::F16;  // llama.cpp's default cache type; the CUDA backend's only one
    auto seq = backend.new_sequence(so);

    std::vector<double> pp, tg;
    for (int rep = -1; rep < o.reps; ++rep) {  // rep -1: the warm-up (graph capture, first-touch, clocks)
        throw_if_cancelled(o);
        seq->reset();
        if (!depth_ids.empty()) seq->prefill(depth_ids);
        if (!prompt_ids.empty()) {
            const auto t0 = Clock::now();
            seq->prefill(prompt_ids);
            const double s = seconds_since(t0);
            if (rep >= 0) pp.push_back(static_cast<double>(o.n_prompt) / s);
        }
        if (!gen_ids.empty()) {
            const auto t0 = Clock::now();
            for (backend::TokenId id : gen_ids) seq->decode(id);
            const double s = seconds_since(t0);
            if (rep >= 0) tg.push_back(static_cast<double>(o.n_gen) / s);
        }
    }
    r.pp = bench_stat(std::move(pp));
    r.tg = bench_stat(std::move(tg));
    r.memory = backend.device_memory();  // the sequence is still live: its cache and activations count

    r.weight_bytes_per_token = decode_weight_bytes(weights);
    if (o.n_gen > 0) {
        // Positions depth + n_prompt .. + n_gen - 1; the read grows linearly, so the mean is the sum / n_gen.
        const uint64_t first = static_cast<uint64_t>(o.depth) + o.n_prompt;
        double sum = 0.0;
        for (uint64_t pos = first; pos < first + o.n_gen; ++pos) sum += static_cast<double>(kv_bytes_read(c, pos));
        r.kv_bytes_per_token = sum / o.n_gen;
    }
    return r;
}

std::vector<BatchBenchPoint> run_batch_bench(backend::Backend& backend, const BenchOptions& o,
                                             std::span<const uint32_t> batch_sizes) {
    const model::Config& c = backend.config();
    check_bench_options(o, c.context_length);
    if (batch_sizes.empty()) throw Error(ErrorCode::InvalidArgument, "--batch: no batch sizes given");
    for (const uint32_t b : batch_sizes) {
        if (b == 0 || b > 4096) {
            throw Error(ErrorCode::InvalidArgument, fmt::format("--batch {}: expected sizes of 1 .. 4096", b));
        }
    }
    constexpr uint32_t kPageSize = 16;
    const uint32_t n_ctx = o.depth + o.n_prompt + o.n_gen;
    const uint32_t pages_per_seq = (n_ctx + kPageSize - 1) / kPageSize;
    std::vector<BatchBenchPoint> out;
    for (const uint32_t B : batch_sizes) {
        BatchBenchPoint pt;
        pt.batch = B;
        auto pool = backend.new_kv_pool({.num_pages = B * pages_per_seq, .page_size = kPageSize});
        pt.pool_pages = pool->num_pages();
        // Sequence i: pages i * pages_per_seq ..; its own token ids (a different seed per sequence).
        std::vector<std::vector<uint32_t>> pages(B, std::vector<uint32_t>(pages_per_seq));
        std::vector<std::vector<backend::TokenId>> ids(B);
        for (uint32_t i = 0; i < B; ++i) {
            for (uint32_t p = 0; p < pages_per_seq; ++p) pages[i][p] = i * pages_per_seq + p;
            ids[i] = bench_tokens(n_ctx, c.n_vocab, o.seed + i);
        }
        std::vector<backend::BatchEntry> batch;
        std::vector<backend::BatchResult> results;
        auto entry = [&](uint32_t i, uint32_t from, uint32_t n, backend::Phase phase, backend::Want want) {
            backend::BatchEntry e;
            e.tokens = std::span<const backend::TokenId>(ids[i]).subspan(from, n);
            e.first_position = from;
            e.pages = pages[i];
            e.phase = phase;
            e.want = want;
            return e;
        };
        // A prompt of n tokens from `from` for all B sequences, in the chunks PagedSequence would use.
        auto prefill = [&](uint32_t from, uint32_t n) {
            if (n == 0) return;
            uint32_t at = from;
            for (const uint32_t end : backend::prefill_chunk_ends(from, n)) {
                batch.clear();
                for (uint32_t i = 0; i < B; ++i) {
                    batch.push_back(entry(i, at, end - at, backend::Phase::Prompt,
                                          end == from + n ? backend::Want::Argmax : backend::Want::Nothing));
                }
                results.resize(B);
                backend.step(*pool, batch, results);
                at = end;
            }
        };
        std::vector<double> pp, tg;
        for (int rep = -1; rep < o.reps; ++rep) {  // rep -1: the warm-up (graph capture, first-touch, clocks)
            throw_if_cancelled(o);
            prefill(0, o.depth);
            auto t0 = Clock::now();
            prefill(o.depth, o.n_prompt);
            if (rep >= 0 && o.n_prompt > 0) pp.push_back(static_cast<double>(B) * o.n_prompt / seconds_since(t0));
            t0 = Clock::now();
            for (uint32_t g = 0; g < o.n_gen; ++g) {
                batch.clear();
                const uint32_t pos = o.depth + o.n_prompt + g;
                for (uint32_t i = 0; i < B; ++i) {
                    batch.push_back(entry(i, pos, 1, backend::Phase::Generated, backend::Want::Argmax));
                }
                results.resize(B);
                backend.step(*pool, batch, results);
            }
            if (rep >= 0 && o.n_gen > 0) tg.push_back(static_cast<double>(B) * o.n_gen / seconds_since(t0));
        }
        pt.pp = bench_stat(std::move(pp));
        pt.tg = bench_stat(std::move(tg));
        pt.tg_per_sequence = pt.tg.mean / B;
        pt.memory = backend.device_memory();
        out.push_back(std::move(pt));
    }
    return out;
}

}  // namespace orcd::engine
