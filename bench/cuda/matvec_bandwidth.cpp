// Effective bandwidth of each CUDA matvec kernel on the reference models' largest shapes, next to the device-to-device
// copy bandwidth measured in the same run (the ceiling). Timed with CUDA events over many launches after warm-up,
// rotating over enough weight copies to defeat the 50 MB L2. Prints one table; not a test. Each shape runs through the
// staged-tile kernel (matvec.h) and the fused decode kernel (matvec_fused.h, plain store, no norm; wpr = its warps
// per row, ORCD_MATVEC_WPR overrides).
#include <cuda_runtime.h>  // (not _api.h: the typed cudaMalloc template)

#include <algorithm>
#include <cstdio>
#include <random>
#include <vector>

#include "backend/cuda/matvec.h"
#include "backend/cuda/matvec_fused.h"
#include "backend/cuda/matvec_q8.h"
#include "bench_check.h"
#include "quant/convert.h"

using orcd::gguf::TensorType;

int main() {
    int n = 0;
    if (cudaGetDeviceCount(&n) != cudaSuccess || n == 0) {
        std::printf("SKIP: no CUDA device\n");
        return 0;
    }
    cudaEvent_t a, b;
    CHECK(cudaEventCreate(&a));
    CHECK(cudaEventCreate(&b));
    // Ceiling: a 1 GiB device-to-device copy, bytes read + written.
    const size_t copy_bytes = size_t{1} << 30;
    void *src, *dst;
    CHECK(cudaMalloc(&src, copy_bytes));
    CHECK(cudaMalloc(&dst, copy_bytes));
    CHECK(cudaMemset(src, 1, copy_bytes));
    for (int i = 0; i < 3; ++i) CHECK(cudaMemcpy(dst, src, copy_bytes, cudaMemcpyDeviceToDevice));
    CHECK(cudaEventRecord(a));
    for (int i = 0; i < 10; ++i) CHECK(cudaMemcpyAsync(dst, src, copy_bytes, cudaMemcpyDeviceToDevice));
    CHECK(cudaEventRecord(b));
    CHECK(cudaEventSynchronize(b));
    float ms = 0;
    CHECK(cudaEventElapsedTime(&ms, a, b));
    const double copy_gbps = 2.0 * copy_bytes * 10 / (ms * 1e-3) / 1e9;
    std::printf("device-to-device copy: %.0f GB/s (read + write)\n", copy_gbps);
    CHECK(cudaFree(src));
    CHECK(cudaFree(dst));

    struct Case {
        TensorType type;
        int64_t rows, cols;
        const char* what;
    };
    const Case cases[] = {
        {TensorType::Q8_0, 151936, 896, "qwen0.5b token_embd/lm_head"},
        {TensorType::Q5_0, 4864, 896, "qwen0.5b ffn_up"},
        {TensorType::Q4_K, 16384, 3072, "phi3 ffn_up (gate+up)"},
        {TensorType::Q5_K, 9216, 3072, "phi3 attn_qkv"},
        {TensorType::Q6_K, 3072, 8192, "phi3 ffn_down"},
        {TensorType::Q6_K, 32064, 3072, "phi3 output"},
        {TensorType::Q5_0, 896, 896, "qwen0.5b attn_q/attn_output"},
        {TensorType::Q8_0, 128, 896, "qwen0.5b attn_v"},
        {TensorType::Q4_K, 896, 4864, "qwen0.5b ffn_down"},
        {TensorType::Q6_K, 896, 4864, "qwen0.5b ffn_down (Q6_K)"},
        {TensorType::Q5_K, 3072, 3072, "phi3 attn_output"},
        {TensorType::F16, 4864, 896, "f16 ffn_up"},
        {TensorType::F32, 4864, 896, "f32 ffn_up"},
    };
    // Last column: the int8-activation dp4a matvec (matvec_q8.h; x quantized once beforehand, its time apart).
    std::printf("%-6s %-30s %14s %10s %10s %8s | %-5s %10s %10s %8s | %-7s %8s %8s %7s %8s\n", "type", "shape", "bytes",
                "us", "GB/s", "% copy", "fused", "us", "GB/s", "% copy", "q8", "us", "GB/s", "% copy", "quant us");
    std::mt19937 rng(1);
    std::uniform_real_distribution<float> u(-1, 1);
    for (const Case& c : cases) {
        const size_t row_bytes = orcd::gguf::row_bytes(c.type, c.cols);
        const size_t bytes = row_bytes * c.rows;
        const int copies = static_cast<int>(std::max<size_t>(2, (size_t{200} << 20) / bytes + 1));
        std::vector<float> row(c.cols);
        std::vector<uint8_t> host(bytes);
        for (int64_t r = 0; r < c.rows; ++r) {
            for (float& v : row) v = u(rng);
            orcd::quant::quantize_row(c.type, row.data(), host.data() + r * row_bytes, c.cols);
        }
        std::vector<void*> w(copies);
        for (auto& p : w) {
            CHECK(cudaMalloc(&p, bytes));
            CHECK(cudaMemcpy(p, host.data(), bytes, cudaMemcpyHostToDevice));
        }
        float *x, *y;
        CHECK(cudaMalloc(&x, c.cols * 4));
        CHECK(cudaMalloc(&y, c.rows * 4));
        // Random x, not zeros: zeros can hide unwritten outputs and run faster than real data.
        std::vector<float> hx(c.cols);
        for (float& v : hx) v = u(rng);
        CHECK(cudaMemcpy(x, hx.data(), c.cols * 4, cudaMemcpyHostToDevice));
        for (int i = 0; i < 5; ++i) orcd::cuda::matvec(c.type, w[i % copies], c.rows, c.cols, x, y, nullptr);
        const int iters = 200;
        CHECK(cudaEventRecord(a));
        for (int i = 0; i < iters; ++i) orcd::cuda::matvec(c.type, w[i % copies], c.rows, c.cols, x, y, nullptr);
        CHECK(cudaEventRecord(b));
        CHECK(cudaEventSynchronize(b));
        CHECK(cudaEventElapsedTime(&ms, a, b));
        const double us = ms * 1e3 / iters;
        const double gbps = bytes / (us * 1e-6) / 1e9;
        orcd::cuda::FusedMatvec f;
        f.x = x;
        f.cols = c.cols;
        f.n_src = 1;
        f.y = y;
        auto fused = [&](int i) {
            f.src[0] = {c.type, w[i % copies], c.rows};
            orcd::cuda::fused_matvec(f, nullptr);
        };
        for (int i = 0; i < 5; ++i) fused(i);
        CHECK(cudaEventRecord(a));
        for (int i = 0; i < iters; ++i) fused(i);
        CHECK(cudaEventRecord(b));
        CHECK(cudaEventSynchronize(b));
        CHECK(cudaEventElapsedTime(&ms, a, b));
        const double fus = ms * 1e3 / iters;
        const double fgbps = bytes / (fus * 1e-6) / 1e9;
        double q8us = 0, q8gbps = 0, qus = 0;
        int tpr = 0;
        void* qbuf = nullptr;
        CHECK(cudaMalloc(&qbuf, orcd::cuda::q8_vector_bytes(c.cols)));
        const orcd::cuda::Q8Vector xq = orcd::cuda::q8_vector_at(qbuf, c.cols);
        orcd::cuda::Q8Matvec q;
        q.x = xq;
        q.cols = c.cols;
        q.n_src = 1;
        q.y = y;
        q.src[0] = {c.type, w[0], c.rows};
        if (orcd::cuda::q8_matvec_supported(q)) {
            tpr = orcd::cuda::q8_matvec_threads_per_row(c.rows, c.cols);
            auto quant = [&] { orcd::cuda::quantize_q8(x, nullptr, 0.f, c.cols, xq, nullptr); };
            for (int i = 0; i < 5; ++i) quant();
            CHECK(cudaEventRecord(a));
            for (int i = 0; i < iters; ++i) quant();
            CHECK(cudaEventRecord(b));
            CHECK(cudaEventSynchronize(b));
            CHECK(cudaEventElapsedTime(&ms, a, b));
            qus = ms * 1e3 / iters;
            auto run = [&](int i) {
                q.src[0].w = w[i % copies];
                orcd::cuda::q8_matvec(q, nullptr);
            };
            for (int i = 0; i < 5; ++i) run(i);
            CHECK(cudaEventRecord(a));
            for (int i = 0; i < iters; ++i) run(i);
            CHECK(cudaEventRecord(b));
            CHECK(cudaEventSynchronize(b));
            CHECK(cudaEventElapsedTime(&ms, a, b));
            q8us = ms * 1e3 / iters;
            q8gbps = bytes / (q8us * 1e-6) / 1e9;
        }
        CHECK(cudaFree(qbuf));
        std::printf(
            "%-6s %-30s %14zu %10.2f %10.0f %7.0f%% | wpr %d %10.2f %10.0f %7.0f%% | tpr %3d %8.2f %8.0f "
            "%6.0f%% %8.2f\n",
            std::string(orcd::gguf::type_name(c.type)).c_str(), c.what, bytes, us, gbps, 100.0 * gbps / copy_gbps,
            orcd::cuda::fused_matvec_warps_per_row(c.rows, c.cols), fus, fgbps, 100.0 * fgbps / copy_gbps, tpr, q8us,
            q8gbps, 100.0 * q8gbps / copy_gbps, qus);
        for (auto p : w) CHECK(cudaFree(p));
        CHECK(cudaFree(x));
        CHECK(cudaFree(y));
    }
    return 0;
}
