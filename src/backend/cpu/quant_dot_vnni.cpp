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

// The same four-product sums added to acc, in the same instruction.
inline __m256i dot4_acc(__m256i acc, __m256i u, __m256i s) { return _mm256_dpbusd_epi32(acc, u, s); }

// Eight regrouped signed weight blocks (quant_dot_x86.h, transpose8) against the activation's regrouped group: lane j
// receives block j's sum of w * q. dpbusd multiplies unsigned by signed bytes without saturating, so the weights are
// offset to w + 128 once for all columns, and each column takes back 128 * (sum of its q) per block (ActColumns::
// sum128): the same integers as AVX2's sign trick, with two instructions fewer per 32 products and column. Two chains
// of four, so that the dependent dpbusd do not wait on each other eight deep.
class SignedGroup {
public:
    // Whether dot_signed regroups for a single column too: one dpbusd per 32 products pays for it even for one column.
    static constexpr bool kForOneColumn = true;
    explicit SignedGroup(const __m256i (&wt)[8]) {
        for (int m = 0; m < 8; ++m) wu_[m] = _mm256_xor_si256(wt[m], _mm256_set1_epi8(static_cast<char>(0x80)));
    }
    __m256i sums(const int8_t* xq, const int32_t* sum128) const {
        auto q = [xq](int m) { return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(xq + 32 * m)); };
        __m256i p0 = _mm256_dpbusd_epi32(_mm256_setzero_si256(), wu_[0], q(0));
        __m256i p1 = _mm256_dpbusd_epi32(_mm256_setzero_si256(), wu_[4], q(4));
        for (int m = 1; m < 4; ++m) {
            p0 = _mm256_dpbusd_epi32(p0, wu_[m], q(m));
            p1 = _mm256_dpbusd_epi32(p1, wu_[m + 4], q(m + 4));
        }
        return _mm256_sub_epi32(_mm256_add_epi32(p0, p1), _mm256_loadu_si256(reinterpret_cast<const __m256i*>(sum128)));
    }

private:
    __m256i wu_[8];
};

}  // namespace
}  // namespace orcd::backend::cpu

#include "backend/cpu/quant_dot_x86.h"

namespace orcd::backend::cpu::detail {

QuantDotFn quant_dot_vnni(TensorType t) { return quant_kernels(t); }

}  // namespace orcd::backend::cpu::detail
