#pragma once
// Where a position's K/V row lives in a KvCacheView (ops.h): contiguous, or through a page table. Device code only;
// every kernel that reads or writes the cache (KV store, decode and prefill attention) addresses rows through it, so
// the layout is defined once.
#include <cstdint>

#include "backend/cuda/ops.h"

namespace orcd::cuda {

// Offset in halves of position p's row from kv.k (and kv.v), through `table` (the sequence's page table; ignored for
// a contiguous cache).
__device__ __forceinline__ int64_t kv_row_offset(const KvCacheView& kv, const int32_t* table, int64_t p) {
    const int64_t kv_dim = static_cast<int64_t>(kv.n_kv_heads) * kv.head_dim;
    if (kv.pages == nullptr) return p * kv_dim;
    // In 32 bits: a position is below the context length (a uint32) and a page size is a positive int. A 64-bit
    // division is a long software routine on the GPU, and the prefill attention computes this for every 16-byte load of
    // a K/V tile: with 64 bits, Phi-3's prefill attention (head_dim 96) took twice as long as on a contiguous cache.
    const uint32_t pu = static_cast<uint32_t>(p), ps = static_cast<uint32_t>(kv.page_size);
    const uint32_t page = pu / ps;
    return static_cast<int64_t>(table[page]) * kv.page_stride + static_cast<int64_t>(pu - page * ps) * kv_dim;
}

// kv_row_offset for a kernel that addresses many rows of one table (the prefill attention's K/V tiles): the page
// index comes from a multiply by a reciprocal computed once, not a division per row. For d = page_size and m =
// floor((2^32 - 1) / d), q = umulhi(p, m) is floor(p / d) or one less (p m / 2^32 > p / d - 1 for p < 2^32), and one
// compare corrects it: the same offset as kv_row_offset, bit for bit.
struct KvRowAddresser {
    int64_t kv_dim = 0, page_stride = 0;
    const int32_t* table = nullptr;
    uint32_t page_size = 1, magic = 0;
    __device__ KvRowAddresser(const KvCacheView& kv, const int32_t* t)
        : kv_dim(static_cast<int64_t>(kv.n_kv_heads) * kv.head_dim), page_stride(kv.page_stride), table(t) {
        if (t != nullptr) {
            page_size = static_cast<uint32_t>(kv.page_size);
            magic = 0xFFFFFFFFu / page_size;
        }
    }
    __device__ __forceinline__ int64_t operator()(int64_t p) const {
        if (table == nullptr) return p * kv_dim;
        const uint32_t pu = static_cast<uint32_t>(p);  // below the context length, as in kv_row_offset
        uint32_t page = __umulhi(pu, magic);
        uint32_t slot = pu - page * page_size;
        if (slot >= page_size) ++page, slot -= page_size;
        return static_cast<int64_t>(table[page]) * page_stride + static_cast<int64_t>(slot) * kv_dim;
    }
};

// Column c's page table (DecodeColumns).
__device__ __forceinline__ const int32_t* kv_table(const KvCacheView& kv, const int32_t* col_table, int c) {
    return kv.pages == nullptr ? nullptr : (col_table ? kv.pages + col_table[c] : kv.pages);
}

}  // namespace orcd::cuda
