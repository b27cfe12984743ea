#pragma once
// The registry of quantization formats: every format header, and the one switch from a GGUF tensor type to its
// format. Adding a format means writing its header in formats/ (block layout, decode8, and the kernel entry points
// it supports: unpack32 for the CPU dot products, dot4 and q8_load for the CUDA matvecs, the last with its Unit<> in
// backend/cuda/matvec_q8_units.cuh) and adding it below; the dequantizer, the CPU dot products and the CUDA kernels
// pick it up through visit_format.
#include <concepts>
#include <utility>

#include "gguf/types.h"
#include "quant/formats/q2_k.h"
#include "quant/formats/q3_k.h"
#include "quant/formats/q4_0.h"
#include "quant/formats/q4_1.h"
#include "quant/formats/q4_k.h"
#include "quant/formats/q5_0.h"
#include "quant/formats/q5_1.h"
#include "quant/formats/q5_k.h"
#include "quant/formats/q6_k.h"
#include "quant/formats/q8_0.h"
#include "quant/formats/q8_1.h"
#include "quant/formats/q8_k.h"

namespace orcd::quant {

// Calls fn(F{}) with the format F of a quantized type and returns true; false (fn not called) for the float types.
// Host and device: the CUDA kernels that take the type at run time switch through it too.
#ifdef __CUDACC__
#pragma nv_exec_check_disable  // fn may be host-only or device-only; each instantiation calls it where it lives
#endif
template <typename Fn>
ORCD_HD bool visit_format(gguf::TensorType type, Fn&& fn) {
    using T = gguf::TensorType;
    switch (type) {
        case T::Q4_0: fn(Q4_0{}); return true;
        case T::Q4_1: fn(Q4_1{}); return true;
        case T::Q5_0: fn(Q5_0{}); return true;
        case T::Q5_1: fn(Q5_1{}); return true;
        case T::Q8_0: fn(Q8_0{}); return true;
        case T::Q8_1: fn(Q8_1{}); return true;
        case T::Q2_K: fn(Q2_K{}); return true;
        case T::Q3_K: fn(Q3_K{}); return true;
        case T::Q4_K: fn(Q4_K{}); return true;
        case T::Q5_K: fn(Q5_K{}); return true;
        case T::Q6_K: fn(Q6_K{}); return true;
        case T::Q8_K: fn(Q8_K{}); return true;
        case T::F32:
        case T::F16:
        case T::BF16: return false;
    }
    return false;
}

// Which kernels a format has.
template <typename F>
concept HasCpuDot = requires(const typename F::Block& b, Chunk32& k) {
    F::unpack32(b, 0, k);
};
#ifdef __CUDACC__
template <typename F>
concept HasMatvec = requires(const typename F::Block& b, float4 x) {
    F::dot4(b, 0, x);
};
// The int8 matvecs need a format's unit decoder (q8_load, kQ8Units units a block); the product of a unit with a
// column is the format's q8units::Unit<> specialization in the backend, which a format with q8_load must have (the
// kernels do not compile without it).
template <typename F>
concept HasQ8Matvec = requires(const typename F::Block& b) {
    { F::q8_load(b, 0) } -> std::same_as<typename F::Q8Unit>;
    { F::kQ8Units } -> std::convertible_to<int>;
};
#endif

}  // namespace orcd::quant
