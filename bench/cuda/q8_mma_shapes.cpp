// Time of one int8 batched matvec (matvec_q8.h) per launch, for each matrix of the Qwen2.5-0.5B and Phi-3-mini
// Q4_K_M shapes (the types `orcd synth --type Q4_K_M` gives them) at 8, 16, 32 and 64 columns, under each way the
// tensor-core kernel can read its operands (what it stages in shared memory, and its block columns) and under the
// dp4a kernel. What q8_mma_shape's staging rule is chosen from: a decode step's figure mixes five matrices, this
// separates them. Timed with CUDA events over a graph of many launches (no launch gaps), rotating over enough weight
// copies to defeat the 50 MB L2 (a decode step reads every matrix from memory). Prints one table; not a test.
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdio>
#include <random>
#include <string>
#include <vector>

#include "backend/cuda/matvec_q8.h"
#include "bench_check.h"
#include "gguf/types.h"

using orcd::gguf::TensorType;

namespace {

struct Source {
    TensorType type;
    int64_t rows;
};
struct Shape {
    const char* what;
    std::vector<Source> srcs;
    int64_t cols;
    orcd::cuda::MatvecEpilogue epilogue;
};
// A way to run the launch: the Q8Matvec fields it sets (0: the default).
struct Variant {
    const char* what;
    int min_cols, stage, block_cols;
};

}  // namespace

int main() {
    int n = 0;
    if (cudaGetDeviceCount(&n) != cudaSuccess || n == 0) {
        std::printf("SKIP: no CUDA device\n");
        return 0;
    }
    using E = orcd::cuda::MatvecEpilogue;
    // Q4_K_M: 896-value rows have no K-quant (Q5_0, Q8_0 for v and down's wider layers, Q8_0 output); Phi-3's fused
    // qkv is Q5_K, its output Q6_K; down is Q6_K in the "more bits" layers and Q4_K elsewhere (both timed).
    const std::vector<Shape> shapes = {
        {"qwen qkv", {{TensorType::Q5_0, 896}, {TensorType::Q5_0, 128}, {TensorType::Q8_0, 128}}, 896, E::Store},
        {"qwen gate+up", {{TensorType::Q5_0, 2 * 4864}}, 896, E::SwiGLU},
        {"qwen o", {{TensorType::Q5_0, 896}}, 896, E::Accumulate},
        {"qwen down Q4_K", {{TensorType::Q4_K, 896}}, 4864, E::Accumulate},
        {"qwen lm head", {{TensorType::Q8_0, 151936}}, 896, E::Store},
        {"phi3 qkv", {{TensorType::Q5_K, 9216}}, 3072, E::Store},
        {"phi3 gate+up", {{TensorType::Q4_K, 2 * 8192}}, 3072, E::SwiGLU},
        {"phi3 o", {{TensorType::Q4_K, 3072}}, 3072, E::Accumulate},
        {"phi3 down Q4_K", {{TensorType::Q4_K, 3072}}, 8192, E::Accumulate},
        {"phi3 down Q6_K", {{TensorType::Q6_K, 3072}}, 8192, E::Accumulate},
        {"phi3 lm head", {{TensorType::Q6_K, 32064}}, 3072, E::Store},
    };
    const std::vector<Variant> variants = {
        {"dp4a", 1000000, 0, 0},        {"mma default", 1, 0, 0},      {"mma stage 0", 1, -1, 0},
        {"mma stage 1", 1, 1, 0},       {"mma stage 3", 1, 3, 0},      {"mma stage 7", 1, 7, 0},
        {"stage 0, 16 col", 1, -1, 16}, {"stage 1, 16 col", 1, 1, 16},
    };
    const int batches[] = {8, 16, 32, 64};
    constexpr int kMaxCols = 64;
    cudaStream_t stream;
    CHECK(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking));
    cudaEvent_t a, b;
    CHECK(cudaEventCreate(&a));
    CHECK(cudaEventCreate(&b));
    std::mt19937_64 rng(1);
    std::printf(
        "us per launch (a graph of max(40, copies) launches, each on the next of copies of the weights that\n"
        "together pass 256 MB)\n");
    std::printf("%-16s %-16s", "matrix", "variant");
    for (const int B : batches) std::printf(" %9s", ("B=" + std::to_string(B)).c_str());
    std::printf("\n");
    for (const Shape& s : shapes) {
        // Weights: random bytes (the kernels' time does not depend on the values), copies enough to pass L2.
        int64_t bytes = 0, rows = 0;
        std::vector<int64_t> src_bytes;
        for (const Source& src : s.srcs) {
            src_bytes.push_back(static_cast<int64_t>(orcd::gguf::row_bytes(src.type, s.cols)) * src.rows);
            bytes += src_bytes.back();
            rows += src.rows;
        }
        // Every launch of the graph reads another copy, and the copies a graph walks pass 256 MB (5x L2).
        const int copies = static_cast<int>((int64_t{256} << 20) / bytes + 1);
        const int launches = std::max(40, copies);
        std::vector<uint8_t> host(static_cast<size_t>(bytes));
        for (auto& v : host) v = static_cast<uint8_t>(rng());
        uint8_t* w = nullptr;
        CHECK(cudaMalloc(&w, static_cast<size_t>(bytes) * copies));
        for (int c = 0; c < copies; ++c) CHECK(cudaMemcpy(w + c * bytes, host.data(), host.size(), cudaMemcpyDefault));
        const int64_t n_out = s.epilogue == E::SwiGLU ? rows / 2 : rows;
        const int64_t qbytes = orcd::cuda::q8_vector_bytes(s.cols);
        float *x = nullptr, *y = nullptr;
        void* q = nullptr;
        CHECK(cudaMalloc(&x, sizeof(float) * s.cols * kMaxCols));
        CHECK(cudaMalloc(&y, sizeof(float) * n_out * kMaxCols));
        CHECK(cudaMalloc(&q, static_cast<size_t>(qbytes) * kMaxCols));
        std::vector<float> hx(static_cast<size_t>(s.cols * kMaxCols));
        std::normal_distribution<float> nd(0.f, 1.f);
        for (auto& v : hx) v = nd(rng);
        CHECK(cudaMemcpy(x, hx.data(), sizeof(float) * hx.size(), cudaMemcpyDefault));
        CHECK(cudaMemset(y, 0, sizeof(float) * n_out * kMaxCols));
        const orcd::cuda::Q8Vector xq = orcd::cuda::q8_vector_at(q, s.cols);
        orcd::cuda::quantize_q8_columns(x, s.cols, kMaxCols, nullptr, 0.f, s.cols, xq, stream);
        for (const Variant& v : variants) {
            std::printf("%-16s %-16s", s.what, v.what);
            for (const int B : batches) {
                auto op_for = [&](int copy) {
                    orcd::cuda::Q8Matvec op;
                    op.x = xq;
                    op.cols = s.cols;
                    const uint8_t* base = w + copy * bytes;
                    for (size_t i = 0; i < s.srcs.size(); ++i) {
                        op.src[op.n_src++] = {s.srcs[i].type, base, s.srcs[i].rows};
                        base += src_bytes[i];
                    }
                    op.epilogue = s.epilogue;
                    op.y = y;
                    op.n_cols = B;
                    op.y_stride = n_out;
                    op.mma_min_cols = v.min_cols;
                    op.mma_stage = v.stage;
                    op.mma_block_cols = v.block_cols;
                    return op;
                };
                for (int i = 0; i < 3; ++i) orcd::cuda::q8_matvec(op_for(i % copies), stream);  // warm-up, opt-ins
                CHECK(cudaStreamSynchronize(stream));
                cudaGraph_t graph;
                cudaGraphExec_t exec;
                CHECK(cudaStreamBeginCapture(stream, cudaStreamCaptureModeThreadLocal));
                for (int i = 0; i < launches; ++i) orcd::cuda::q8_matvec(op_for(i % copies), stream);
                CHECK(cudaStreamEndCapture(stream, &graph));
                CHECK(cudaGraphInstantiate(&exec, graph, 0));
                CHECK(cudaGraphLaunch(exec, stream));  // warm
                CHECK(cudaEventRecord(a, stream));
                CHECK(cudaGraphLaunch(exec, stream));
                CHECK(cudaEventRecord(b, stream));
                CHECK(cudaEventSynchronize(b));
                float ms = 0;
                CHECK(cudaEventElapsedTime(&ms, a, b));
                std::printf(" %9.1f", ms * 1e3 / launches);
                CHECK(cudaGraphExecDestroy(exec));
                CHECK(cudaGraphDestroy(graph));
            }
            std::printf("\n");
            std::fflush(stdout);
        }
        CHECK(cudaFree(w));
        CHECK(cudaFree(x));
        CHECK(cudaFree(y));
        CHECK(cudaFree(q));
    }
    return 0;
}
