#pragma once
// The x86 SIMD kernels of quant_dot.h, written once and compiled once per instruction set: quant_dot_avx2.cpp
// (AVX2 + FMA + F16C) and quant_dot_vnni.cpp (the same plus AVX-512 VNNI on 256-bit vectors) each define `dot4`,
// `dot4_acc` and `SignedGroup` and then include this header, under their own compiler flags. Everything here is in an
// anonymous namespace, so each of the two translation units keeps its own copy: the linker can never hand a VNNI
// instruction to the AVX2 path. Include it nowhere else.
//
// `dot4(u, s)`: the eight i32 sums of four adjacent products u_j * s_j (u unsigned bytes, s signed bytes), lane k
// holding bytes 4k..4k+3. AVX2 computes it with maddubs (u8 x i8 -> saturating i16 pair sums) then madd against ones;
// VNNI with one dpbusd. The two agree exactly whenever no i16 pair sum saturates, which every kernel here guarantees:
// u_j <= 63 against |q| <= 127 (2*63*127), and the signed types' |w| <= 128 against |q| <= 127 (2*128*127). So both
// instruction sets give bit-identical results (a test checks it).
//
// Each quantized kernel unpacks 32 weights into 32 unsigned bytes (the u_j of quant::Chunk32, quant/hd.h) and takes
// dot4 with the activation's int8 values: lanes 0-3 hold weights 0-15 and lanes 4-7 weights 16-31, which is what lets
// 16-wide sub-block scales apply per 128-bit half. Q4_1, Q5_1, Q2_K and Q3_K convert per chunk and accumulate with
// the per-half scale times the activation scale; minimums multiply the activation's block sums in a scalar
// accumulator. The K-quants Q4_K, Q5_K and Q6_K and the one-scale signed types Q4_0, Q5_0 and Q8_0 instead gather
// eight chunks' integer sums into one vector and apply scales (and minimums) with a few FMAs against ActColumns'
// contiguous per-block arrays. Q6_K reduces the eight chunks' lanes with horizontal adds per column; the others
// regroup the weights once per eight chunks (transpose8) to match the activation's regrouped copy (ActColumns::qt),
// so that per column and chunk one dot4 is all that is left.
//
// `dot4_acc(acc, u, s)`: acc + dot4(u, s), one dpbusd with VNNI.
// `SignedGroup`: the including file's way of summing eight regrouped signed weight blocks against one column (AVX2:
// the sign trick and maddubs; VNNI: the weights offset by 128 and dpbusd, which cannot saturate). Both give the same
// integers.
#include <immintrin.h>

#include <cstring>
#include <utility>

#include "backend/cpu/quant_dot.h"
#include "quant/formats.h"

// dot4 is declared by the including file (see above).

namespace orcd::backend::cpu {

using gguf::TensorType;

namespace {

// The AVX2 kernels walk blocks through byte pointers: sizes and field offsets of the formats (quant/formats/).
namespace layout {

inline uint32_t u32_at(const uint8_t* p) {
    uint32_t v;
    std::memcpy(&v, p, 4);
    return v;
}

// Bytes per block, from the format headers (quant/formats/, which also provide the scale unpackers used here).
inline constexpr int kQ4_0 = sizeof(quant::BlockQ4_0);
inline constexpr int kQ4_1 = sizeof(quant::BlockQ4_1);
inline constexpr int kQ5_0 = sizeof(quant::BlockQ5_0);
inline constexpr int kQ5_1 = sizeof(quant::BlockQ5_1);
inline constexpr int kQ8_0 = sizeof(quant::BlockQ8_0);
inline constexpr int kQ2_K = sizeof(quant::BlockQ2_K);
inline constexpr int kQ3_K = sizeof(quant::BlockQ3_K);
inline constexpr int kQ4_K = sizeof(quant::BlockQ4_K);
inline constexpr int kQ5_K = sizeof(quant::BlockQ5_K);
inline constexpr int kQ6_K = sizeof(quant::BlockQ6_K);

// Field offsets the kernels read through byte pointers (blocks sit at arbitrary 2-byte-aligned file offsets).
inline constexpr int kQ2_K_qs = offsetof(quant::BlockQ2_K, qs), kQ2_K_d = offsetof(quant::BlockQ2_K, d);
inline constexpr int kQ3_K_qs = offsetof(quant::BlockQ3_K, qs), kQ3_K_scales = offsetof(quant::BlockQ3_K, scales),
                     kQ3_K_d = offsetof(quant::BlockQ3_K, d);
inline constexpr int kQ4_K_scales = offsetof(quant::BlockQ4_K, scales), kQ4_K_qs = offsetof(quant::BlockQ4_K, qs);
inline constexpr int kQ5_K_scales = offsetof(quant::BlockQ5_K, scales), kQ5_K_qh = offsetof(quant::BlockQ5_K, qh),
                     kQ5_K_qs = offsetof(quant::BlockQ5_K, qs);
inline constexpr int kQ6_K_qh = offsetof(quant::BlockQ6_K, qh), kQ6_K_scales = offsetof(quant::BlockQ6_K, scales),
                     kQ6_K_d = offsetof(quant::BlockQ6_K, d);

// Q4_K / Q5_K: the 6-bit scale and min of sub-block j (0..7).
inline void scale_min_k4(int j, const uint8_t* packed, uint8_t& sc, uint8_t& m) {
    const quant::ScaleMin sm = quant::k4_scale_min(packed, j);
    sc = sm.scale;
    m = sm.min;
}

// Q3_K: the sixteen signed scales (-32..31).
inline void scales_q3k(const uint8_t* packed, int8_t out[16]) {
    for (int k = 0; k < 16; ++k) out[k] = static_cast<int8_t>(quant::q3k_scale(packed, k));
}

}  // namespace layout

inline float f16(const uint8_t* p) {
    uint16_t h;
    std::memcpy(&h, p, 2);
    return _cvtsh_ss(h);
}

inline __m256i load256(const void* p) { return _mm256_loadu_si256(static_cast<const __m256i*>(p)); }
inline __m128i load128(const void* p) { return _mm_loadu_si128(static_cast<const __m128i*>(p)); }
inline __m128i load64(const void* p) { return _mm_loadl_epi64(static_cast<const __m128i*>(p)); }

inline float hsum(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

// Byte j of the result is 0xFF where bit j of `bits` is set.
// Asks for the weight bytes [p, p + n) shifted 2 KiB ahead: the row being read, or the next ones (a matrix's rows are
// contiguous). The hardware prefetcher alone left the kernels waiting on memory once they multiply several columns:
// bench_cpu's BM_QuantDot over an 80 MB Q8_0 matrix, 4 columns, went from 18 to 31-35 GMAC/s on the development
// machine (2 KiB measured against 1, 4 and 8 KiB). Prefetches never fault, so reading past the matrix's end is safe.
inline void prefetch_ahead(const void* p, int64_t n) {
    constexpr int64_t kAhead = 2048;
    const auto* c = static_cast<const char*>(p) + kAhead;
    for (int64_t k = 0; k < n; k += 64) _mm_prefetch(c + k, _MM_HINT_T0);
}

inline __m256i bits_to_bytes(uint32_t bits) {
    const __m256i shuf = _mm256_setr_epi8(0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1,  //
                                          2, 2, 2, 2, 2, 2, 2, 2, 3, 3, 3, 3, 3, 3, 3, 3);
    const __m256i v = _mm256_shuffle_epi8(_mm256_set1_epi32(static_cast<int>(bits)), shuf);
    const __m256i mask = _mm256_set1_epi64x(0x8040201008040201LL);
    return _mm256_cmpeq_epi8(_mm256_and_si256(v, mask), mask);
}

// Byte j is `val` where bit `bit` of byte j of v is set, else 0.
inline __m256i bit_select(__m256i v, int bit, int val) {
    const __m256i m = _mm256_set1_epi8(static_cast<char>(1 << bit));
    return _mm256_and_si256(_mm256_cmpeq_epi8(_mm256_and_si256(v, m), m), _mm256_set1_epi8(static_cast<char>(val)));
}

struct Acc {
    __m256 v = _mm256_setzero_ps();
    float m = 0.f;
    float total() const { return hsum(v) - m; }
};

// Adds sc_h * x.d * sum(u * q) - mn_h * x.d * sum(q) over the chunk's two halves.
inline void chunk(Acc& a, __m256i u, const ActBlock* x, float sc0, float sc1, float mn0, float mn1) {
    const __m256i p = dot4(u, load256(x->q));
    const __m256 s = _mm256_set_m128(_mm_set1_ps(sc1 * x->d), _mm_set1_ps(sc0 * x->d));
    a.v = _mm256_fmadd_ps(_mm256_cvtepi32_ps(p), s, a.v);
    a.m += x->d * (mn0 * static_cast<float>(x->sum[0]) + mn1 * static_cast<float>(x->sum[1]));
}
inline void chunk1(Acc& a, __m256i u, const ActBlock* x, float sc, float mn) {
    const __m256i p = dot4(u, load256(x->q));
    a.v = _mm256_fmadd_ps(_mm256_cvtepi32_ps(p), _mm256_set1_ps(sc * x->d), a.v);
    a.m += x->d * mn * static_cast<float>(x->sum[0] + x->sum[1]);
}

// The same chunk against NC activation columns (column c's blocks start at x + c * stride): the weights are unpacked
// once and multiplied with every column, which is what makes prefill's matrix-matrix product cheaper per token than
// decode's matrix-vector product.
template <int NC>
inline void chunk_n(Acc* a, __m256i u, const ActColumns& x, int64_t ci, float sc0, float sc1, float mn0, float mn1) {
    for (int c = 0; c < NC; ++c) chunk(a[c], u, x.blocks + c * x.stride + ci, sc0, sc1, mn0, mn1);
}
template <int NC>
inline void chunk1_n(Acc* a, __m256i u, const ActColumns& x, int64_t ci, float sc, float mn) {
    for (int c = 0; c < NC; ++c) chunk1(a[c], u, x.blocks + c * x.stride + ci, sc, mn);
}
template <int NC>
inline void store(const Acc* a, float* out) {
    for (int c = 0; c < NC; ++c) out[c] = a[c].total();
}

// The 32 nibbles of 16 bytes: low nibbles are weights 0-15, high nibbles 16-31.
inline __m256i nibbles16(const uint8_t* q) {
    const __m128i v = load128(q);
    const __m128i m = _mm_set1_epi8(0xF);
    return _mm256_set_m128i(_mm_and_si128(_mm_srli_epi16(v, 4), m), _mm_and_si128(v, m));
}

// Blocks with one scale and a fixed offset (Q4_0: u - 8, Q5_0: u - 16): the signed weights go through maddubs with
// the sign trick (|w| x sign(q, w)), which drops the minimum term and its scalar work from the hot loop.
template <int NC>
inline void chunk_signed_n(__m256* a, __m256i w, const ActColumns& x, int64_t ci, float d) {
    const __m256i aw = _mm256_sign_epi8(w, w);
    for (int c = 0; c < NC; ++c) {
        const ActBlock& xb = x.blocks[c * x.stride + ci];
        const __m256i p = dot4(aw, _mm256_sign_epi8(load256(xb.q), w));
        a[c] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(p), _mm256_set1_ps(d * xb.d), a[c]);
    }
}

// Q4_1 / Q5_1: one scale d and one minimum m per block of 32 (d at byte 0, m at byte 2), u = unpack(block).
template <int NC, typename Unpack>
void dot_min1(const uint8_t* b, int64_t block_bytes, const ActColumns& x, int64_t n, float* out, Unpack unpack) {
    Acc a[NC];
    for (int64_t i = 0; i < n / 32; ++i, b += block_bytes) {
        prefetch_ahead(b, block_bytes);
        chunk1_n<NC>(a, unpack(b), x, i, f16(b), -f16(b + 2));
    }
    store<NC>(a, out);
}

struct DotQ4_1 {
    template <int NC>
    static void run(const std::byte* row, const ActColumns& x, int64_t n, float* out) {
        dot_min1<NC>(reinterpret_cast<const uint8_t*>(row), layout::kQ4_1, x, n, out,
                     [](const uint8_t* b) { return nibbles16(b + 4); });
    }
};

struct DotQ5_1 {
    template <int NC>
    static void run(const std::byte* row, const ActColumns& x, int64_t n, float* out) {
        dot_min1<NC>(reinterpret_cast<const uint8_t*>(row), layout::kQ5_1, x, n, out, [](const uint8_t* b) {
            const __m256i hb = _mm256_and_si256(bits_to_bytes(layout::u32_at(b + 4)), _mm256_set1_epi8(0x10));
            return _mm256_or_si256(nibbles16(b + 8), hb);
        });
    }
};

// Q2_K / Q3_K: 2-bit weights in two planes of 32 bytes (at qs_offset), four chunks of 32 per plane, each chunk with
// two scales and two minimums. prepare(block) reads a super-block's scales once and returns chunk(c, low2): chunk c's
// unsigned weights (low2: its two low bits) with its scales and minimums.
struct ChunkScales {
    __m256i u;
    float sc0, sc1, mn0, mn1;
};
template <int NC, typename Prepare>
void dot_2bit(const uint8_t* b, int64_t block_bytes, int64_t qs_offset, const ActColumns& x, int64_t n, float* out,
              Prepare prepare) {
    const __m256i m3 = _mm256_set1_epi8(3);
    Acc a[NC];
    int64_t ci = 0;  // chunk index into each column's blocks
    for (int64_t i = 0; i < n / 256; ++i, b += block_bytes) {
        prefetch_ahead(b, block_bytes);
        const auto chunk = prepare(b);
        for (int h = 0; h < 2; ++h) {
            const __m256i qv = load256(b + qs_offset + 32 * h);
            for (int j = 0; j < 4; ++j, ++ci) {
                const ChunkScales k = chunk(4 * h + j, _mm256_and_si256(_mm256_srli_epi16(qv, 2 * j), m3));
                chunk_n<NC>(a, k.u, x, ci, k.sc0, k.sc1, k.mn0, k.mn1);
            }
        }
    }
    store<NC>(a, out);
}

struct DotQ2_K {
    template <int NC>
    static void run(const std::byte* row, const ActColumns& x, int64_t n, float* out) {
        dot_2bit<NC>(
            reinterpret_cast<const uint8_t*>(row), layout::kQ2_K, layout::kQ2_K_qs, x, n, out, [](const uint8_t* b) {
                const float d = f16(b + layout::kQ2_K_d), dmin = f16(b + layout::kQ2_K_d + 2);
                return [b, d, dmin](int c, __m256i low2) {
                    const uint8_t s0 = b[2 * c], s1 = b[2 * c + 1];
                    return ChunkScales{low2, d * (s0 & 0xF), d * (s1 & 0xF), dmin * (s0 >> 4), dmin * (s1 >> 4)};
                };
            });
    }
};

struct DotQ3_K {
    template <int NC>
    static void run(const std::byte* row, const ActColumns& x, int64_t n, float* out) {
        dot_2bit<NC>(reinterpret_cast<const uint8_t*>(row), layout::kQ3_K, layout::kQ3_K_qs, x, n, out,
                     [](const uint8_t* b) {
                         struct Scales {
                             float d;
                             int8_t sc[16];
                             __m256i hm;
                             ChunkScales operator()(int c, __m256i low2) const {
                                 const float d0 = d * sc[2 * c], d1 = d * sc[2 * c + 1];
                                 return {_mm256_or_si256(low2, bit_select(hm, c, 4)), d0, d1, 4 * d0, 4 * d1};
                             }
                         };
                         Scales s{f16(b + layout::kQ3_K_d), {}, load256(b)};
                         layout::scales_q3k(b + layout::kQ3_K_scales, s.sc);
                         return s;
                     });
    }
};

// The 8 x 8 transpose of 32-bit lanes: lane j of out[m] is lane m of in[j]. Applied to eight blocks of 32 bytes, out[m]
// holds bytes 4m..4m+3 of every block, block j in lane j: the weights' side of ActColumns::qt's grouping.
inline void transpose8(const __m256i (&in)[8], __m256i (&out)[8]) {
    __m256i t[8], u[8];
    for (int k = 0; k < 4; ++k) {
        t[2 * k] = _mm256_unpacklo_epi32(in[2 * k], in[2 * k + 1]);      // lanes 0 1 4 5 of in[2k], in[2k+1]
        t[2 * k + 1] = _mm256_unpackhi_epi32(in[2 * k], in[2 * k + 1]);  // lanes 2 3 6 7
    }
    for (int k = 0; k < 2; ++k) {
        u[4 * k] = _mm256_unpacklo_epi64(t[4 * k], t[4 * k + 2]);          // lanes 0 | 4 of four inputs
        u[4 * k + 1] = _mm256_unpackhi_epi64(t[4 * k], t[4 * k + 2]);      // 1 | 5
        u[4 * k + 2] = _mm256_unpacklo_epi64(t[4 * k + 1], t[4 * k + 3]);  // 2 | 6
        u[4 * k + 3] = _mm256_unpackhi_epi64(t[4 * k + 1], t[4 * k + 3]);  // 3 | 7
    }
    for (int m = 0; m < 4; ++m) {
        out[m] = _mm256_permute2x128_si256(u[m], u[m + 4], 0x20);
        out[m + 4] = _mm256_permute2x128_si256(u[m], u[m + 4], 0x31);
    }
}

// Sums of each of eight vectors of 8 x i32, as one vector [sum(p0), ..., sum(p7)].
inline __m256i reduce8(const __m256i (&p)[8]) {
    const __m256i h0123 = _mm256_hadd_epi32(_mm256_hadd_epi32(p[0], p[1]), _mm256_hadd_epi32(p[2], p[3]));
    const __m256i h4567 = _mm256_hadd_epi32(_mm256_hadd_epi32(p[4], p[5]), _mm256_hadd_epi32(p[6], p[7]));
    // h0123 = [p0..p3 over lanes 0-3 | p0..p3 over lanes 4-7], likewise h4567.
    return _mm256_add_epi32(_mm256_permute2x128_si256(h0123, h4567, 0x20),
                            _mm256_permute2x128_si256(h0123, h4567, 0x31));
}

// The one-scale signed types, eight blocks at a time. The eight weight blocks are regrouped like the activation's qt
// (ActColumns), so that per column eight multiply-adds leave block j's exact integer sum in lane j; the eight sums
// are scaled with one FMA against the blocks' scales times the activation's (ActColumns.d). The blocks past the last
// group of eight (rows of 896 have 28) take chunk_signed_n. A column's arithmetic is the same whatever NC, so a
// token's result does not depend on the others in the call.
template <int NC, typename Unpack>
void dot_signed(const uint8_t* b, int64_t block_bytes, const ActColumns& x, int64_t n, float* out, Unpack unpack) {
    __m256 acc[NC], tail[NC];
    for (int c = 0; c < NC; ++c) acc[c] = tail[c] = _mm256_setzero_ps();
    const int64_t n_blocks = n / 32, n_groups = n_blocks / 8;
    for (int64_t g = 0; g < n_groups; ++g) {
        prefetch_ahead(b + 8 * g * block_bytes, 8 * block_bytes);
        __m256i w[8], wt[8];
        alignas(32) float wd[8];
        for (int j = 0; j < 8; ++j) {
            const uint8_t* blk = b + (8 * g + j) * block_bytes;
            w[j] = unpack(blk);
            wd[j] = f16(blk);
        }
        const __m256 vwd = _mm256_load_ps(wd);
        if constexpr (NC == 1 && !SignedGroup::kForOneColumn) {
            // One column with maddubs: the regrouping (24 shuffles and eight signs) is not shared by other columns,
            // and a horizontal reduction of the eight blocks' lanes costs less. The same integers either way.
            __m256i p[8];
            for (int j = 0; j < 8; ++j) {
                p[j] = dot4(_mm256_sign_epi8(w[j], w[j]), _mm256_sign_epi8(load256(x.blocks[8 * g + j].q), w[j]));
            }
            acc[0] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(reduce8(p)), _mm256_mul_ps(vwd, _mm256_loadu_ps(x.d + 8 * g)),
                                     acc[0]);
            continue;
        }
        transpose8(w, wt);
        const SignedGroup sg(wt);
        for (int c = 0; c < NC; ++c) {
            const int64_t at = c * x.stride + 8 * g;
            const __m256i p = sg.sums(x.qt + 32 * at, x.sum128 + at);
            const __m256 scale = _mm256_mul_ps(vwd, _mm256_loadu_ps(x.d + c * x.stride + 8 * g));
            acc[c] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(p), scale, acc[c]);
        }
    }
    for (int64_t i = 8 * n_groups; i < n_blocks; ++i) {
        const uint8_t* blk = b + i * block_bytes;
        chunk_signed_n<NC>(tail, unpack(blk), x, i, f16(blk));
    }
    for (int c = 0; c < NC; ++c) out[c] = hsum(acc[c]) + hsum(tail[c]);
}

struct DotQ4_0 {
    template <int NC>
    static void run(const std::byte* row, const ActColumns& x, int64_t n, float* out) {
        dot_signed<NC>(reinterpret_cast<const uint8_t*>(row), layout::kQ4_0, x, n, out,
                       [](const uint8_t* blk) { return _mm256_sub_epi8(nibbles16(blk + 2), _mm256_set1_epi8(8)); });
    }
};

struct DotQ5_0 {
    template <int NC>
    static void run(const std::byte* row, const ActColumns& x, int64_t n, float* out) {
        dot_signed<NC>(reinterpret_cast<const uint8_t*>(row), layout::kQ5_0, x, n, out, [](const uint8_t* blk) {
            const __m256i hb = _mm256_and_si256(bits_to_bytes(layout::u32_at(blk + 2)), _mm256_set1_epi8(0x10));
            return _mm256_sub_epi8(_mm256_or_si256(nibbles16(blk + 6), hb), _mm256_set1_epi8(16));
        });
    }
};

// Q8_0's weights are already signed bytes (|-128| = 128 still fits maddubs' unsigned operand).
struct DotQ8_0 {
    template <int NC>
    static void run(const std::byte* row, const ActColumns& x, int64_t n, float* out) {
        dot_signed<NC>(reinterpret_cast<const uint8_t*>(row), layout::kQ8_0, x, n, out,
                       [](const uint8_t* blk) { return load256(blk + 2); });
    }
};

// Q4_K / Q5_K, whose eight sub-blocks of 32 each have one scale and one minimum: a super-block's eight sub-blocks are
// the activation's eight blocks of one group (ActColumns::qt). Their unsigned weights are regrouped like dot_signed's,
// so that eight multiply-adds per column leave each sub-block's integer sum in its own lane, scaled with one FMA
// against (d * sc_j) * d_x[j]; the minimums take one FMA against d_x[j] * sum_x[j] (ActColumns' arrays).
// unpack(block, u) writes the eight sub-blocks' 32 unsigned weights each.
template <int NC, typename Unpack>
void dot_k4(const uint8_t* b, int64_t block_bytes, int64_t scales_offset, const ActColumns& x, int64_t n, float* out,
            Unpack unpack) {
    __m256 acc[NC], accm[NC];
    for (int c = 0; c < NC; ++c) acc[c] = accm[c] = _mm256_setzero_ps();
    for (int64_t i = 0; i < n / 256; ++i, b += block_bytes) {
        prefetch_ahead(b, block_bytes);
        // The eight 6-bit scales and minimums as float vectors times d and dmin.
        alignas(8) uint8_t sc[8], mn[8];
        for (int j = 0; j < 8; ++j) layout::scale_min_k4(j, b + scales_offset, sc[j], mn[j]);
        const __m256 vsc = _mm256_mul_ps(_mm256_set1_ps(f16(b)), _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(load64(sc))));
        const __m256 vmn =
            _mm256_mul_ps(_mm256_set1_ps(f16(b + 2)), _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(load64(mn))));
        __m256i u[8], ut[8];
        unpack(b, u);
        transpose8(u, ut);
        for (int c = 0; c < NC; ++c) {
            const int8_t* xq = x.qt + (c * x.stride + 8 * i) * 32;
            __m256i p = dot4(ut[0], load256(xq));
            for (int m = 1; m < 8; ++m) p = dot4_acc(p, ut[m], load256(xq + 32 * m));
            const float* xd = x.d + c * x.stride + 8 * i;
            const float* xs = x.dsum + c * x.stride + 8 * i;
            acc[c] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(p), _mm256_mul_ps(vsc, _mm256_loadu_ps(xd)), acc[c]);
            accm[c] = _mm256_fmadd_ps(vmn, _mm256_loadu_ps(xs), accm[c]);
        }
    }
    for (int c = 0; c < NC; ++c) out[c] = hsum(acc[c]) - hsum(accm[c]);
}

// The 4-bit weights of a Q4_K/Q5_K super-block (128 bytes at qs): byte p*32 + l holds sub-block 2p's weight l in its
// low nibble and sub-block 2p+1's in its high one.
inline void k4_nibbles(const uint8_t* qs, __m256i (&u)[8]) {
    const __m256i m4 = _mm256_set1_epi8(0xF);
    for (int p = 0; p < 4; ++p) {
        const __m256i qv = load256(qs + 32 * p);
        u[2 * p] = _mm256_and_si256(qv, m4);
        u[2 * p + 1] = _mm256_and_si256(_mm256_srli_epi16(qv, 4), m4);
    }
}

struct DotQ4_K {
    template <int NC>
    static void run(const std::byte* row, const ActColumns& x, int64_t n, float* out) {
        dot_k4<NC>(reinterpret_cast<const uint8_t*>(row), layout::kQ4_K, layout::kQ4_K_scales, x, n, out,
                   [](const uint8_t* b, __m256i(&u)[8]) { k4_nibbles(b + layout::kQ4_K_qs, u); });
    }
};

// Q5_K: Q4_K's nibbles plus a fifth bit, bit j of qh's byte l for sub-block j's weight l.
struct DotQ5_K {
    template <int NC>
    static void run(const std::byte* row, const ActColumns& x, int64_t n, float* out) {
        dot_k4<NC>(reinterpret_cast<const uint8_t*>(row), layout::kQ5_K, layout::kQ5_K_scales, x, n, out,
                   [](const uint8_t* b, __m256i(&u)[8]) {
                       k4_nibbles(b + layout::kQ5_K_qs, u);
                       const __m256i qh = load256(b + layout::kQ5_K_qh);
                       for (int j = 0; j < 8; ++j) u[j] = _mm256_or_si256(u[j], bit_select(qh, j, 16));
                   });
    }
};

// Q6_K: sixteen sub-blocks of 16, so each chunk of 32 has two scales. The eight chunks' integer products are reduced
// per half: [c0a c1a c2a c3a | c0b c1b c2b c3b] for chunks 0-3 (a, b = first, second 16 values) and likewise for
// chunks 4-7; the scale vectors are laid out to match. The offset of 32 is a minimum against the activation's
// per-16 sums (dsum16), whose natural order [c0a c0b c1a c1b ...] matches the scales' natural order.
struct DotQ6_K {
    template <int NC>
    static void run(const std::byte* row, const ActColumns& x, int64_t n, float* out) {
        const auto* b = reinterpret_cast<const uint8_t*>(row);
        const __m256i m4 = _mm256_set1_epi8(0xF), m3 = _mm256_set1_epi8(3);
        // Lane order of a reduced half-vector: scales 0, 2, 4, 6 | 1, 3, 5, 7 (of its eight).
        const __m256i interleave = _mm256_setr_epi32(0, 2, 4, 6, 1, 3, 5, 7);
        __m256 acc[NC], accm[NC];
        for (int c = 0; c < NC; ++c) acc[c] = accm[c] = _mm256_setzero_ps();
        for (int64_t i = 0; i < n / 256; ++i, b += layout::kQ6_K) {
            prefetch_ahead(b, layout::kQ6_K);
            const float d = f16(b + layout::kQ6_K_d);
            const auto* scp = reinterpret_cast<const int8_t*>(b + layout::kQ6_K_scales);
            // Scales 0-7 and 8-15 as d * sc floats, natural order.
            const __m256 s_lo = _mm256_mul_ps(_mm256_set1_ps(d), _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(load64(scp))));
            const __m256 s_hi =
                _mm256_mul_ps(_mm256_set1_ps(d), _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(load64(scp + 8))));
            const __m256 s_lo_i = _mm256_permutevar8x32_ps(s_lo, interleave);
            const __m256 s_hi_i = _mm256_permutevar8x32_ps(s_hi, interleave);
            const __m256 thirty_two = _mm256_set1_ps(32.f);
            const __m256 mn_lo = _mm256_mul_ps(thirty_two, s_lo), mn_hi = _mm256_mul_ps(thirty_two, s_hi);
            __m256i u[8];
            for (int h = 0; h < 2; ++h) {
                const __m256i ql0 = load256(b + 64 * h), ql1 = load256(b + 64 * h + 32);
                const __m256i qh = load256(b + layout::kQ6_K_qh + 32 * h);
                // High two bits j of each byte of qh (shifted into bits 4-5), masked before shifting so that no bit
                // crosses into the neighbouring byte of the 16-bit lane.
                u[4 * h + 0] =
                    _mm256_or_si256(_mm256_and_si256(ql0, m4), _mm256_slli_epi16(_mm256_and_si256(qh, m3), 4));
                u[4 * h + 1] = _mm256_or_si256(_mm256_and_si256(ql1, m4),
                                               _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(qh, 2), m3), 4));
                u[4 * h + 2] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(ql0, 4), m4),
                                               _mm256_and_si256(qh, _mm256_set1_epi8(0x30)));
                u[4 * h + 3] = _mm256_or_si256(
                    _mm256_and_si256(_mm256_srli_epi16(ql1, 4), m4),
                    _mm256_srli_epi16(_mm256_and_si256(qh, _mm256_set1_epi8(static_cast<char>(0xC0))), 2));
            }
            for (int c = 0; c < NC; ++c) {
                const ActBlock* xb = x.blocks + c * x.stride + 8 * i;
                __m256i p[8];
                for (int j = 0; j < 8; ++j) {
                    p[j] = dot4(u[j], load256(xb[j].q));
                }
                const __m256i h0123 = _mm256_hadd_epi32(_mm256_hadd_epi32(p[0], p[1]), _mm256_hadd_epi32(p[2], p[3]));
                const __m256i h4567 = _mm256_hadd_epi32(_mm256_hadd_epi32(p[4], p[5]), _mm256_hadd_epi32(p[6], p[7]));
                const float* xd = x.d + c * x.stride + 8 * i;
                const __m256 xd0 = _mm256_broadcast_ps(reinterpret_cast<const __m128*>(xd));
                const __m256 xd1 = _mm256_broadcast_ps(reinterpret_cast<const __m128*>(xd + 4));
                acc[c] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(h0123), _mm256_mul_ps(s_lo_i, xd0), acc[c]);
                acc[c] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(h4567), _mm256_mul_ps(s_hi_i, xd1), acc[c]);
                const float* xs = x.dsum16 + 2 * (c * x.stride + 8 * i);
                accm[c] = _mm256_fmadd_ps(mn_lo, _mm256_loadu_ps(xs), accm[c]);
                accm[c] = _mm256_fmadd_ps(mn_hi, _mm256_loadu_ps(xs + 8), accm[c]);
            }
        }
        for (int c = 0; c < NC; ++c) out[c] = hsum(acc[c]) - hsum(accm[c]);
    }
};

// Float weights against nc f32 activation columns (column c at x + c * stride): each loaded and converted group of
// 8 weights is multiplied with every column. Two accumulators per column, so each lane sums n / 16 products. `row`
// and `elem_bytes` only serve the prefetch.
template <int NC, typename Load8, typename Load1>
void dot_float_cols(const std::byte* row, int64_t elem_bytes, const float* x, int64_t stride, int64_t n, float* out,
                    Load8 w8, Load1 w1) {
    __m256 a0[NC], a1[NC];
    for (int c = 0; c < NC; ++c) a0[c] = a1[c] = _mm256_setzero_ps();
    int64_t j = 0;
    for (; j + 16 <= n; j += 16) {
        prefetch_ahead(row + j * elem_bytes, 16 * elem_bytes);
        const __m256 v0 = w8(j), v1 = w8(j + 8);
        for (int c = 0; c < NC; ++c) {
            a0[c] = _mm256_fmadd_ps(v0, _mm256_loadu_ps(x + c * stride + j), a0[c]);
            a1[c] = _mm256_fmadd_ps(v1, _mm256_loadu_ps(x + c * stride + j + 8), a1[c]);
        }
    }
    for (int c = 0; c < NC; ++c) {
        float acc = hsum(_mm256_add_ps(a0[c], a1[c]));
        for (int64_t k = j; k < n; ++k) acc += w1(k) * x[c * stride + k];
        out[c] = acc;
    }
}

inline __m256 bf16x8(const uint8_t* p) {
    return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(load128(p)), 16));
}

struct DotF32 {
    template <int NC>
    static void run(const std::byte* row, const float* x, int64_t stride, int64_t n, float* out) {
        const auto* w = reinterpret_cast<const float*>(row);
        dot_float_cols<NC>(
            row, 4, x, stride, n, out, [w](int64_t j) { return _mm256_loadu_ps(w + j); },
            [w](int64_t j) { return w[j]; });
    }
};

struct DotF16 {
    template <int NC>
    static void run(const std::byte* row, const float* x, int64_t stride, int64_t n, float* out) {
        const auto* w = reinterpret_cast<const uint8_t*>(row);
        dot_float_cols<NC>(
            row, 2, x, stride, n, out, [w](int64_t j) { return _mm256_cvtph_ps(load128(w + 2 * j)); },
            [w](int64_t j) { return f16(w + 2 * j); });
    }
};

struct DotBF16 {
    template <int NC>
    static void run(const std::byte* row, const float* x, int64_t stride, int64_t n, float* out) {
        const auto* w = reinterpret_cast<const uint8_t*>(row);
        dot_float_cols<NC>(
            row, 2, x, stride, n, out, [w](int64_t j) { return bf16x8(w + 2 * j); },
            [w](int64_t j) {
                uint16_t h;
                std::memcpy(&h, w + 2 * j, 2);
                return bf16_to_fp32(h);
            });
    }
};

// The column-count dispatch: a kernel K is a struct whose template member run<NC> is the kernel for NC columns, and
// columns<K> calls run<nc> for the nc of the call, 1 <= nc <= Max.
template <class K, int Max, typename... Args>
inline void columns(int nc, const Args&... args) {
    [&]<int... I>(std::integer_sequence<int, I...>) {
        (void)((nc == I + 1 ? (K::template run<I + 1>(args...), true) : false) || ...);
    }
    (std::make_integer_sequence<int, Max>{});
}
template <class K>
void quant_columns(const std::byte* row, const ActColumns& x, int nc, int64_t n, float* out) {
    columns<K, kMaxCols>(nc, row, x, n, out);
}
template <class K>
void float_columns(const std::byte* row, const float* x, int64_t stride, int nc, int64_t n, float* out) {
    columns<K, kMaxFloatCols>(nc, row, x, stride, n, out);
}

// The kernel of each type, for the including file's instruction set.
inline QuantDotFn quant_kernels(TensorType t) {
    switch (t) {
        case TensorType::Q4_0: return quant_columns<DotQ4_0>;
        case TensorType::Q4_1: return quant_columns<DotQ4_1>;
        case TensorType::Q5_0: return quant_columns<DotQ5_0>;
        case TensorType::Q5_1: return quant_columns<DotQ5_1>;
        case TensorType::Q8_0: return quant_columns<DotQ8_0>;
        case TensorType::Q2_K: return quant_columns<DotQ2_K>;
        case TensorType::Q3_K: return quant_columns<DotQ3_K>;
        case TensorType::Q4_K: return quant_columns<DotQ4_K>;
        case TensorType::Q5_K: return quant_columns<DotQ5_K>;
        case TensorType::Q6_K: return quant_columns<DotQ6_K>;
        default: return nullptr;
    }
}

inline FloatDotFn float_kernels(TensorType t) {
    switch (t) {
        case TensorType::F32: return float_columns<DotF32>;
        case TensorType::F16: return float_columns<DotF16>;
        case TensorType::BF16: return float_columns<DotBF16>;
        default: return nullptr;
    }
}

}  // namespace

}  // namespace orcd::backend::cpu
