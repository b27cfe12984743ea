#pragma once
// Dot products of one weight row, in any GGUF tensor type the loader accepts, with one or more activation vectors.
//
// Quantized weight types are multiplied against the activation quantized to 8 bits in blocks of 32 (ActBlock), with
// integer multiply-adds inside each block, as llama.cpp does. Unlike llama.cpp, which pairs K-quants with a 256-wide
// Q8_K activation, every type here uses the same 32-wide activation blocks: one quantized activation then serves every
// projection that reads it whatever the file's type mix (Qwen2.5's Q4_K_M mixes Q5_0, Q8_0, Q4_K and Q6_K), and
// the scale per 32 values is finer than per 256 (a tighter error bound). The cost is a float scale per 32 weights
// instead of per 256: the K-quant kernels keep it small by reducing a super-block's eight integer sums into one
// vector and scaling them with one FMA against the activation's contiguous per-block scales (ActColumns).
//
// Error bound of quantize_activation (what tests check): each x_j becomes d_b * q_j with d_b = max_{j in b}|x_j| / 127
// and q_j = round(x_j / d_b), so |x_j - d_b q_j| <= d_b / 2, and for a weight row w
//     |dot_q(w, x) - sum_j w_j x_j| <= sum_b (d_b / 2) * sum_{j in b} |w_j|   (+ f32 rounding of the accumulation).
//
// Float weight types (F32, F16, BF16) are multiplied against the f32 activation directly, with no quantization.
#include <cstddef>
#include <cstdint>
#include <vector>

#include "gguf/types.h"

namespace orcd::backend::cpu {

inline constexpr int kActBlock = 32;

// One block of a quantized activation: 32 int8 values, their f32 scale, and the sums of each half's int8 values
// (the K-quants' minimums and Q4_1/Q5_1's offsets multiply the sum of the activation over 16 or 32 values).
struct ActBlock {
    float d;
    int16_t sum[2];  // sum of q[0..15], q[16..31]
    int8_t q[32];
};
static_assert(sizeof(ActBlock) == 40);

// Quantizes n values (n a multiple of 32) into n / 32 blocks.
void quantize_activation(const float* x, int64_t n, ActBlock* out);

// True for the types that multiply against a quantized activation (every quantized type); false for F32/F16/BF16.
bool uses_quantized_activation(gguf::TensorType t);
// True when this backend can multiply a row of type t and length n (n a multiple of the type's block size).
bool dot_supported(gguf::TensorType t);

// Avx512Vnni: AVX2 + FMA + F16C plus AVX-512 VNNI on 256-bit vectors (AVX512VL); its quantized kernels give the same
// bits as the AVX2 ones (quant_dot_x86.h), its float kernels and activation quantizer are the AVX2 ones.
enum class Isa { Scalar, Avx2, Avx512Vnni };
// The best ISA this CPU supports (checked at run time).
Isa detected_isa();

// A quantized activation of one or more columns (tokens): the blocks, plus per block its scale d and d * (sums of
// its q) as contiguous floats, so that kernels can load eight blocks' scales with one vector load, and the q values
// again, regrouped (qt). Column c's n / 32 blocks start at blocks + c * stride (likewise d and dsum).
//
// qt: the kernels of the one-scale signed types (Q4_0, Q5_0, Q8_0) multiply eight blocks at a time and need each
// block's integer sum in its own 32-bit lane. With the q values in block order, every block's products land in all
// eight lanes, and the eight sums had to be reduced across lanes per column (three rounds of horizontal adds). Here
// each group of eight blocks is stored as eight vectors of 32 bytes where vector m holds bytes 4m..4m+3 of each
// block, block j in lane j; the weights are regrouped the same way once per group, for all columns. Lane j then
// accumulates block j's 32 products by itself, and the lane sums are the same integers as before. Column c's group g
// starts at qt + (c * stride + 8 * g) * 32; the blocks past the last full group are not in qt.
struct ActColumns {
    const ActBlock* blocks = nullptr;
    const float* d = nullptr;
    const float* dsum = nullptr;
    const float* dsum16 = nullptr;    // d * (sum of q[0..15]), d * (sum of q[16..31]) per block (two per block)
    const int8_t* qt = nullptr;       // regrouped q values (above)
    const int32_t* sum128 = nullptr;  // 128 * (sum of q[0..31]) per block: VNNI's dot_signed offsets the weights by 128
    int64_t stride = 0;               // blocks per column (dsum16: 2 * stride floats per column, qt: 32 * stride bytes)
};

// Owns the quantized activation of up to n_cols columns of n values each and hands out its ActColumns.
class ActBuffer {
public:
    // Makes room for n_cols columns of n values (n a multiple of 32); storage only grows. Invalidates columns().
    void resize(int64_t n_cols, int64_t n);
    // Quantizes column c from x (n values, the size given to resize) with the given ISA's quantizer, and fills its
    // scales and regrouped copy. Columns are independent: different threads may fill different columns.
    void quantize(int64_t c, const float* x, Isa isa);
    // The columns from c on.
    ActColumns columns(int64_t c = 0) const;
    int64_t blocks_per_column() const { return blocks_; }

private:
    int64_t blocks_ = 0;
    std::vector<ActBlock> act_;
    std::vector<float> d_, dsum_, dsum16_;
    std::vector<int8_t> qt_;
    std::vector<int32_t> sum128_;
};

// One weight row of n elements (n a multiple of the type's block size and of 32) against nc (1..kMaxCols) quantized
// activation columns at once; out[c] receives column c's dot product. Several columns per call let prefill and
// batched decode unpack each weight block once for up to kMaxCols tokens.
inline constexpr int kMaxCols = 8;
using QuantDotFn = void (*)(const std::byte* row, const ActColumns& x, int nc, int64_t n, float* out);
// Float weight types (F32, F16, BF16): one row against nc (1..kMaxFloatCols) f32 activation columns, column c at
// x + c * stride; out[c] receives its dot product. Four columns: each keeps two vector accumulators, and eight
// columns' sixteen would not stay in AVX2's sixteen registers.
inline constexpr int kMaxFloatCols = 4;
using FloatDotFn = void (*)(const std::byte* row, const float* x, int64_t stride, int nc, int64_t n, float* out);

// The kernel for a type; nullptr when the type is not of that kind or not supported. isa defaults to detected_isa();
// tests ask for Scalar explicitly to check both paths.
QuantDotFn quant_dot_fn(gguf::TensorType t, Isa isa);
FloatDotFn float_dot_fn(gguf::TensorType t, Isa isa);
inline QuantDotFn quant_dot_fn(gguf::TensorType t) { return quant_dot_fn(t, detected_isa()); }
inline FloatDotFn float_dot_fn(gguf::TensorType t) { return float_dot_fn(t, detected_isa()); }

namespace detail {
// Per-ISA tables (quant_dot_scalar.cpp, quant_dot_avx2.cpp, quant_dot_vnni.cpp).
QuantDotFn quant_dot_scalar(gguf::TensorType t);
FloatDotFn float_dot_scalar(gguf::TensorType t);
QuantDotFn quant_dot_avx2(gguf::TensorType t);
FloatDotFn float_dot_avx2(gguf::TensorType t);
QuantDotFn quant_dot_vnni(gguf::TensorType t);
void quantize_activation_avx2(const float* x, int64_t n, ActBlock* out);
void quantize_activation_scalar(const float* x, int64_t n, ActBlock* out);
}  // namespace detail

}  // namespace orcd::backend::cpu
