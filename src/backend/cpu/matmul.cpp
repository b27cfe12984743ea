#include "backend/cpu/matmul.h"

#include <fmt/format.h>

#include <algorithm>
#include <vector>

#include "backend/cpu/quant_dot.h"
#include "common/error.h"
#include "quant/convert.h"

namespace orcd::backend::cpu {

void check_matmul_weight(const WeightView& w, const char* name) {
    if (!dot_supported(w.type)) {
        throw Error(ErrorCode::UnsupportedTensorType,
                    fmt::format("tensor '{}': the CPU backend has no matmul kernel for type {}", name,
                                gguf::type_name(w.type)));
    }
    const uint32_t block = gguf::traits(w.type).block_elems;
    if (w.cols <= 0 || w.cols % block != 0 || (uses_quantized_activation(w.type) && w.cols % kActBlock != 0)) {
        throw Error(ErrorCode::TensorShape,
                    fmt::format("tensor '{}': row length {} is not a multiple of {}'s block of {} values", name, w.cols,
                                gguf::type_name(w.type), block));
    }
}

namespace {

// Rows per claimed chunk: a few KiB of weights, so the pool's counter is touched rarely but threads still balance.
constexpr int64_t kRowGrain = 16;

// Row r's dot products with every token's activation, MaxCols tokens per call of dot(t, nc, out) (out[c] = the row
// times token t + c), written to y's column r.
template <int MaxCols, typename Dot>
void dot_all_tokens(int64_t r, int64_t rows, int64_t n_tokens, float* y, const Dot& dot) {
    float out[MaxCols];
    for (int64_t t = 0; t < n_tokens; t += MaxCols) {
        const int nc = static_cast<int>(std::min<int64_t>(MaxCols, n_tokens - t));
        dot(t, nc, out);
        for (int c = 0; c < nc; ++c) y[(t + c) * rows + r] = out[c];
    }
}

// Activations::F32 for a quantized type: each row dequantized into a per-chunk f32 buffer, then the F32 kernel.
void matmul_dequantized(const WeightView& w, const float* x, int64_t n_tokens, float* y, ThreadPool& pool, Isa isa) {
    const int64_t rows = w.rows, cols = w.cols;
    FloatDotFn fdot = float_dot_fn(gguf::TensorType::F32, isa);
    pool.parallel_for(rows, kRowGrain, [&](int64_t r0, int64_t r1) {
        std::vector<float> row(static_cast<size_t>(cols));
        const auto* row_bytes = reinterpret_cast<const std::byte*>(row.data());
        for (int64_t r = r0; r < r1; ++r) {
            quant::dequantize_row(w.type, w.row(r), row.data(), cols);
            dot_all_tokens<kMaxFloatCols>(r, rows, n_tokens, y, [&](int64_t t, int nc, float* out) {
                fdot(row_bytes, x + t * cols, cols, nc, cols, out);
            });
        }
    });
}

void matmul_impl(const WeightView& w, const float* x, int64_t n_tokens, float* y, ThreadPool& pool, Isa isa,
                 Activations activations = Activations::Int8) {
    if (n_tokens <= 0 || w.rows <= 0) return;
    const int64_t rows = w.rows, cols = w.cols;
    if (activations == Activations::F32 && uses_quantized_activation(w.type)) {
        matmul_dequantized(w, x, n_tokens, y, pool, isa);
        return;
    }
    if (FloatDotFn fdot = float_dot_fn(w.type, isa)) {
        pool.parallel_for(rows, kRowGrain, [&](int64_t r0, int64_t r1) {
            for (int64_t r = r0; r < r1; ++r) {
                const std::byte* wr = w.row(r);
                dot_all_tokens<kMaxFloatCols>(r, rows, n_tokens, y, [&](int64_t t, int nc, float* out) {
                    fdot(wr, x + t * cols, cols, nc, cols, out);
                });
            }
        });
        return;
    }
    QuantDotFn qdot = quant_dot_fn(w.type, isa);
    if (!qdot) {
        throw Error(ErrorCode::UnsupportedTensorType,
                    fmt::format("CPU matmul: no kernel for type {}", gguf::type_name(w.type)));
    }
    // The activation is quantized once per token and shared by all rows. One buffer per calling thread: the forward
    // pass calls matmul from one thread, and the buffer only grows. A reference to it for the lambdas: inside them,
    // the thread_local name would mean the worker thread's own (empty) copy.
    thread_local ActBuffer act_buffer;
    ActBuffer& act = act_buffer;
    act.resize(n_tokens, cols);
    pool.parallel_for(n_tokens, 1, [&](int64_t t0, int64_t t1) {
        for (int64_t t = t0; t < t1; ++t) act.quantize(t, x + t * cols, isa);
    });
    pool.parallel_for(rows, kRowGrain, [&](int64_t r0, int64_t r1) {
        for (int64_t r = r0; r < r1; ++r) {
            const std::byte* wr = w.row(r);
            dot_all_tokens<kMaxCols>(r, rows, n_tokens, y,
                                     [&](int64_t t, int nc, float* out) { qdot(wr, act.columns(t), nc, cols, out); });
        }
    });
}

}  // namespace

void matmul(const WeightView& w, const float* x, int64_t n_tokens, float* y, ThreadPool& pool, Activations act) {
    matmul_impl(w, x, n_tokens, y, pool, detected_isa(), act);
}

void matmul_scalar(const WeightView& w, const float* x, int64_t n_tokens, float* y, ThreadPool& pool) {
    matmul_impl(w, x, n_tokens, y, pool, Isa::Scalar);
}

}  // namespace orcd::backend::cpu
