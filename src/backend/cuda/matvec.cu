// Fused dequantize-and-dot matrix-vector kernels, one warp per output row.
//
// A row is cut into work items (a 32-element sub-block, or half a 32-element block where blocks are too few to keep
// a warp busy); lane L takes items L, L+32, ... so consecutive lanes read consecutive bytes of the row, every weight
// byte is read exactly once, and x (a few KB, shared by all rows) stays in L1/L2. Per-lane partial sums are combined
// with a fixed butterfly of shuffles: no atomics, so the result is bit-identical from run to run.
#include "backend/cuda/matvec_kernels.h"

#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include "gguf/quant_blocks.h"

namespace orcd::cuda {

namespace {

using namespace orcd::gguf;

constexpr int kWarpsPerBlock = 4;

__device__ __forceinline__ float h2f(uint16_t bits) { return __half2float(__ushort_as_half(bits)); }
__device__ __forceinline__ float bf2f(uint16_t bits) { return __uint_as_float(static_cast<uint32_t>(bits) << 16); }

__device__ __forceinline__ float warp_sum(float v) {
#pragma unroll
    for (int offset = 16; offset > 0; offset >>= 1) v += __shfl_xor_sync(0xffffffffu, v, offset);
    return v;
}

// Each format: Block, elements per block, work items per block, elements per item, and the dot product of one item
// with the matching slice of x (x points at the item's first element).
struct Q8_0 {
    using Block = BlockQ8_0;
    static constexpr int kBlockElems = 32, kItems = 2, kItemElems = 16;
    __device__ static float dot(const Block& b, int item, const float* x) {
        const int8_t* q = b.qs + 16 * item;
        float s = 0.0f;
#pragma unroll
        for (int j = 0; j < 16; ++j) s += static_cast<float>(q[j]) * x[j];
        return h2f(b.d) * s;
    }
};

struct Q4_0 {
    using Block = BlockQ4_0;
    static constexpr int kBlockElems = 32, kItems = 1, kItemElems = 32;
    __device__ static float dot(const Block& b, int, const float* x) {
        float s = 0.0f;
#pragma unroll
        for (int j = 0; j < 16; ++j) {
            s += static_cast<float>((b.qs[j] & 15) - 8) * x[j] + static_cast<float>((b.qs[j] >> 4) - 8) * x[j + 16];
        }
        return h2f(b.d) * s;
    }
};

struct Q4_1 {
    using Block = BlockQ4_1;
    static constexpr int kBlockElems = 32, kItems = 1, kItemElems = 32;
    __device__ static float dot(const Block& b, int, const float* x) {
        float sq = 0.0f, sx = 0.0f;
#pragma unroll
        for (int j = 0; j < 16; ++j) {
            sq += static_cast<float>(b.qs[j] & 15) * x[j] + static_cast<float>(b.qs[j] >> 4) * x[j + 16];
            sx += x[j] + x[j + 16];
        }
        return h2f(b.d) * sq + h2f(b.m) * sx;
    }
};

struct Q5_0 {
    using Block = BlockQ5_0;
    static constexpr int kBlockElems = 32, kItems = 1, kItemElems = 32;
    __device__ static float dot(const Block& b, int, const float* x) {
        const uint32_t qh = q5_high_bits(b.qh);
        float s = 0.0f;
#pragma unroll
        for (int j = 0; j < 16; ++j) {
            const int lo = (b.qs[j] & 15) | ((qh >> j) & 1) << 4;
            const int hi = (b.qs[j] >> 4) | ((qh >> (j + 16)) & 1) << 4;
            s += static_cast<float>(lo - 16) * x[j] + static_cast<float>(hi - 16) * x[j + 16];
        }
        return h2f(b.d) * s;
    }
};

struct Q5_1 {
    using Block = BlockQ5_1;
    static constexpr int kBlockElems = 32, kItems = 1, kItemElems = 32;
    __device__ static float dot(const Block& b, int, const float* x) {
        const uint32_t qh = q5_high_bits(b.qh);
        float sq = 0.0f, sx = 0.0f;
#pragma unroll
        for (int j = 0; j < 16; ++j) {
            const int lo = (b.qs[j] & 15) | ((qh >> j) & 1) << 4;
            const int hi = (b.qs[j] >> 4) | ((qh >> (j + 16)) & 1) << 4;
            sq += static_cast<float>(lo) * x[j] + static_cast<float>(hi) * x[j + 16];
            sx += x[j] + x[j + 16];
        }
        return h2f(b.d) * sq + h2f(b.m) * sx;
    }
};

// Q4_K / Q5_K: item = one of the 8 sub-blocks of 32; y = d*sc*q - dmin*m.
struct Q4_K {
    using Block = BlockQ4_K;
    static constexpr int kBlockElems = 256, kItems = 8, kItemElems = 32;
    __device__ static float dot(const Block& b, int item, const float* x) {
        const ScaleMin sm = k4_scale_min(b.scales, item);
        const uint8_t* q = b.qs + 32 * (item / 2);
        const int shift = 4 * (item & 1);
        float sq = 0.0f, sx = 0.0f;
#pragma unroll
        for (int l = 0; l < 32; ++l) {
            sq += static_cast<float>((q[l] >> shift) & 15) * x[l];
            sx += x[l];
        }
        return h2f(b.d) * sm.scale * sq - h2f(b.dmin) * sm.min * sx;
    }
};

struct Q5_K {
    using Block = BlockQ5_K;
    static constexpr int kBlockElems = 256, kItems = 8, kItemElems = 32;
    __device__ static float dot(const Block& b, int item, const float* x) {
        const ScaleMin sm = k4_scale_min(b.scales, item);
        const uint8_t* q = b.qs + 32 * (item / 2);
        const int shift = 4 * (item & 1);
        float sq = 0.0f, sx = 0.0f;
#pragma unroll
        for (int l = 0; l < 32; ++l) {
            const int v = ((q[l] >> shift) & 15) | ((b.qh[l] >> item) & 1) << 4;
            sq += static_cast<float>(v) * x[l];
            sx += x[l];
        }
        return h2f(b.d) * sm.scale * sq - h2f(b.dmin) * sm.min * sx;
    }
};

// Q6_K: item = quarter r of half h (32 elements, two 16-element sub-blocks with their own scales).
struct Q6_K {
    using Block = BlockQ6_K;
    static constexpr int kBlockElems = 256, kItems = 8, kItemElems = 32;
    __device__ static float dot(const Block& b, int item, const float* x) {
        const int h = item / 4, r = item % 4;
        const uint8_t* ql = b.ql + 64 * h + 32 * (r & 1);
        const uint8_t* qh = b.qh + 32 * h;
        const int lshift = r < 2 ? 0 : 4, hshift = 2 * r;
        float s0 = 0.0f, s1 = 0.0f;
#pragma unroll
        for (int l = 0; l < 16; ++l) {
            s0 += static_cast<float>((((ql[l] >> lshift) & 15) | ((qh[l] >> hshift) & 3) << 4) - 32) * x[l];
            s1 += static_cast<float>((((ql[l + 16] >> lshift) & 15) | ((qh[l + 16] >> hshift) & 3) << 4) - 32) *
                  x[l + 16];
        }
        const int8_t* sc = b.scales + 8 * h + 2 * r;
        return h2f(b.d) * (static_cast<float>(sc[0]) * s0 + static_cast<float>(sc[1]) * s1);
    }
};

template <typename T>
__global__ void __launch_bounds__(kWarpsPerBlock * 32)
    matvec_blocks(const uint8_t* __restrict__ w, int64_t rows, int64_t cols, const float* __restrict__ x,
                  float* __restrict__ y) {
    const int lane = threadIdx.x % 32;
    const int64_t row = static_cast<int64_t>(blockIdx.x) * kWarpsPerBlock + threadIdx.x / 32;
    if (row >= rows) return;
    const int64_t blocks_per_row = cols / T::kBlockElems;
    const auto* blocks =
        reinterpret_cast<const typename T::Block*>(w + row * blocks_per_row * sizeof(typename T::Block));
    const int64_t n_items = blocks_per_row * T::kItems;
    float acc = 0.0f;
    for (int64_t i = lane; i < n_items; i += 32) {
        const int64_t b = i / T::kItems;
        const int item = static_cast<int>(i % T::kItems);
        acc += T::dot(blocks[b], item, x + b * T::kBlockElems + item * T::kItemElems);
    }
    acc = warp_sum(acc);
    if (lane == 0) y[row] = acc;
}

// Plain float types: element-wise, consecutive lanes on consecutive elements.
template <typename E>
__device__ __forceinline__ float load_elem(const E* p, int64_t i);
template <>
__device__ __forceinline__ float load_elem<float>(const float* p, int64_t i) { return p[i]; }
template <>
__device__ __forceinline__ float load_elem<uint16_t>(const uint16_t* p, int64_t i) { return h2f(p[i]); }

template <typename E, bool kBf16>
__global__ void __launch_bounds__(kWarpsPerBlock * 32)
    matvec_plain(const E* __restrict__ w, int64_t rows, int64_t cols, const float* __restrict__ x,
                 float* __restrict__ y) {
    const int lane = threadIdx.x % 32;
    const int64_t row = static_cast<int64_t>(blockIdx.x) * kWarpsPerBlock + threadIdx.x / 32;
    if (row >= rows) return;
    const E* wr = w + row * cols;
    float acc = 0.0f;
    for (int64_t c = lane; c < cols; c += 32) {
        float v;
        if constexpr (kBf16) v = bf2f(wr[c]);
        else v = load_elem<E>(wr, c);
        acc += v * x[c];
    }
    acc = warp_sum(acc);
    if (lane == 0) y[row] = acc;
}

dim3 grid_for(int64_t rows) { return dim3(static_cast<unsigned>((rows + kWarpsPerBlock - 1) / kWarpsPerBlock)); }

template <typename T>
void launch_blocks(const void* w, int64_t rows, int64_t cols, const float* x, float* y, cudaStream_t s) {
    matvec_blocks<T><<<grid_for(rows), kWarpsPerBlock * 32, 0, s>>>(static_cast<const uint8_t*>(w), rows, cols, x, y);
}

}  // namespace

bool launch_matvec(TensorType type, const void* w, int64_t rows, int64_t cols, const float* x, float* y,
                   cudaStream_t s) {
    switch (type) {
        case TensorType::F32:
            matvec_plain<float, false><<<grid_for(rows), kWarpsPerBlock * 32, 0, s>>>(
                static_cast<const float*>(w), rows, cols, x, y);
            break;
        case TensorType::F16:
            matvec_plain<uint16_t, false><<<grid_for(rows), kWarpsPerBlock * 32, 0, s>>>(
                static_cast<const uint16_t*>(w), rows, cols, x, y);
            break;
        case TensorType::BF16:
            matvec_plain<uint16_t, true><<<grid_for(rows), kWarpsPerBlock * 32, 0, s>>>(
                static_cast<const uint16_t*>(w), rows, cols, x, y);
            break;
        case TensorType::Q4_0: launch_blocks<Q4_0>(w, rows, cols, x, y, s); break;
        case TensorType::Q4_1: launch_blocks<Q4_1>(w, rows, cols, x, y, s); break;
        case TensorType::Q5_0: launch_blocks<Q5_0>(w, rows, cols, x, y, s); break;
        case TensorType::Q5_1: launch_blocks<Q5_1>(w, rows, cols, x, y, s); break;
        case TensorType::Q8_0: launch_blocks<Q8_0>(w, rows, cols, x, y, s); break;
        case TensorType::Q4_K: launch_blocks<Q4_K>(w, rows, cols, x, y, s); break;
        case TensorType::Q5_K: launch_blocks<Q5_K>(w, rows, cols, x, y, s); break;
        case TensorType::Q6_K: launch_blocks<Q6_K>(w, rows, cols, x, y, s); break;
        default: return false;
    }
    return true;
}

}  // namespace orcd::cuda
