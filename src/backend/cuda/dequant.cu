// Weight dequantization (dequant.h): to f16 (the tensor-core GEMM operand of the prefill path and of `--weights f16`),
// and the embedding lookups (one row per token of a batch, and decode's one row whose token id sits in device memory,
// behind ops.h's embedding_row). Every
// decoder is its format's decode8 (quant/formats/), the very function the CPU reference dequantize_row runs, with
// products pinned so nvcc cannot contract them into an fma: the f32 value equals dequantize_row's exactly, and the f16
// is that value rounded to nearest (the gpu tests check both).
//
// A quantized matrix is a flat array of blocks (row length is a multiple of the block size), so element e of the
// matrix is element e % B of block e / B. A thread decodes 8 consecutive elements (one sub-block scale/min at most)
// and writes them with one 16-byte store.
#include "backend/cuda/dequant.h"

#include <cuda_fp16.h>

#include <span>
#include <string>
#include <string_view>

#include "backend/cuda/half.cuh"
#include "backend/cuda/launch_check.h"
#include "backend/cuda/ops.h"
#include "common/error.h"
#include "quant/formats.h"

namespace orcd::cuda {

namespace detail {

namespace {

using gguf::TensorType;

__device__ __forceinline__ void store8(uint16_t* dst, const float* v) {
    uint4 packed;
    __half2* h = reinterpret_cast<__half2*>(&packed);
#pragma unroll
    for (int i = 0; i < 4; ++i) h[i] = __floats2half2_rn(v[2 * i], v[2 * i + 1]);
    *reinterpret_cast<uint4*>(dst) = packed;
}

template <typename F>
__global__ void dequant_blocks(const typename F::Block* __restrict__ src, int64_t n_groups,
                               uint16_t* __restrict__ dst) {
    const int64_t g = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;  // group of 8 elements
    if (g >= n_groups) return;
    constexpr int kGroups = F::kBlockElems / 8;
    float v[8];
    F::decode8(src[g / kGroups], static_cast<int>(g % kGroups) * 8, v);
    store8(dst + 8 * g, v);
}

// Several matrices in one launch: thread g decodes group g of the launch, which is group g - first[j] of matrix j.
struct DequantBatch {
    int n = 0;
    TensorType type[kMaxDequantJobs] = {};
    const void* src[kMaxDequantJobs] = {};
    uint16_t* dst[kMaxDequantJobs] = {};
    int64_t first[kMaxDequantJobs + 1] = {};  // each matrix's first group of 8 elements in the launch; first[n]: all
};

__global__ void dequant_many(const DequantBatch b) {
    const int64_t g = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
    if (g >= b.first[b.n]) return;
    int j = 0;
    while (g >= b.first[j + 1]) ++j;
    const int64_t local = g - b.first[j];
    quant::visit_format(b.type[j], [&](auto f) {
        using F = decltype(f);
        if constexpr (quant::HasMatvec<F>) {
            constexpr int kGroups = F::kBlockElems / 8;
            float v[8];
            F::decode8(static_cast<const typename F::Block*>(b.src[j])[local / kGroups],
                       static_cast<int>(local % kGroups) * 8, v);
            store8(b.dst[j] + 8 * local, v);
        }
    });
}

template <int kKind>  // 0: f32, 1: f16, 2: bf16
__device__ __forceinline__ float plain(const void* src, int64_t i) {
    if constexpr (kKind == 0)
        return static_cast<const float*>(src)[i];
    else if constexpr (kKind == 1)
        return h2f(static_cast<const uint16_t*>(src)[i]);
    else
        return bf2f(static_cast<const uint16_t*>(src)[i]);
}

template <int kKind>
__global__ void dequant_plain(const void* __restrict__ src, int64_t n, uint16_t* __restrict__ dst) {
    const int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
    if (i < n) dst[i] = f2h(plain<kKind>(src, i));
}

// Embedding rows: grid (groups of a row, token); a thread decodes 8 elements of one row.
template <typename F>
__global__ void embed_rows_blocks(const typename F::Block* __restrict__ table, int64_t cols,
                                  const int32_t* __restrict__ tokens, float* __restrict__ out) {
    const int64_t g = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
    if (8 * g >= cols) return;
    const int64_t t = blockIdx.y;
    constexpr int kGroups = F::kBlockElems / 8;
    const typename F::Block* row = table + static_cast<int64_t>(tokens[t]) * (cols / F::kBlockElems);
    float v[8];
    F::decode8(row[g / kGroups], static_cast<int>(g % kGroups) * 8, v);
    float* o = out + t * cols + 8 * g;
#pragma unroll
    for (int i = 0; i < 8; ++i) o[i] = v[i];
}

template <int kKind>
__global__ void embed_rows_plain(const void* __restrict__ table, int64_t cols, const int32_t* __restrict__ tokens,
                                 float* __restrict__ out) {
    const int64_t j = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
    if (j >= cols) return;
    const int64_t t = blockIdx.y;
    out[t * cols + j] = plain<kKind>(table, static_cast<int64_t>(tokens[t]) * cols + j);
}

constexpr int kThreads = 256;
unsigned grid_for(int64_t n) { return static_cast<unsigned>((n + kThreads - 1) / kThreads); }

// The formats with a device decoder: those the f32 matvec kernels also take (Q2_K/Q3_K/Q8_1/Q8_K have none).
template <typename F>
constexpr bool kDeviceDecode = quant::HasMatvec<F>;

template <typename F>
void dq_blocks(const void* src, int64_t n, uint16_t* dst, cudaStream_t s) {
    const int64_t groups = n / 8;
    dequant_blocks<F><<<grid_for(groups), kThreads, 0, s>>>(static_cast<const typename F::Block*>(src), groups, dst);
}

template <typename F>
void emb_blocks(const void* table, int64_t cols, const int32_t* tokens, int64_t n_tokens, float* out, cudaStream_t s) {
    const dim3 grid(grid_for(cols / 8), static_cast<unsigned>(n_tokens));
    embed_rows_blocks<F><<<grid, kThreads, 0, s>>>(static_cast<const typename F::Block*>(table), cols, tokens, out);
}

bool launch_dequantize_f16(TensorType type, const void* src, int64_t rows, int64_t cols, uint16_t* dst,
                           cudaStream_t s) {
    const int64_t n = rows * cols;
    switch (type) {
        case TensorType::F32: dequant_plain<0><<<grid_for(n), kThreads, 0, s>>>(src, n, dst); break;
        case TensorType::F16: dequant_plain<1><<<grid_for(n), kThreads, 0, s>>>(src, n, dst); break;
        case TensorType::BF16: dequant_plain<2><<<grid_for(n), kThreads, 0, s>>>(src, n, dst); break;
        default: {
            bool launched = false;
            quant::visit_format(type, [&](auto f) {
                if constexpr (kDeviceDecode<decltype(f)>) {
                    dq_blocks<decltype(f)>(src, n, dst, s);
                    launched = true;
                }
            });
            return launched;
        }
    }
    return true;
}

void launch_dequantize_many_f16(const DequantBatch& b, cudaStream_t s) {
    dequant_many<<<grid_for(b.first[b.n]), kThreads, 0, s>>>(b);
}

bool launch_embedding_rows(TensorType type, const void* table, int64_t cols, const int32_t* tokens, int64_t n_tokens,
                           float* out, cudaStream_t s) {
    const dim3 plain_grid(grid_for(cols), static_cast<unsigned>(n_tokens));
    switch (type) {
        case TensorType::F32: embed_rows_plain<0><<<plain_grid, kThreads, 0, s>>>(table, cols, tokens, out); break;
        case TensorType::F16: embed_rows_plain<1><<<plain_grid, kThreads, 0, s>>>(table, cols, tokens, out); break;
        case TensorType::BF16: embed_rows_plain<2><<<plain_grid, kThreads, 0, s>>>(table, cols, tokens, out); break;
        default: {
            bool launched = false;
            quant::visit_format(type, [&](auto f) {
                if constexpr (kDeviceDecode<decltype(f)>) {
                    emb_blocks<decltype(f)>(table, cols, tokens, n_tokens, out, s);
                    launched = true;
                }
            });
            return launched;
        }
    }
    return true;
}

}  // namespace

// Decode's lookup is the batched one with a single token: its id is read from device memory either way.
bool launch_embedding_row(TensorType type, const void* table, int64_t cols, const int32_t* token, float* out,
                          cudaStream_t s) {
    return launch_embedding_rows(type, table, cols, token, 1, out, s);
}

}  // namespace detail

namespace {

using detail::check_launch;
using detail::require;

void check_type(bool supported, gguf::TensorType type, std::string_view what) {
    if (!supported) {
        throw Error(ErrorCode::UnsupportedTensorType,
                    "no CUDA " + std::string(what) + " for tensor type " + std::string(gguf::type_name(type)));
    }
}

// An embedding table's row: whole blocks of its type.
void require_row_length(gguf::TensorType type, int64_t cols, const char* op) {
    const uint32_t block = gguf::traits(type).block_elems;
    require(cols > 0 && cols % block == 0, op, "row length {} is not a positive multiple of the {} block size {}", cols,
            gguf::type_name(type), block);
}

// A matrix dequantize_to_f16 can write: whole blocks of its type per row, into a 16-byte aligned dst. matrix: its
// index in a batch (named in the message), or -1. The message is formatted only for a refusal: the prefill checks
// every matrix of every layer on every call.
void require_f16_target(gguf::TensorType type, int64_t rows, int64_t cols, const uint16_t* dst, const char* op,
                        int matrix = -1) {
    const int64_t block = gguf::traits(type).block_elems;
    const bool shape_ok = rows > 0 && cols > 0 && cols % block == 0;
    const bool aligned = reinterpret_cast<uintptr_t>(dst) % 16 == 0;
    if (shape_ok && aligned) return;
    const std::string which = matrix < 0 ? "" : "matrix " + std::to_string(matrix) + ": ";
    require(shape_ok, op, "{}{} x {} is not a valid {} matrix (row length must be a positive multiple of {})", which,
            rows, cols, gguf::type_name(type), block);
    require(aligned, op, "{}dst must be 16-byte aligned", which);
}

}  // namespace

bool dequant_f16_supported(gguf::TensorType type) {
    switch (type) {
        case gguf::TensorType::F32:
        case gguf::TensorType::F16:
        case gguf::TensorType::BF16: return true;
        default: break;
    }
    bool found = false;
    quant::visit_format(type, [&](auto f) { found = detail::kDeviceDecode<decltype(f)>; });
    return found;
}

void dequantize_to_f16(gguf::TensorType type, const void* src, int64_t rows, int64_t cols, uint16_t* dst,
                       cudaStream_t stream) {
    check_type(dequant_f16_supported(type), type, "f16 dequantization kernel");
    require_f16_target(type, rows, cols, dst, "dequantize_to_f16");
    detail::launch_dequantize_f16(type, src, rows, cols, dst, stream);
    check_launch();
}

void dequantize_many_to_f16(std::span<const DequantJob> jobs, cudaStream_t stream) {
    const auto n = static_cast<int64_t>(jobs.size());
    require(n >= 1 && n <= kMaxDequantJobs, "dequantize_many_to_f16", "{} matrices (1 .. {})", n, kMaxDequantJobs);
    detail::DequantBatch b;
    b.n = static_cast<int>(n);
    for (int j = 0; j < b.n; ++j) {
        const DequantJob& job = jobs[static_cast<size_t>(j)];
        const bool block_format = gguf::traits(job.type).block_elems > 1;
        check_type(block_format && dequant_f16_supported(job.type), job.type, "batched f16 dequantization kernel");
        require_f16_target(job.type, job.rows, job.cols, job.dst, "dequantize_many_to_f16", j);
        b.type[j] = job.type;
        b.src[j] = job.src;
        b.dst[j] = job.dst;
        b.first[j + 1] = b.first[j] + job.rows * job.cols / 8;
    }
    detail::launch_dequantize_many_f16(b, stream);
    check_launch();
}

void embedding_rows(gguf::TensorType type, const void* table, int64_t cols, const int32_t* tokens, int64_t n_tokens,
                    float* out, cudaStream_t stream) {
    check_type(dequant_f16_supported(type), type, "embedding lookup");
    require(n_tokens > 0 && n_tokens <= 65535, "embedding_rows", "{} tokens (1 .. 65535)", n_tokens);
    require_row_length(type, cols, "embedding_rows");
    detail::launch_embedding_rows(type, table, cols, tokens, n_tokens, out, stream);
    check_launch();
}

bool embedding_supported(gguf::TensorType type) {
    switch (type) {
        case gguf::TensorType::F32:
        case gguf::TensorType::F16:
        case gguf::TensorType::BF16:
        case gguf::TensorType::Q4_0:
        case gguf::TensorType::Q4_1:
        case gguf::TensorType::Q5_0:
        case gguf::TensorType::Q5_1:
        case gguf::TensorType::Q8_0:
        case gguf::TensorType::Q4_K:
        case gguf::TensorType::Q5_K:
        case gguf::TensorType::Q6_K: return true;
        default: return false;
    }
}

void embedding_row(gguf::TensorType type, const void* table, int64_t cols, const int32_t* token, float* out,
                   cudaStream_t stream) {
    check_type(embedding_supported(type), type, "embedding lookup");
    require_row_length(type, cols, "embedding_row");
    detail::launch_embedding_row(type, table, cols, token, out, stream);
    check_launch();
}

}  // namespace orcd::cuda
