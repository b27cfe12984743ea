#pragma once
// The registry of quantization formats: every format header, and the one dispatch from a GGUF tensor type to its
// format. Adding a format means writing its header in formats/ (block layout, decode8, and the kernel entry points
// it supports: unpack32 for the CPU dot products, dot4 and q8_load for the CUDA matvecs, the last with its Unit<> in
// backend/cuda/matvec_q8_units.cuh), including it below and naming it in AllFormats; the dequantizer, the CPU dot
// products and the CUDA kernels pick it up through visit_format.
#include <concepts>
#include <cstddef>
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

// Every quantized format, in GGUF type order. Registering a format is adding it here.
template <typename... Fs>
struct FormatList {};
using AllFormats = FormatList<Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q8_1, Q2_K, Q3_K, Q4_K, Q5_K, Q6_K, Q8_K>;

namespace detail {
#ifdef __CUDACC__
#pragma nv_exec_check_disable  // fn may be host-only or device-only; each instantiation calls it where it lives
#endif
template <typename Fn, typename... Fs>
ORCD_HD bool visit_format_in(gguf::TensorType type, Fn& fn, FormatList<Fs...>) {
    // One comparison with a constant per format, stopping at the match: the same dispatch as a switch.
    return ((type == Fs::kType ? (fn(Fs{}), true) : false) || ...);
}

// A type listed twice would make the second entry unreachable; the switch this replaced had the compiler reject that.
template <typename... Fs>
constexpr bool distinct_types(FormatList<Fs...>) {
    const gguf::TensorType types[] = {Fs::kType...};
    for (size_t i = 0; i < sizeof...(Fs); ++i)
        for (size_t j = 0; j < i; ++j)
            if (types[i] == types[j]) return false;
    return true;
}
}  // namespace detail
static_assert(detail::distinct_types(AllFormats{}), "a format type is listed twice in AllFormats");

// Calls fn(F{}) with the format F of a quantized type and returns true; false (fn not called) for the float types.
// Host and device: the CUDA kernels that take the type at run time dispatch through it too.
#ifdef __CUDACC__
#pragma nv_exec_check_disable  // as above
#endif
template <typename Fn>
ORCD_HD bool visit_format(gguf::TensorType type, Fn&& fn) {
    return detail::visit_format_in(type, fn, AllFormats{});
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
