// Causal grouped-query attention of a batch of queries over the f16 KV cache, flash-attention style on tensor cores
// (mma.sync m16n8k16, f16 inputs, f32 accumulation).
//
// A block takes 64 consecutive queries of one head (4 warps x 16 rows) and walks the key tiles from the one holding its
// first query's first attended key (tile 0 without a sliding window; model/attention_window.h) to its last query's
// position in order, 64 keys at a time: K and V tiles are double-buffered in shared memory with cp.async, S = Q K^T
// comes from mma with Q held in registers, the online softmax keeps per-row running max and sum (in the log2 domain),
// and O += P V reuses S's accumulator registers as the A operand (the well-known register layout coincidence of
// m16n8k16). Each query row sees its keys in one fixed order and every reduction (the 4-lane row max / row sum
// shuffles) has a fixed tree: no atomics, no split over keys, so the result is bit-identical from run to run.
//
// Rows of shared memory are padded by 16 bytes (D + 8 halves) so the 8 row addresses of an ldmatrix hit distinct
// banks. Cache rows past the block's last key are never read (zeros go to shared memory instead: the cache there may
// hold garbage, and 0 * NaN would poison P V even where P is 0).
#include <cuda_fp16.h>

#include <cmath>

#include "backend/cuda/kv_paging.cuh"
#include "backend/cuda/launch_check.h"
#include "backend/cuda/prefill_ops.h"
#include "model/attention_window.h"

namespace orcd::cuda::detail {

namespace {

constexpr int kWarps = 4;
constexpr int kBr = 16 * kWarps;  // queries per block
constexpr int kBc = 64;           // keys per tile
constexpr int kThreads = 32 * kWarps;

__device__ __forceinline__ uint32_t smem_addr(const void* p) {
    return static_cast<uint32_t>(__cvta_generic_to_shared(p));
}
__device__ __forceinline__ void cp_async16(void* smem, const void* gmem) {
    asm volatile("cp.async.cg.shared.global [%0], [%1], 16;\n" ::"r"(smem_addr(smem)), "l"(gmem) : "memory");
}
__device__ __forceinline__ void cp_async_commit() { asm volatile("cp.async.commit_group;\n" ::: "memory"); }
template <int N>
__device__ __forceinline__ void cp_async_wait() {
    asm volatile("cp.async.wait_group %0;\n" ::"n"(N) : "memory");
}

__device__ __forceinline__ void ldmatrix_x4(uint32_t (&r)[4], const void* p) {
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];\n"
                 : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
                 : "r"(smem_addr(p)));
}
__device__ __forceinline__ void ldmatrix_x4_trans(uint32_t (&r)[4], const void* p) {
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0,%1,%2,%3}, [%4];\n"
                 : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
                 : "r"(smem_addr(p)));
}
// d += a * b (16x8x16, row.col, f16 x f16 -> f32).
__device__ __forceinline__ void mma16816(float (&d)[4], const uint32_t (&a)[4], uint32_t b0, uint32_t b1) {
    asm volatile(
        "mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
        "{%0,%1,%2,%3};\n"
        : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}
__device__ __forceinline__ uint32_t pack_half2(float lo, float hi) {
    const __half2 h = __floats2half2_rn(lo, hi);
    return *reinterpret_cast<const uint32_t*>(&h);
}

// Copies rows [row0, row0 + 64) of a [*][row_stride] f16 matrix (columns col0 .. col0 + D) into a padded shared tile;
// rows >= n_rows are zero-filled.
template <int D>
__device__ __forceinline__ void load_tile(__half* tile, const uint16_t* g, int64_t row_stride, int64_t col0,
                                          int64_t row0, int64_t n_rows) {
    constexpr int kChunks = D / 8;  // 16-byte chunks per row
    constexpr int kStride = D + 8;
    for (int c = threadIdx.x; c < kBc * kChunks; c += kThreads) {
        const int r = c / kChunks, k = c % kChunks;
        __half* dst = tile + r * kStride + k * 8;
        if (row0 + r < n_rows) {
            cp_async16(dst, g + (row0 + r) * row_stride + col0 + k * 8);
        } else {
            *reinterpret_cast<uint4*>(dst) = make_uint4(0, 0, 0, 0);
        }
    }
}

// The K and V tiles of cache positions [row0, row0 + 64) (columns col0 .. col0 + D of each row) into their padded
// shared tiles; positions >= n_rows are zero-filled. K and V rows share their addresses, so each row's address
// (a page-table load, KvRowAddresser) is computed once for both, and all of a thread's addresses before the first
// copy is issued: each cp.async (an asm with a memory clobber) would otherwise wait for its own table load in turn.
// Phi-3's prefill attention (head_dim 96: six 16-byte chunks a thread a tile) took twice as long as over the
// contiguous cache with that chain, and still 1.57x with an address (and a division) per chunk and per K and V
// (ncu, 2026-12-04, ninth session).
template <int D>
__device__ __forceinline__ void load_kv_tiles(__half* k_tile, __half* v_tile, const KvCacheView& kv,
                                              const KvRowAddresser& row_at, int64_t col0, int64_t row0,
                                              int64_t n_rows) {
    constexpr int kChunks = D / 8;  // 16-byte chunks per row
    constexpr int kStride = D + 8;
    static_assert(kBc * kChunks % kThreads == 0, "every thread copies the same number of chunks");
    constexpr int kPerThread = kBc * kChunks / kThreads;
    int64_t at[kPerThread];  // the source row's offset of each of this thread's chunks; -1 past n_rows
#pragma unroll
    for (int j = 0; j < kPerThread; ++j) {
        const int r = (static_cast<int>(threadIdx.x) + j * kThreads) / kChunks;
        at[j] = row0 + r >= n_rows ? -1 : row_at(row0 + r) + col0;
    }
#pragma unroll
    for (int j = 0; j < kPerThread; ++j) {
        const int c = static_cast<int>(threadIdx.x) + j * kThreads;
        const int r = c / kChunks, k = c % kChunks;
        __half* kd = k_tile + r * kStride + k * 8;
        __half* vd = v_tile + r * kStride + k * 8;
        if (at[j] >= 0) {
            cp_async16(kd, kv.k + at[j] + k * 8);
            cp_async16(vd, kv.v + at[j] + k * 8);
        } else {
            *reinterpret_cast<uint4*>(kd) = make_uint4(0, 0, 0, 0);
            *reinterpret_cast<uint4*>(vd) = make_uint4(0, 0, 0, 0);
        }
    }
}

template <int D>
__global__ void __launch_bounds__(kThreads)
    attention_prefill_kernel(const uint16_t* __restrict__ q16, KvCacheView kv, int n_heads, int n_kv_heads,
                             int64_t pos0, int64_t n_tokens, uint32_t window, uint16_t* __restrict__ out16) {
    constexpr int kStride = D + 8;
    constexpr int kDTiles = D / 8;   // n-tiles of O
    constexpr int kKSteps = D / 16;  // k-steps of Q K^T
    extern __shared__ __align__(16) unsigned char smem_raw[];
    __half* qs = reinterpret_cast<__half*>(smem_raw);  // [kBr][kStride]
    __half* ks = qs + kBr * kStride;                   // [2][kBc][kStride]
    __half* vs = ks + 2 * kBc * kStride;               // [2][kBc][kStride]

    const int n_qtiles = static_cast<int>((n_tokens + kBr - 1) / kBr);
    const int qt = n_qtiles - 1 - static_cast<int>(blockIdx.x);  // the longest rows first
    const int h = blockIdx.y;
    const int kvh = h / (n_heads / n_kv_heads);
    const int64_t q0 = static_cast<int64_t>(qt) * kBr;
    const int64_t q_end = min(q0 + kBr, n_tokens);
    const int64_t n_keys = pos0 + q_end;  // keys 0 .. last query's position
    const int n_ktiles = static_cast<int>((n_keys + kBc - 1) / kBc);
    // Later rows of the block start no earlier, so the tiles before the first row's first key are never needed.
    const int kt0 = static_cast<int>(model::first_attended(pos0 + q0, window) / kBc);
    const int64_t q_row = static_cast<int64_t>(n_heads) * D;

    const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
    const int g = lane / 4, tq = lane % 4;

    const KvRowAddresser row_at(kv, kv.pages);
    const int64_t col0 = static_cast<int64_t>(kvh) * D;
    load_tile<D>(qs, q16 + q0 * q_row, q_row, static_cast<int64_t>(h) * D, 0, q_end - q0);
    load_kv_tiles<D>(ks, vs, kv, row_at, col0, static_cast<int64_t>(kt0) * kBc, n_keys);
    cp_async_commit();

    // Positions of this thread's two rows (g and g + 8 of the warp's 16).
    const int64_t pos_a = pos0 + q0 + warp * 16 + g;
    const int64_t pos_b = pos_a + 8;
    const float scale_log2 = 1.4426950408889634f / sqrtf(static_cast<float>(D));

    uint32_t qf[kKSteps][4];
    float o[kDTiles][4];
#pragma unroll
    for (int i = 0; i < kDTiles; ++i) o[i][0] = o[i][1] = o[i][2] = o[i][3] = 0.f;
    float m_a = -INFINITY, m_b = -INFINITY, l_a = 0.f, l_b = 0.f;

    for (int kt = kt0; kt < n_ktiles; ++kt) {
        const int buf = (kt - kt0) & 1;
        if (kt + 1 < n_ktiles) {
            const int64_t r0 = static_cast<int64_t>(kt + 1) * kBc;
            load_kv_tiles<D>(ks + (buf ^ 1) * kBc * kStride, vs + (buf ^ 1) * kBc * kStride, kv, row_at, col0, r0,
                             n_keys);
        }
        cp_async_commit();
        cp_async_wait<1>();
        __syncthreads();
        if (kt == kt0) {
#pragma unroll
            for (int kk = 0; kk < kKSteps; ++kk) {
                ldmatrix_x4(qf[kk], qs + (warp * 16 + lane % 16) * kStride + kk * 16 + (lane / 16) * 8);
            }
        }
        const __half* kb = ks + buf * kBc * kStride;
        const __half* vb = vs + buf * kBc * kStride;

        // S = Q K^T for 64 keys: 8 n-tiles of 8 keys.
        float s[kBc / 8][4];
#pragma unroll
        for (int i = 0; i < kBc / 8; ++i) s[i][0] = s[i][1] = s[i][2] = s[i][3] = 0.f;
#pragma unroll
        for (int kk = 0; kk < kKSteps; ++kk) {
#pragma unroll
            for (int j = 0; j < kBc / 16; ++j) {
                uint32_t b[4];
                ldmatrix_x4(b, kb + (16 * j + lane % 8 + (lane / 16) * 8) * kStride + kk * 16 + ((lane / 8) % 2) * 8);
                mma16816(s[2 * j], qf[kk], b[0], b[1]);
                mma16816(s[2 * j + 1], qf[kk], b[2], b[3]);
            }
        }

        // Scale into the log2 domain, mask the future (and what lies before the window), online softmax. A tile that
        // every row of the block attends whole (below the diagonal, inside every row's window) skips the per-key
        // test, whose 64-bit compares cost about as many instructions as the tile's mma: the same values either way.
        const int64_t key0 = static_cast<int64_t>(kt) * kBc;
        const bool whole =
            key0 + kBc - 1 <= pos0 + q0 && (window == 0 || pos0 + q_end - 1 - key0 < static_cast<int64_t>(window));
        float mx_a = m_a, mx_b = m_b;
        if (whole) {
#pragma unroll
            for (int nt = 0; nt < kBc / 8; ++nt) {
#pragma unroll
                for (int e = 0; e < 2; ++e) {
                    s[nt][e] *= scale_log2;
                    s[nt][2 + e] *= scale_log2;
                    mx_a = fmaxf(mx_a, s[nt][e]);
                    mx_b = fmaxf(mx_b, s[nt][2 + e]);
                }
            }
        } else {
#pragma unroll
            for (int nt = 0; nt < kBc / 8; ++nt) {
#pragma unroll
                for (int e = 0; e < 2; ++e) {
                    const int64_t kp = key0 + nt * 8 + 2 * tq + e;
                    s[nt][e] = model::attends(pos_a, kp, window) ? s[nt][e] * scale_log2 : -INFINITY;
                    s[nt][2 + e] = model::attends(pos_b, kp, window) ? s[nt][2 + e] * scale_log2 : -INFINITY;
                    mx_a = fmaxf(mx_a, s[nt][e]);
                    mx_b = fmaxf(mx_b, s[nt][2 + e]);
                }
            }
        }
        mx_a = fmaxf(mx_a, __shfl_xor_sync(0xffffffffu, mx_a, 1));
        mx_a = fmaxf(mx_a, __shfl_xor_sync(0xffffffffu, mx_a, 2));
        mx_b = fmaxf(mx_b, __shfl_xor_sync(0xffffffffu, mx_b, 1));
        mx_b = fmaxf(mx_b, __shfl_xor_sync(0xffffffffu, mx_b, 2));
        // Without a window every row sees key 0 in tile 0, so the running max is finite from the first tile on. With
        // one, a row may not have reached its first key yet (max still -inf): its terms are then taken against 0,
        // which leaves its sums at exactly 0 instead of NaN.
        const float base_a = mx_a == -INFINITY ? 0.f : mx_a, base_b = mx_b == -INFINITY ? 0.f : mx_b;
        const float corr_a = exp2f(m_a - base_a), corr_b = exp2f(m_b - base_b);
        m_a = mx_a;
        m_b = mx_b;
        l_a *= corr_a;
        l_b *= corr_b;
#pragma unroll
        for (int i = 0; i < kDTiles; ++i) {
            o[i][0] *= corr_a;
            o[i][1] *= corr_a;
            o[i][2] *= corr_b;
            o[i][3] *= corr_b;
        }
#pragma unroll
        for (int nt = 0; nt < kBc / 8; ++nt) {
            s[nt][0] = exp2f(s[nt][0] - base_a);
            s[nt][1] = exp2f(s[nt][1] - base_a);
            s[nt][2] = exp2f(s[nt][2] - base_b);
            s[nt][3] = exp2f(s[nt][3] - base_b);
            l_a += s[nt][0] + s[nt][1];
            l_b += s[nt][2] + s[nt][3];
        }

        // O += P V: P from S's registers (rounded to f16), V through transposing ldmatrix.
#pragma unroll
        for (int kk = 0; kk < kBc / 16; ++kk) {
            uint32_t a[4];
            a[0] = pack_half2(s[2 * kk][0], s[2 * kk][1]);
            a[1] = pack_half2(s[2 * kk][2], s[2 * kk][3]);
            a[2] = pack_half2(s[2 * kk + 1][0], s[2 * kk + 1][1]);
            a[3] = pack_half2(s[2 * kk + 1][2], s[2 * kk + 1][3]);
#pragma unroll
            for (int j = 0; j < D / 16; ++j) {
                uint32_t b[4];
                ldmatrix_x4_trans(
                    b, vb + (16 * kk + lane % 8 + ((lane / 8) % 2) * 8) * kStride + 16 * j + (lane / 16) * 8);
                mma16816(o[2 * j], a, b[0], b[1]);
                mma16816(o[2 * j + 1], a, b[2], b[3]);
            }
        }
        __syncthreads();  // everyone is done with this buffer before the next iteration refills it
    }

    // Row sums over the 4 lanes of a row (fixed tree), normalize, store f16.
    l_a += __shfl_xor_sync(0xffffffffu, l_a, 1);
    l_a += __shfl_xor_sync(0xffffffffu, l_a, 2);
    l_b += __shfl_xor_sync(0xffffffffu, l_b, 1);
    l_b += __shfl_xor_sync(0xffffffffu, l_b, 2);
    const float inv_a = 1.f / l_a, inv_b = 1.f / l_b;
    const int64_t row_a = q0 + warp * 16 + g, row_b = row_a + 8;
#pragma unroll
    for (int i = 0; i < kDTiles; ++i) {
        const int64_t col = static_cast<int64_t>(h) * D + i * 8 + 2 * tq;
        if (row_a < n_tokens) {
            *reinterpret_cast<uint32_t*>(out16 + row_a * q_row + col) = pack_half2(o[i][0] * inv_a, o[i][1] * inv_a);
        }
        if (row_b < n_tokens) {
            *reinterpret_cast<uint32_t*>(out16 + row_b * q_row + col) = pack_half2(o[i][2] * inv_b, o[i][3] * inv_b);
        }
    }
}

template <int D>
void launch(const uint16_t* q16, const KvCacheView& kv, int n_heads, int64_t pos0, int64_t n_tokens, uint32_t window,
            uint16_t* out16, cudaStream_t s) {
    constexpr size_t kSmem = static_cast<size_t>(kBr + 4 * kBc) * (D + 8) * sizeof(__half);
    static const bool configured = [] {
        return cudaFuncSetAttribute(attention_prefill_kernel<D>, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                    static_cast<int>(kSmem)) == cudaSuccess;
    }();
    (void)configured;  // a failure shows up as the launch's error
    const dim3 grid(static_cast<unsigned>((n_tokens + kBr - 1) / kBr), static_cast<unsigned>(n_heads));
    attention_prefill_kernel<D>
        <<<grid, kThreads, kSmem, s>>>(q16, kv, n_heads, kv.n_kv_heads, pos0, n_tokens, window, out16);
}

}  // namespace

bool launch_attention_prefill(const uint16_t* q16, const KvCacheView& kv, int n_heads, int64_t pos0, int64_t n_tokens,
                              uint32_t window, uint16_t* out16, cudaStream_t s) {
    switch (kv.head_dim) {
        case 64: launch<64>(q16, kv, n_heads, pos0, n_tokens, window, out16, s); return true;
        case 80: launch<80>(q16, kv, n_heads, pos0, n_tokens, window, out16, s); return true;
        case 96: launch<96>(q16, kv, n_heads, pos0, n_tokens, window, out16, s); return true;
        case 128: launch<128>(q16, kv, n_heads, pos0, n_tokens, window, out16, s); return true;
        default: return false;
    }
}

}  // namespace orcd::cuda::detail

namespace orcd::cuda {

bool attention_prefill_supported(int head_dim) {
    return head_dim == 64 || head_dim == 80 || head_dim == 96 || head_dim == 128;
}

void attention_prefill(const uint16_t* q16, const KvCacheView& kv, int n_heads, int64_t pos0, int64_t n_tokens,
                       uint16_t* out16, cudaStream_t stream, uint32_t window) {
    using detail::require;
    require(kv.k && kv.v && kv.n_kv_heads > 0, "attention_prefill", "the KV cache view needs K and V buffers");
    require(attention_prefill_supported(kv.head_dim), "attention_prefill",
            "no kernel for head dimension {} (64, 80, 96, 128)", kv.head_dim);
    require(n_heads > 0 && n_heads % kv.n_kv_heads == 0 && n_heads <= 65535, "attention_prefill",
            "{} query heads are not a multiple of {} KV heads", n_heads, kv.n_kv_heads);
    require(n_tokens > 0 && pos0 >= 0 && pos0 + n_tokens <= kv.n_ctx, "attention_prefill",
            "positions {} .. {} do not fit a cache of {}", pos0, pos0 + n_tokens - 1, kv.n_ctx);
    require(reinterpret_cast<uintptr_t>(q16) % 16 == 0 && reinterpret_cast<uintptr_t>(out16) % 4 == 0,
            "attention_prefill", "q16 must be 16-byte and out16 4-byte aligned");
    detail::launch_attention_prefill(q16, kv, n_heads, pos0, n_tokens, window, out16, stream);
    detail::check_launch();
}

}  // namespace orcd::cuda
