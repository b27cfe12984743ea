#pragma once
// `orcd bench`'s measurements, llama-bench style: pp = one prefill of n_prompt tokens, tg = n_gen decode steps after
// it, both on a fresh sequence that first holds `depth` tokens (prefilled, not timed; `-d 4096` as llama-bench's).
// One warm-up repetition, then `reps` timed ones; tokens/s as mean and sample standard deviation over them. Token ids
// are deterministic pseudo-random valid ids (the content does not change the work of a dense model).
//
// Decode is timed through Sequence::decode (logits copied to the host every step, as llama.cpp's tg does), prefill
// through Sequence::prefill (the last token's logits). Decode's effective bandwidth is the bytes one decode step
// must read (every weight matrix the step multiplies with, the LM head included, one row of the token embedding, the
// norms and biases, and the KV cache positions it attends to) times tokens/s.
#include <atomic>
#include <cstdint>
#include <span>
#include <vector>

#include "backend/backend.h"
#include "model/weights.h"

namespace orcd::engine {

struct BenchOptions {
    uint32_t n_prompt = 512;  // -p: prefill tokens per repetition (0: no pp test)
    uint32_t n_gen = 128;     // -n: decode steps per repetition (0: no tg test)
    uint32_t depth = 0;       // -d: tokens in the cache before pp (untimed)
    int reps = 5;             // -r: timed repetitions, after one warm-up
    uint64_t seed = 1234;     // of the token ids
    // Read before each repetition (never inside a timed region): once set, the benchmark stops with
    // Error(Cancelled). `orcd bench`'s first Ctrl-C.
    const std::atomic<bool>* cancel = nullptr;
};

// Mean and sample standard deviation (n - 1; 0 for one sample) of per-repetition tokens/s.
struct BenchStat {
    std::vector<double> samples;
    double mean = 0.0;
    double stddev = 0.0;
};
BenchStat bench_stat(std::vector<double> samples);

struct BenchResult {
    BenchOptions options;
    uint32_t n_ctx = 0;                   // the sequence's context: depth + n_prompt + n_gen
    BenchStat pp;                         // prefill tokens/s (empty when n_prompt is 0)
    BenchStat tg;                         // decode tokens/s (empty when n_gen is 0)
    backend::DeviceMemoryReport memory;   // read while the benchmark's sequence is live (its KV cache included)
    uint64_t weight_bytes_per_token = 0;  // decode_weight_bytes()
    double kv_bytes_per_token = 0.0;      // mean over the tg steps of kv_bytes_read()
    double bytes_per_token() const { return static_cast<double>(weight_bytes_per_token) + kv_bytes_per_token; }
    // bytes_per_token() x tg mean tokens/s, in GB/s (1e9 bytes); 0 without a tg test.
    double effective_gbps() const { return bytes_per_token() * tg.mean / 1e9; }
};

// Checks the options against the context the model allows. Errors: InvalidArgument naming the option (reps < 1,
// both n_prompt and n_gen 0, depth + n_prompt + n_gen over `context_length` with the sum spelled out).
void check_bench_options(const BenchOptions& options, uint32_t context_length);

// n pseudo-random token ids in [0, n_vocab), the same for the same seed.
std::vector<backend::TokenId> bench_tokens(size_t n, uint32_t n_vocab, uint64_t seed);

// Weight bytes one decode step reads: every used tensor in full (each layer's matrices, norms and biases, the final
// norm, the LM head), except the token embedding, of which one row is read, unless the LM head is tied to it (then
// the whole table once as the head, plus the row).
uint64_t decode_weight_bytes(const model::ModelWeights& weights);

// KV cache bytes the attention of the token at position `pos` reads: K and V of positions 0..pos in every layer, at
// `element_bytes` per value (2: f16). A sliding window, where a backend applies one, reads fewer: not modelled.
uint64_t kv_bytes_read(const model::Config& config, uint64_t pos, uint32_t element_bytes = 2);

// Runs the benchmark (warm-up included) on one new sequence of `backend` with an f16 KV cache. `weights` describes
// the model the backend was made from (only tensor types and sizes are read; the caller keeps a copy, since the
// model itself moves into the backend). Errors: those of check_bench_options and of the backend.
BenchResult run_bench(backend::Backend& backend, const model::ModelWeights& weights, const BenchOptions& options);

// `orcd bench --batch 1,8,16,64`, llama-batched-bench style: for each batch size B, B sequences in one KV pool of the
// backend (Backend::step, the path the server's scheduler drives) each prefill `depth` tokens (untimed) and then
// n_prompt tokens (pp: one step holding all B prompts, chunked as PagedSequence chunks them), then n_gen decode steps
// of all B together (tg: one Generated token per sequence per step, Want::Argmax, so one id per sequence crosses to
// the host). One warm-up repetition, then `reps` timed ones.
struct BatchBenchPoint {
    uint32_t batch = 0;
    BenchStat pp;                        // aggregate prompt tokens/s: B * n_prompt / time of the prefill steps
    BenchStat tg;                        // aggregate decode tokens/s: B * n_gen / time of the decode steps
    double tg_per_sequence = 0.0;        // tg.mean / B: each sequence's own decode speed
    backend::DeviceMemoryReport memory;  // read while the B sequences' pool is live
    uint64_t pool_pages = 0;
};

// Errors: InvalidArgument (no batch sizes, a size of 0 or over 4096, and check_bench_options'); the backend's.
std::vector<BatchBenchPoint> run_batch_bench(backend::Backend& backend, const BenchOptions& options,
                                             std::span<const uint32_t> batch_sizes);

}  // namespace orcd::engine
