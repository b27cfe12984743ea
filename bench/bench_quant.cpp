// Throughput of the CPU quantizers and reference dequantizers, in elements per second, on one thread. The model
// writer's budget is ~20 M elements/s per thread for every quantizer (a 3.8e9-weight Q4_K_M file in under a minute on
// 16 threads); dequantization is the CPU reference path, so its numbers are for regressions, not for inference.
#include <benchmark/benchmark.h>

#include <cstdint>
#include <random>
#include <vector>

#include "quant/convert.h"
#include "gguf/types.h"

namespace {

using orcd::gguf::TensorType;

// One row the size of a Phi-3-mini hidden dimension; several rows so the data is not just L1-resident.
constexpr int64_t kRowElems = 3072;
constexpr int kRows = 64;

std::vector<float> gaussian_weights(int64_t n) {
    std::mt19937 rng(42);
    std::normal_distribution<float> normal(0.0f, 0.02f);
    std::vector<float> x(static_cast<size_t>(n));
    for (float& v : x) v = normal(rng);
    return x;
}

void quantize(benchmark::State& state, TensorType type) {
    const std::vector<float> x = gaussian_weights(kRowElems * kRows);
    std::vector<unsigned char> out(orcd::gguf::row_bytes(type, kRowElems) * kRows);
    const uint64_t row_bytes = orcd::gguf::row_bytes(type, kRowElems);
    for (auto _ : state) {
        for (int r = 0; r < kRows; ++r) {
            orcd::quant::quantize_row(type, x.data() + r * kRowElems, out.data() + r * row_bytes, kRowElems);
        }
        benchmark::DoNotOptimize(out.data());
        benchmark::ClobberMemory();
    }
    state.SetItemsProcessed(state.iterations() * kRowElems * kRows);
}

void dequantize(benchmark::State& state, TensorType type) {
    const std::vector<float> x = gaussian_weights(kRowElems * kRows);
    const uint64_t row_bytes = orcd::gguf::row_bytes(type, kRowElems);
    std::vector<unsigned char> packed(row_bytes * kRows);
    for (int r = 0; r < kRows; ++r) {
        orcd::quant::quantize_row(type, x.data() + r * kRowElems, packed.data() + r * row_bytes, kRowElems);
    }
    std::vector<float> y(x.size());
    for (auto _ : state) {
        for (int r = 0; r < kRows; ++r) {
            orcd::quant::dequantize_row(type, packed.data() + r * row_bytes, y.data() + r * kRowElems, kRowElems);
        }
        benchmark::DoNotOptimize(y.data());
        benchmark::ClobberMemory();
    }
    state.SetItemsProcessed(state.iterations() * kRowElems * kRows);
}

BENCHMARK_CAPTURE(quantize, Q4_K, TensorType::Q4_K);
BENCHMARK_CAPTURE(quantize, Q6_K, TensorType::Q6_K);
BENCHMARK_CAPTURE(quantize, Q8_0, TensorType::Q8_0);
BENCHMARK_CAPTURE(quantize, Q5_0, TensorType::Q5_0);
BENCHMARK_CAPTURE(quantize, Q5_K, TensorType::Q5_K);
BENCHMARK_CAPTURE(quantize, Q5_1, TensorType::Q5_1);
BENCHMARK_CAPTURE(quantize, F16, TensorType::F16);
BENCHMARK_CAPTURE(dequantize, Q4_K, TensorType::Q4_K);
BENCHMARK_CAPTURE(dequantize, Q6_K, TensorType::Q6_K);
BENCHMARK_CAPTURE(dequantize, Q8_0, TensorType::Q8_0);
BENCHMARK_CAPTURE(dequantize, Q5_0, TensorType::Q5_0);

}  // namespace

BENCHMARK_MAIN();
