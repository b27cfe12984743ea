// CPU backend benchmarks: the quantized matmul per weight type at real shapes (decode's matrix-vector and prefill's
// matrix-matrix), reported as weight GB/s and GMAC/s, each dot-product kernel scalar against AVX2, and — given ORCD_BENCH_MODEL=path/to/model.gguf — prefill and
// decode tokens/s of the whole forward pass.
#include <benchmark/benchmark.h>

#include <cstdlib>
#include <random>
#include <vector>

#include "backend/cpu/cpu_backend.h"
#include "backend/cpu/matmul.h"
#include "backend/cpu/quant_dot.h"
#include "quant/convert.h"
#include "model/model.h"

namespace {

using namespace orcd;
using backend::cpu::ThreadPool;
using backend::cpu::WeightView;

ThreadPool& pool() {
    static ThreadPool p(0);
    return p;
}

// Args: type id, rows, cols, tokens.
void BM_Matmul(benchmark::State& state) {
    const auto type = static_cast<gguf::TensorType>(state.range(0));
    const int64_t rows = state.range(1), cols = state.range(2), T = state.range(3);
    std::mt19937 rng(1);
    std::normal_distribution<float> nd(0.f, 1.f);
    std::vector<float> f(static_cast<size_t>(cols));
    const uint64_t rb = gguf::row_bytes(type, static_cast<uint64_t>(cols));
    std::vector<std::byte> w(rb * static_cast<uint64_t>(rows));
    for (int64_t r = 0; r < rows; ++r) {
        for (auto& v : f) v = nd(rng);
        quant::quantize_row(type, f.data(), w.data() + r * rb, cols);
    }
    std::vector<float> x(static_cast<size_t>(T * cols)), y(static_cast<size_t>(T * rows));
    for (auto& v : x) v = nd(rng);
    const WeightView wv{type, w.data(), rows, cols};
    for (auto _ : state) {
        backend::cpu::matmul(wv, x.data(), T, y.data(), pool());
        benchmark::DoNotOptimize(y.data());
    }
    state.SetLabel(std::string(gguf::type_name(type)));
    state.counters["weight_GB/s"] =
        benchmark::Counter(static_cast<double>(w.size()) * state.iterations() / 1e9, benchmark::Counter::kIsRate);
    state.counters["GMAC/s"] = benchmark::Counter(static_cast<double>(rows * cols * T) * state.iterations() / 1e9,
                                                  benchmark::Counter::kIsRate);
}

void matmul_args(benchmark::internal::Benchmark* b) {
    using T = gguf::TensorType;
    // Qwen2.5-0.5B's FFN up (4864 x 896, Q5_0 in its Q4_K_M mix) and FFN down (896 x 4864, Q4_K/Q6_K).
    for (int64_t tokens : {1, 64}) {
        for (T t : {T::Q4_0, T::Q5_0, T::Q8_0, T::F16}) b->Args({static_cast<int64_t>(t), 4864, 896, tokens});
        for (T t : {T::Q4_K, T::Q5_K, T::Q6_K}) b->Args({static_cast<int64_t>(t), 896, 4864, tokens});
    }
}
BENCHMARK(BM_Matmul)->Apply(matmul_args)->Unit(benchmark::kMillisecond)->UseRealTime();

// One kernel of quant_dot.h, single thread, scalar against AVX2 and VNNI: the evidence for keeping each SIMD kernel
// (docs/PERF.md records the result). Args: type id, Isa (0 scalar, 1 AVX2, 2 AVX-512 VNNI), columns (1: decode, 4 and 8:
// prefill's tile), rows of 4864 weights (256: the matrix stays in L2, the kernel's arithmetic alone; 16384: tens of MB
// streamed from memory, as a model's matrices are). The activation is quantized once outside the loop; thread CPU
// time, so other processes do not count.
void BM_QuantDot(benchmark::State& state) {
    using namespace backend::cpu;
    const auto type = static_cast<gguf::TensorType>(state.range(0));
    const auto isa = static_cast<Isa>(state.range(1));
    const int nc = static_cast<int>(state.range(2));
    if (static_cast<int>(isa) > static_cast<int>(detected_isa())) {
        state.SkipWithError(isa == Isa::Avx2 ? "this CPU has no AVX2/FMA/F16C" : "this CPU has no AVX-512 VNNI");
        return;
    }
    const int64_t kRows = state.range(3), kCols = 4864;
    std::mt19937 rng(1);
    std::normal_distribution<float> nd(0.f, 1.f);
    std::vector<float> f(static_cast<size_t>(kCols * nc));
    for (auto& v : f) v = nd(rng);
    const uint64_t rb = gguf::row_bytes(type, kCols);
    std::vector<std::byte> w(rb * kRows);
    for (int64_t r = 0; r < kRows; ++r) quant::quantize_row(type, f.data(), w.data() + r * rb, kCols);
    ActBuffer act;
    act.resize(nc, kCols);
    for (int c = 0; c < nc; ++c) act.quantize(c, f.data() + c * kCols, isa);
    const ActColumns x = act.columns();
    const QuantDotFn dot = quant_dot_fn(type, isa);
    float out[kMaxCols];
    for (auto _ : state) {
        for (int64_t r = 0; r < kRows; ++r) {
            dot(w.data() + r * rb, x, nc, kCols, out);
            benchmark::DoNotOptimize(out);
        }
    }
    const char* isa_name = isa == Isa::Avx512Vnni ? " vnni" : isa == Isa::Avx2 ? " avx2" : " scalar";
    state.SetLabel(std::string(gguf::type_name(type)) + isa_name);
    state.counters["GMAC/s"] = benchmark::Counter(static_cast<double>(kRows * kCols * nc) * state.iterations() / 1e9,
                                                  benchmark::Counter::kIsRate);
}

void quant_dot_args(benchmark::internal::Benchmark* b) {
    using T = gguf::TensorType;
    for (int64_t nc : {1, 4, 8}) {
        for (T t : {T::Q4_0, T::Q4_1, T::Q5_0, T::Q5_1, T::Q8_0, T::Q2_K, T::Q3_K, T::Q4_K, T::Q5_K, T::Q6_K}) {
            for (int64_t isa : {0, 1, 2}) {
                for (int64_t rows : {256, 16384}) b->Args({static_cast<int64_t>(t), isa, nc, rows});
            }
        }
    }
}
BENCHMARK(BM_QuantDot)->Apply(quant_dot_args)->Unit(benchmark::kMicrosecond);

// Whole model: prefill of range(0) tokens, then decode.
const char* bench_model() { return std::getenv("ORCD_BENCH_MODEL"); }

void BM_Prefill(benchmark::State& state) {
    if (!bench_model()) {
        state.SkipWithError("set ORCD_BENCH_MODEL to a GGUF model");
        return;
    }
    static auto be = backend::cpu::make_cpu_backend(model::open_model(bench_model()));
    const int64_t n = state.range(0);
    auto seq = be->new_sequence({.n_ctx = static_cast<uint32_t>(n + 1)});
    std::vector<backend::TokenId> toks(static_cast<size_t>(n));
    for (size_t i = 0; i < toks.size(); ++i) toks[i] = static_cast<backend::TokenId>((i * 7919) % be->n_vocab());
    for (auto _ : state) {
        seq->reset();
        benchmark::DoNotOptimize(seq->prefill(toks).data());
    }
    state.counters["tok/s"] =
        benchmark::Counter(static_cast<double>(n) * state.iterations(), benchmark::Counter::kIsRate);
}
BENCHMARK(BM_Prefill)->Arg(64)->Unit(benchmark::kMillisecond)->UseRealTime()->MinTime(2);

void BM_Decode(benchmark::State& state) {
    if (!bench_model()) {
        state.SkipWithError("set ORCD_BENCH_MODEL to a GGUF model");
        return;
    }
    static auto be = backend::cpu::make_cpu_backend(model::open_model(bench_model()));
    auto seq = be->new_sequence({.n_ctx = 4096});
    const std::vector<backend::TokenId> prompt(16, 1);
    seq->prefill(prompt);
    backend::TokenId tok = 1;
    for (auto _ : state) {
        if (seq->n_past() + 1 >= seq->n_ctx()) seq->reset();
        const auto l = seq->decode(tok);
        tok = static_cast<backend::TokenId>(std::max_element(l.begin(), l.end()) - l.begin());
    }
    state.counters["tok/s"] = benchmark::Counter(static_cast<double>(state.iterations()), benchmark::Counter::kIsRate);
}
BENCHMARK(BM_Decode)->Unit(benchmark::kMillisecond)->UseRealTime()->MinTime(3);

}  // namespace

BENCHMARK_MAIN();
