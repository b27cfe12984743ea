// The x86 kernels with AVX-512 VNNI's dpbusd on 256-bit vectors (AVX512VL): one instruction where AVX2 needs maddubs
// and madd, with the same results (quant_dot_x86.h says why). Compiled with -mavx2 -mfma -mf16c -mavx512vl
// -mavx512vnni whatever the project's -march, and reached only through the dispatch in quant_dot.cpp after the CPU
// (and the operating system, for the AVX-512 state) said yes. The float kernels and the activation quantizer have
// nothing to gain from VNNI: that ISA level uses the AVX2 ones.
#include <immintrin.h>

#include <cstdint>

#include "backend/cpu/quant_dot.h"

namespace orcd::backend::cpu {
namespace {

// u8 x i8 products summed by four into i32 lanes, without intermediate saturation.
inline __m256i dot4(__m256i u, __m256i s) { return _mm256_dpbusd_epi32(_mm256_setzero_si256(), u, s); }

}  // namespace
}  // namespace orcd::backend::cpu

#include "backend/cpu/quant_dot_x86.h"

namespace orcd::backend::cpu::detail {

QuantDotFn quant_dot_vnni(TensorType t) { return quant_kernels(t); }

}  // namespace orcd::backend::cpu::detail
