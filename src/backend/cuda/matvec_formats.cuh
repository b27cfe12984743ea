#pragma once
// What the f32 matvec kernels (matvec.cu: staged tiles; matvec_fused.cu: direct loads with fused prologue/epilogue)
// share: the walk over a row's groups of four elements, and the plain float types dressed as formats. Each quantized
// format's dot4 (one group of four consecutive elements of a block with four values of x, decoded in registers) is in
// its header (quant/formats/). A lane takes one group at a time and consecutive lanes take consecutive groups, so each
// 16-byte load of x by a warp covers 512 contiguous bytes (the first version gave each lane a 32-element item: a
// warp's x loads then touched 32 cache lines each, and L1 wavefronts, not DRAM, set the speed), and the 4 weight
// bytes of a group are one 32-bit word. Device code only; included by .cu files.
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <cstdint>

#include "backend/cuda/half.cuh"
#include "backend/cuda/reduce.cuh"
#include "quant/formats.h"

namespace orcd::cuda::formats {

using namespace orcd::quant;

__device__ __forceinline__ float4 ld4(const float* x) { return *reinterpret_cast<const float4*>(x); }

// Sum over groups [begin, n_groups) of one row (blocks: the row's first block), striding by `stride`.
template <typename T>
__device__ __forceinline__ float row_partial(const typename T::Block* blocks, const float* x, int64_t begin,
                                             int64_t n_groups, int64_t stride) {
    constexpr int kGroups = T::kBlockElems / 4;
    float acc = 0.0f;
#pragma unroll 4
    for (int64_t i = begin; i < n_groups; i += stride) {
        acc += T::dot4(blocks[i / kGroups], static_cast<int>(i % kGroups), ld4(x + 4 * i));
    }
    return acc;
}

// Plain float types as "blocks" of four elements (rows are only 2- or 4-byte aligned in general, so element loads).
template <typename E, int kKind>  // kKind 0: f32, 1: f16, 2: bf16
struct Plain {
    struct Block {
        E v[4];
    };
    static constexpr int kBlockElems = 4;
    __device__ static float elem(E e) {
        if constexpr (kKind == 0)
            return e;
        else if constexpr (kKind == 1)
            return h2f(e);
        else
            return bf2f(e);
    }
    __device__ static float dot4(const Block& b, int, float4 x) { return dot_acc(b, x, 0.0f); }
    // acc + the four products, added one at a time (the order of the plain matvec kernel, so that F32 models give
    // the same bits through either kernel).
    __device__ static float dot_acc(const Block& b, float4 x, float acc) {
        acc += elem(b.v[0]) * x.x;
        acc += elem(b.v[1]) * x.y;
        acc += elem(b.v[2]) * x.z;
        acc += elem(b.v[3]) * x.w;
        return acc;
    }
};
using F32 = Plain<float, 0>;
using F16 = Plain<uint16_t, 1>;
using BF16 = Plain<uint16_t, 2>;

// Calls fn(T{}) with the f32-matvec format of a type (a plain float type, or a quantized format with dot4) and
// returns true; false when there is none.
#pragma nv_exec_check_disable  // fn may be host-only or device-only; each instantiation calls it where it lives
template <typename Fn>
__host__ __device__ bool visit_matvec_format(gguf::TensorType type, Fn&& fn) {
    switch (type) {
        case gguf::TensorType::F32: fn(F32{}); return true;
        case gguf::TensorType::F16: fn(F16{}); return true;
        case gguf::TensorType::BF16: fn(BF16{}); return true;
        default: break;
    }
    bool found = false;
    visit_format(type, [&](auto f) {
        if constexpr (HasMatvec<decltype(f)>) {
            fn(f);
            found = true;
        }
    });
    return found;
}

}  // namespace orcd::cuda::formats
