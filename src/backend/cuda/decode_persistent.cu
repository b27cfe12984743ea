// The single column's decode step as one persistent kernel (decode_persistent.h).
//
// Layout of b.persistent: the barrier's counter (256 bytes), the kernel's PersistentStep, one PersistentLayer per
// layer, then the quantized feed-forward activation (q_ffn). The tables are written once per set of decode buffers
// (upload_persistent_decode); the counter is zeroed before every launch (a memset node of the captured graph).
//
// The barrier: each block adds 1 to the counter when it arrives and waits until the counter reaches
// (barriers passed) x (blocks). The blocks are all resident at once (a cooperative launch, refused by the driver
// otherwise), so the wait ends; a wait that lasts seconds means a bug, and traps instead of hanging the worker.
#include "backend/cuda/decode_persistent.h"

#include <algorithm>
#include <optional>
#include <string>
#include <vector>

#include "backend/cuda/attention_decode.cuh"
#include "backend/cuda/dequant.h"
#include "backend/cuda/matvec_q8.h"
#include "backend/cuda/matvec_q8_kernels.cuh"
#include "backend/cuda/matvec_q8_rows.cuh"
#include "backend/cuda/norm.cuh"
#include "backend/cuda/ops.h"
#include "backend/cuda/rope_store.cuh"
#include "backend/cuda/tuning.h"
#include "common/error.h"
#include "device/cuda_check.h"
#include "device/device_query.h"

namespace orcd::backend::cuda {

namespace ops = ::orcd::cuda;

namespace {

using ops::Q8Params;
using ops::Q8Vector;
using ops::q8rows::kThreads;
using ops::q8rows::kWarps;
static_assert(ops::detail::kAttnThreads == kThreads, "the attention's phases run on the matvec's blocks");

// One layer's phases: its matrices as the chain's q8_matvec would run them, its norms, biases and KV cache view.
struct PersistentLayer {
    Q8Params qkv, o, gate_up, down;
    const float* attn_norm;
    const float* ffn_norm;
    const float* bias[3];
    ops::KvCacheView kv;
};

// What every layer shares: the activations (column 0 of the decode buffers), the quantized inputs by length, the
// attention's constants and workspace, the final norm and the LM head.
struct PersistentStep {
    const PersistentLayer* layers;
    int n_layers;
    float eps;
    float* x;     // [n_embd] the residual stream, the embedding's output
    float* qkv;   // [q | k | v]
    float* attn;  // [q_dim]
    float* ffn;   // [n_ff]
    int n_embd, q_dim, n_ff;
    // The quantized inputs of the matrices of rows n_embd, q_dim and n_ff long. q_embd and q_attn share the decode
    // buffers' quantized column 0, as in the chain; q_ffn has its own vector: the gate/up phase writes it while other
    // blocks still read q_embd.
    Q8Vector q_embd, q_attn, q_ffn;
    int n_heads, n_rot;
    bool neox;
    uint32_t window;
    const double* inv_freq;
    ops::DecodeColumns cols;
    int64_t n_chunks;
    void* attn_ws;
    const float* output_norm;
    Q8Params head;
    unsigned* barrier;
    bool fold;            // quantize x in every block that needs it, not in a phase of its own (fold_input)
    int64_t fold_offset;  // where a block's quantized x starts in its dynamic shared memory
};

constexpr uint64_t kCounterBytes = 256;

// A block's quantized x in its shared memory (the folded form): q (cols bytes), d (cols / 32 floats), s (cols / 16
// ints), each part 16-byte aligned (the single column's K-quant units read q 16 bytes at a time).
struct LocalQ8 {
    int64_t d_at, s_at, bytes;
};
__host__ __device__ constexpr int64_t round16(int64_t n) { return (n + 15) / 16 * 16; }
__host__ __device__ constexpr LocalQ8 local_q8_layout(int64_t cols) {
    const int64_t d_at = round16(cols), s_at = d_at + round16(cols / 32 * 4);
    return {d_at, s_at, s_at + round16(cols / 16 * 4)};
}
__device__ __forceinline__ Q8Vector local_q8(unsigned char* base, int cols) {
    const LocalQ8 l = local_q8_layout(cols);
    return {reinterpret_cast<int8_t*>(base), reinterpret_cast<float*>(base + l.d_at),
            reinterpret_cast<int32_t*>(base + l.s_at)};
}

uint64_t round256(uint64_t n) { return (n + 255) / 256 * 256; }

// Where the parts of b.persistent start (the layout in this file's header) and the bytes of the whole: the one place
// that computes them, for the reservation, the upload and the launch.
struct Region {
    uint64_t step, layers, q_ffn, bytes;
};
Region region(const model::Config& c) {
    Region r{};
    r.step = kCounterBytes;  // the counter comes first
    r.layers = r.step + round256(sizeof(PersistentStep));
    r.q_ffn = r.layers + round256(c.n_layers * sizeof(PersistentLayer));
    r.bytes = r.q_ffn + static_cast<uint64_t>(ops::q8_vector_bytes(static_cast<int64_t>(c.n_ff)));
    return r;
}

// ---- the device side -----------------------------------------------------------------------------------------------

// The wait that counts as a hang, in nanoseconds of the GPU's global timer: far beyond any token, and beyond the
// pauses of time-sliced sharing of the GPU with another process.
constexpr unsigned long long kBarrierTimeoutNs = 30'000'000'000ULL;

__device__ __forceinline__ unsigned long long global_ns() {
    unsigned long long t;
    asm volatile("mov.u64 %0, %%globaltimer;\n" : "=l"(t));
    return t;
}

struct GridBarrier {
    unsigned* count;
    unsigned target = 0;

    // This block's writes so far become visible to every block that passes the matching wait() (the block's
    // barrier, then a release by one thread: the pattern of cooperative_groups' grid sync).
    __device__ __forceinline__ void arrive() {
        __syncthreads();
        target += gridDim.x;
        if (threadIdx.x == 0) asm volatile("red.release.gpu.global.add.u32 [%0], 1;\n" ::"l"(count) : "memory");
    }
    // Returns once every block has arrived as often as this one.
    __device__ __forceinline__ void wait() {
        if (threadIdx.x == 0) {
            const unsigned long long start = global_ns();
            unsigned seen;
            for (;;) {
                asm volatile("ld.acquire.gpu.global.u32 %0, [%1];\n" : "=r"(seen) : "l"(count) : "memory");
                if (seen >= target) break;
                if (global_ns() - start > kBarrierTimeoutNs) __trap();
            }
        }
        __syncthreads();
    }
    __device__ __forceinline__ void sync() {
        arrive();
        wait();
    }
};

// What a block keeps in shared memory; the attention's queries and scores are the dynamic part.
struct Shared {
    PersistentStep step;  // the kernel's parameters, copied from device memory once
    Q8Params matrix;      // the current matvec's parameters (read by every thread, many times)
    double red[kThreads];
    ops::q8rows::MatvecPartials<1> part;
    int64_t rows[ops::detail::kAttnChunk];
};

// Copies the trivially copyable *from to *to, 8 bytes a thread (every thread of the block calls it).
template <typename T>
__device__ __forceinline__ void copy_block(const T* from, T* to) {
    static_assert(sizeof(T) % 8 == 0);
    constexpr int kWords = sizeof(T) / 8;
    for (int i = threadIdx.x; i < kWords; i += kThreads) {
        reinterpret_cast<uint64_t*>(to)[i] = reinterpret_cast<const uint64_t*>(from)[i];
    }
    __syncthreads();
}

// quantize_q8_kernel's work for one vector: this block's 32-blocks (blockIdx.x * kWarps + warp, then + gridDim.x *
// kWarps, ...), each with the norm's scale computed as every block of that kernel computes it.
__device__ __forceinline__ void quantize_phase(const float* x, const float* norm, float eps, int cols, Q8Vector out,
                                               double* red) {
    const int n_blocks = cols / 32;
    if (static_cast<int>(blockIdx.x) * kWarps >= n_blocks) return;  // uniform over the block
    float scale = 1.0f;
    if (norm) scale = ops::block_rms_scale<kThreads>(x, cols, eps, red);
    const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
    for (int b = static_cast<int>(blockIdx.x) * kWarps + warp; b < n_blocks;
         b += static_cast<int>(gridDim.x) * kWarps) {
        ops::q8rows::quantize_32block_of(x, norm, scale, b, lane, out);
    }
}

// Pulls into L2 the first rows this block computes in the matvec p (at most kPrefetchIters iterations of them): called
// before a barrier's wait, so that they stream while the other blocks finish.
constexpr int kPrefetchIters = 4;
__device__ __forceinline__ void prefetch_phase(const Q8Params& p) {
    const int tpr = p.tpr, per_iter = kThreads / tpr;
    const int64_t stride = static_cast<int64_t>(gridDim.x) * per_iter;
    int64_t base = static_cast<int64_t>(blockIdx.x) * per_iter;
    for (int i = 0; i < kPrefetchIters && base < p.n_out; ++i, base += stride) {
        ops::prefetch_row_l2(p, base + threadIdx.x / tpr, static_cast<int>(threadIdx.x) % tpr, tpr);
    }
}

// Rows of a matvec phase as a block takes them: per iteration of the chain's kernel (kThreads / tpr rows), or in
// groups of 32 rows (the gate/up matvec, whose block quantizes each group of its output).
enum class Rows : uint8_t { Iterations, Groups32 };

__device__ __forceinline__ bool block_has_rows(const Q8Params& p, Rows rows) {
    const int64_t first = rows == Rows::Groups32 ? static_cast<int64_t>(blockIdx.x) * 32
                                                 : static_cast<int64_t>(blockIdx.x) * (kThreads / p.tpr);
    return first < p.n_out;
}

// The folded form of "quantize x, barrier, matvec" (PersistentStep::fold): a block with rows in the matvec normalizes
// and quantizes all of x into its own shared memory (`local`) and points the staged parameters there. The values are
// those of the quantize phase (the same function of x, its norm and each 32-block), so no bit changes; what changes
// is one barrier less, for work every such block repeats.
__device__ __forceinline__ void fold_input(const float* x, const float* norm, float eps, int cols, Q8Vector local,
                                           Rows rows, Shared& sh) {
    if (!block_has_rows(sh.matrix, rows)) return;  // uniform over the block
    float scale = 1.0f;
    if (norm) scale = ops::block_rms_scale<kThreads>(x, cols, eps, sh.red);
    const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
    for (int b = warp; b < cols / 32; b += kWarps) {
        ops::q8rows::quantize_32block_of(x, norm, scale, b, lane, local);
    }
    if (threadIdx.x == 0) {
        sh.matrix.xq = local.q;
        sh.matrix.xd = local.d;
        sh.matrix.xs = local.s;
    }
    __syncthreads();
}

// The chain's dp4a matvec for one column over the parameters staged in sh.matrix: this block's rows. With
// Rows::Groups32 (the gate/up matvec: the host checks that n_ff is a multiple of 32) the block takes whole 32-row
// groups (the iterations that cover them; tpr >= 8, so they do) and quantizes each group of its output into
// `quantized` once the group is written.
__device__ __forceinline__ void matvec_rows(Rows rows, Shared& sh, const float* out = nullptr,
                                            Q8Vector quantized = {}) {
    const Q8Params& m = sh.matrix;
    if (rows == Rows::Iterations) {
        ops::q8rows::matvec_rows<1>(m, blockIdx.x, gridDim.x, 0, 1, sh.part);
        return;
    }
    const int per_iter = kThreads / m.tpr;
    const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
    for (int64_t g = blockIdx.x; g * 32 < m.n_out; g += gridDim.x) {
        for (int64_t base = g * 32; base < g * 32 + 32; base += per_iter) {
            ops::q8rows::matvec_rows_at<1>(m, base, 0, 1, sh.part);
        }
        __syncthreads();  // the group's outputs, written by this block, are read by warp 0 below
        if (warp == 0) {
            ops::q8rows::quantize_32block_of(out, nullptr, 1.0f, static_cast<int>(g), lane, quantized);
        }
        __syncthreads();
    }
}

// One projection of the normalized residual stream x (QKV, gate/up, the LM head): quantize, barrier, matvec; or
// folded (st.fold), each block quantizing x for itself. Ends without a barrier: the caller's next one follows.
__device__ __forceinline__ void normed_projection(const PersistentStep& st, const float* norm, const Q8Params& p,
                                                  Rows rows, GridBarrier& bar, Shared& sh, Q8Vector local,
                                                  const float* out = nullptr, Q8Vector quantized = {}) {
    if (st.fold) {
        copy_block(&p, &sh.matrix);
        fold_input(st.x, norm, st.eps, st.n_embd, local, rows, sh);
    } else {
        quantize_phase(st.x, norm, st.eps, st.n_embd, st.q_embd, sh.red);
        bar.sync();
        copy_block(&p, &sh.matrix);
    }
    matvec_rows(rows, sh, out, quantized);
}

// kMinBlocks: the blocks a SM the registers must allow (ptxas, sm_90: 2 -> 128 registers, no spill; 3 -> 80 and 4 ->
// 64, with spills); the launch picks the instance by its blocks a SM (ORCD_PERSISTENT_BLOCKS_PER_SM).
template <int kMinBlocks>
__global__ void __launch_bounds__(kThreads, kMinBlocks) persistent_decode_kernel(const PersistentStep* step) {
    __shared__ Shared sh;
    // Dynamic: the attention's queries and scores, then (folded) this block's quantized x.
    extern __shared__ __align__(16) unsigned char dynamic_smem[];
    copy_block(step, &sh.step);
    const PersistentStep& st = sh.step;
    float* attn_smem = reinterpret_cast<float*>(dynamic_smem);
    const Q8Vector local = local_q8(dynamic_smem + st.fold_offset, st.n_embd);
    GridBarrier bar{st.barrier};
    const int G = static_cast<int>(gridDim.x), bi = static_cast<int>(blockIdx.x);
    const int n_kv_heads = st.layers[0].kv.n_kv_heads;
    const int n_threads_all = G * kThreads;
    const int tid_all = bi * kThreads + static_cast<int>(threadIdx.x);
    const int warp = static_cast<int>(threadIdx.x) / 32, lane = static_cast<int>(threadIdx.x) % 32;
    // The attention's chunk slots per KV head: every block gets one (slot, head) pair, or none.
    const int64_t per_head = G / n_kv_heads < st.n_chunks ? G / n_kv_heads : st.n_chunks;
    const int64_t n_slots = per_head > 1 ? per_head : 1;
    prefetch_phase(st.layers[0].qkv);
    for (int li = 0; li < st.n_layers; ++li) {
        const PersistentLayer& L = st.layers[li];
        const ops::KvCacheView kv = L.kv;
        // x -> norm -> quantized -> [q | k | v]
        normed_projection(st, L.attn_norm, L.qkv, Rows::Iterations, bar, sh, local);
        bar.sync();
        // biases, RoPE, K/V into the cache
        const int32_t pos = st.cols.pos[0];
        const int32_t* table = ops::kv_table(kv, st.cols.table, 0);
        const int n_elems = ops::qkv_rope_store_elements(st.n_heads, kv, st.n_rot);
        for (int idx = tid_all; idx < n_elems; idx += n_threads_all) {
            ops::qkv_rope_store_element(st.qkv, L.bias[0], L.bias[1], L.bias[2], st.n_heads, kv, st.n_rot, pos, table,
                                        st.inv_freq, st.neox, idx);
        }
        bar.arrive();
        prefetch_phase(L.o);
        bar.wait();
        // attention: the partials of each (chunk slot, KV head), then each query head's combination
        for (int64_t vb = bi; vb < n_slots * n_kv_heads; vb += G) {
            __syncthreads();  // the previous pair's last reads of the shared queries
            ops::detail::attention_partial_chunks(st.qkv, 0, kv, st.cols, st.n_heads, st.n_chunks, st.window,
                                                  st.attn_ws, vb % n_slots, n_slots, static_cast<int>(vb / n_slots), 0,
                                                  attn_smem, sh.rows);
        }
        bar.sync();
        // Each head's output is whole 32-blocks of the O matrix's input (head_dim % 32 == 0, checked by the host): the
        // block that combines a head quantizes it.
        for (int h = bi; h < st.n_heads; h += G) {
            ops::detail::attention_combine_head(st.n_heads, kv.head_dim, st.n_chunks, st.cols, st.window, st.attn_ws,
                                                st.attn, 0, h, 0, static_cast<int>(threadIdx.x), kThreads);
            __syncthreads();  // the head's outputs, written by this block, are read by its warps below
            const int per_head = kv.head_dim / 32;
            for (int w = warp; w < per_head; w += kWarps) {
                ops::q8rows::quantize_32block_of(st.attn, nullptr, 1.0f, h * per_head + w, lane, st.q_attn);
            }
            __syncthreads();
        }
        bar.sync();
        // x += O attn
        copy_block(&L.o, &sh.matrix);
        matvec_rows(Rows::Iterations, sh);
        bar.arrive();
        prefetch_phase(L.gate_up);
        bar.wait();
        // x -> norm -> quantized -> silu(gate) * up -> quantized
        normed_projection(st, L.ffn_norm, L.gate_up, Rows::Groups32, bar, sh, local, st.ffn, st.q_ffn);
        bar.arrive();
        prefetch_phase(L.down);
        bar.wait();
        // x += down ffn
        copy_block(&L.down, &sh.matrix);
        matvec_rows(Rows::Iterations, sh);
        bar.arrive();
        prefetch_phase(li + 1 < st.n_layers ? st.layers[li + 1].qkv : st.head);
        bar.wait();
    }
    // x -> final norm -> quantized -> logits
    normed_projection(st, st.output_norm, st.head, Rows::Iterations, bar, sh, local);
}

// ---- the host side -------------------------------------------------------------------------------------------------

// The chain's int8 matvec over `mats` (q8_matvec_over), its input quantized at `x`. The refusal has checked that
// every matrix has one.
Q8Params params(const std::vector<Matmul>& mats, Q8Vector x, ops::MatvecEpilogue epilogue, float* y) {
    std::optional<ops::Q8Matvec> q = q8_matvec_over(mats, epilogue, y);
    if (!q) throw Error(ErrorCode::Internal, "the persistent decode step got a matrix without an int8 matvec");
    q->x = x;
    return ops::q8_matvec_params(*q);
}

using Kernel = void (*)(const PersistentStep*);

// The instance for `per_sm` blocks a SM (1 and 2 share one).
Kernel kernel_for(int per_sm) {
    return per_sm >= 4   ? persistent_decode_kernel<4>
           : per_sm == 3 ? persistent_decode_kernel<3>
                         : persistent_decode_kernel<2>;
}

// Blocks of the launch: ORCD_PERSISTENT_BLOCKS_PER_SM (else 2) a SM, at most as many as are resident at once.
int grid_blocks(size_t smem) {
    const int wanted = ops::tuning::persistent_blocks_per_sm(2);
    int per_sm = 0;
    ORCD_CUDA_CHECK(cudaOccupancyMaxActiveBlocksPerMultiprocessor(&per_sm, kernel_for(wanted), kThreads, smem));
    if (per_sm < 1) {
        throw Error(ErrorCode::Device, "the persistent decode kernel does not fit one SM (" + std::to_string(smem) +
                                           " B of dynamic shared memory)");
    }
    return std::min(per_sm, wanted) * ::orcd::device::sm_count();
}

size_t attention_smem_bytes(const model::Config& c) {
    return static_cast<size_t>(ops::detail::attention_partial_smem_floats(static_cast<int>(c.n_heads / c.n_kv_heads),
                                                                          static_cast<int>(c.head_dim))) *
           sizeof(float);
}

// ORCD_PERSISTENT_FOLD: the folded form of the normed projections (fold_input); off by default until measured.
bool fold() { return ops::tuning::persistent_fold(); }

// Where the folded x starts in the dynamic shared memory, and the dynamic bytes a block needs.
int64_t fold_offset(const model::Config& c) { return round16(static_cast<int64_t>(attention_smem_bytes(c))); }
size_t dynamic_smem_bytes(const model::Config& c) {
    if (!fold()) return attention_smem_bytes(c);
    return static_cast<size_t>(fold_offset(c) + local_q8_layout(static_cast<int64_t>(c.n_embd)).bytes);
}

}  // namespace

size_t persistent_decode_smem_bytes(const model::Config& c) { return dynamic_smem_bytes(c); }

uint64_t persistent_decode_bytes(const model::Config& c) { return region(c).bytes; }

void upload_persistent_decode(const CudaModel& m, DecodeBuffers& b, const KvCache& kv) {
    using ops::MatvecEpilogue;
    const model::Config& c = *m.config;
    const model::Recipe& r = *m.recipe;
    const Region at = region(c);
    auto* counter = b.persistent;
    auto* step_at = counter + at.step;
    auto* layers_at = counter + at.layers;
    const Q8Vector q_embd = ops::q8_vector_at(b.q8_base, c.n_embd);
    const Q8Vector q_attn = ops::q8_vector_at(b.q8_base, c.q_dim());
    const Q8Vector q_ffn = ops::q8_vector_at(counter + at.q_ffn, static_cast<int64_t>(c.n_ff));

    std::vector<PersistentLayer> layers(m.layers.size());
    for (size_t li = 0; li < m.layers.size(); ++li) {
        const Layer& l = m.layers[li];
        PersistentLayer& p = layers[li];
        p.qkv = params(l.qkv, q_embd, MatvecEpilogue::Store, b.qkv);
        p.o = params({l.o}, q_attn, MatvecEpilogue::Accumulate, b.x);
        p.gate_up = params(l.gate_up, q_embd, MatvecEpilogue::SwiGLU, b.ffn);
        p.down = params({l.down}, q_ffn, MatvecEpilogue::Accumulate, b.x);
        p.attn_norm = l.attn_norm;
        p.ffn_norm = l.ffn_norm;
        for (int i = 0; i < 3; ++i) p.bias[i] = l.bias[i];
        p.kv = kv.layer(c, li);
    }
    PersistentStep st{};
    st.layers = reinterpret_cast<const PersistentLayer*>(layers_at);
    st.n_layers = static_cast<int>(m.layers.size());
    st.eps = r.rms_eps;
    st.x = b.x;
    st.qkv = b.qkv;
    st.attn = b.attn;
    st.ffn = b.ffn;
    st.n_embd = static_cast<int>(c.n_embd);
    st.q_dim = static_cast<int>(c.q_dim());
    st.n_ff = static_cast<int>(c.n_ff);
    st.q_embd = q_embd;
    st.q_attn = q_attn;
    st.q_ffn = q_ffn;
    st.n_heads = static_cast<int>(r.n_heads);
    st.n_rot = static_cast<int>(r.rope_dim);
    st.neox = r.rope_layout == model::RopeLayout::NeoX;
    st.window = r.sliding_window;
    st.inv_freq = m.inv_freq;
    st.cols = {b.pos, b.table};
    st.n_chunks = ops::detail::attention_chunks(kv.n_ctx);
    st.attn_ws = b.attn_ws;
    st.output_norm = m.output_norm;
    st.head = params({m.output}, q_embd, MatvecEpilogue::Store, b.logits);
    st.barrier = reinterpret_cast<unsigned*>(counter);
    st.fold = fold();
    st.fold_offset = fold_offset(c);
    ORCD_CUDA_CHECK(cudaMemcpy(step_at, &st, sizeof(st), cudaMemcpyHostToDevice));
    ORCD_CUDA_CHECK(
        cudaMemcpy(layers_at, layers.data(), layers.size() * sizeof(PersistentLayer), cudaMemcpyHostToDevice));
    b.persistent_blocks = grid_blocks(dynamic_smem_bytes(c));
}

void enqueue_persistent_decode(const CudaModel& m, const DecodeBuffers& b, cudaStream_t s) {
    const model::Config& c = *m.config;
    auto* counter = b.persistent;
    const auto* step = reinterpret_cast<const PersistentStep*>(counter + region(c).step);
    // The counter starts at 0 in every launch; the step's tables are in place since upload_persistent_decode.
    ORCD_CUDA_CHECK(cudaMemsetAsync(counter, 0, sizeof(unsigned), s));
    ops::embedding_rows(m.embd_type, m.token_embd, c.n_embd, b.tokens, 1, b.x, s);
    const size_t smem = dynamic_smem_bytes(c);
    cudaLaunchConfig_t config{};
    config.gridDim = dim3(static_cast<unsigned>(b.persistent_blocks));
    config.blockDim = dim3(kThreads);
    config.dynamicSmemBytes = smem;
    config.stream = s;
    cudaLaunchAttribute attr[1];
    attr[0].id = cudaLaunchAttributeCooperative;
    attr[0].val.cooperative = 1;
    config.attrs = attr;
    config.numAttrs = 1;
    ORCD_CUDA_CHECK(cudaLaunchKernelEx(&config, kernel_for(b.persistent_blocks / ::orcd::device::sm_count()), step));
    ops::argmax(b.logits, c.n_vocab, b.argmax, s, 1, b.s_logits);
}

}  // namespace orcd::backend::cuda
