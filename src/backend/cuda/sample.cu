// The sampling chain on the device (see sample_chain.h for its contract; sample_kernels.h for the launch), every row of
// a step in one launch (one or more blocks a row, below), without sorting the vocabulary.
//
// The chain's order (logit descending, ties by id ascending) is the order of an order-preserving 32-bit key of the
// logit (larger key = larger logit; NaN counts as -inf, -0 as +0), then id ascending. Every filter keeps a prefix of
// that order, held as (K, c): every token with key > K, and the first c tokens with key == K (all of them when c is
// "all"). Each step of the chain is a first crossing of a running sum in that order:
// - top-k: the first token where the running count reaches k;
// - top-p: the first where the running weight e^(l - max) reaches top_p x the survivors' total (inclusive);
// - min-p: a threshold on the key (the ratio e^(l - max) falls with the key), one pass;
// - the pick: the first where the running weight e^((l - max) / T) exceeds u x the survivors' total.
// A crossing is found by descending the key's digits (12, 10, 10 bits): per level one pass over the row histograms
// the count or weight of the survivors under the current key prefix by their next digit, a block scan over the digits
// in descending order finds the digit where the sum crosses, and the prefix grows by it. After the last level the key
// is exact, and the tokens with that key all weigh the same, so the crossing's index among them is a division; the
// pick then finds that index's id by scanning the key's tokens in id order (one more pass). Once top-k or top-p leaves
// at most kListCap tokens (the engine's default top-k 40, a peaked distribution's top-p), they are copied into shared
// memory in id order, and every later pass reads those instead of the vocabulary; once at most kShortListCap are
// left (top-k 40), a crossing is a plain running sum over them in the chain's order instead (short_crossing: the same
// integers, so the same picks, without the levels' 4,096- and 1,024-bin block scans). A top-k of at most kListCap
// takes a shorter way still: its first level's counts come from the extremes' pass (a count needs no maximum), and
// when the tokens at or above the crossing's first digit fit in the list, those are compacted after that one level
// and the crossing is found among them (the running counts in the chain's order are the same up to it); the list then
// shrinks in place to top-k's cut.
//
// A row's vocabulary passes are spread over `slices` blocks (a grid of rows x slices) so that a small batch still uses
// the whole GPU: each block reads its slice, and what the chain needs of the whole row (the extremes, a level's
// digit histogram, the counts before a slice) goes through the row's global scratch with integer atomics and a barrier
// of the row's blocks. Every block then holds the same row-wide values and takes the same decisions; integer sums and
// extremes do not depend on how the row was split, so neither does a pick. Once the survivors fit in shared memory,
// every block copies all of them and runs the rest of the chain alone (block 0 writes the id). The barrier needs all
// of a row's blocks resident at once: the launch uses at most half of the blocks the device holds at a time (the
// other half leaves room for a second sampler launch, another pool's, running beside it). The scratch starts every
// launch zeroed without a clear of its own: the last block of a split row to finish zeroes the row's part; and up to
// kInlineRows rows' parameters travel in the launch itself, so that a step's sampling is one enqueued operation.
//
// Weights are e^x in f32 (expf, as the sorted path did), rounded to fixed point with 2^S units for the whole (the top
// token weighs exactly 2^S, the sum of n weights stays under 2^62), and summed with integer atomics: the sums are
// exact sums of the rounded weights, the same in every run whatever the atomics' order. Against the host chain's
// double sums of double exps they differ by the f32 exp's rounding (~1e-7 relative per token) and the fixed point's
// (2^-S-1 absolute per token), so a pick differs from the host's only where u, top_p or min_p lies that close to a
// boundary.
#include <cub/block/block_scan.cuh>

#include <algorithm>
#include <climits>
#include <cstdint>

#include "backend/cuda/sample_kernels.h"
#include "backend/cuda/tuning.h"
#include "device/device_query.h"

namespace orcd::backend::cuda::detail {

namespace {

constexpr int kThreads = 1024;
constexpr int kWarps = kThreads / 32;
constexpr int kLevels = 3;
// Level l's digit: bits [shift, shift + bits) of the key.
__device__ __forceinline__ int level_bits(int level) { return level == 0 ? 12 : 10; }
__device__ __forceinline__ int level_shift(int level) { return level == 0 ? 20 : level == 1 ? 10 : 0; }
constexpr int kMaxBins = 1 << 12;
constexpr unsigned kFull = 0xffffffffu;
// Survivors a block keeps in shared memory once a filter leaves at most this many (with the 32 KiB of digit
// histograms, under the 48 KiB of static shared memory).
constexpr int kListCap = 1536;
// A slice is at least this many values (one block reads it in a few rounds of loads; ORCD_SAMPLE_SLICE_MIN overrides
// it for a benchmark), and a row has at most kMaxSlices: past that the barriers cost more than the passes save.
// H200, 2026-12-05, Qwen2.5-0.5B shape (152k vocabulary), int8, one call, the sampler's us a step for the OpenAI
// default / the engine default at B = 1: 2048 71.0 / 53.4, 4096 55.4 / 54.8, 8192 55.9 / 61.1, 16384 76.4 / 76.2. At
// B = 16 the split is bound by residency instead (sample_slices), so every setting gave the same 122-124 / 96-97 us.
constexpr int kSliceMin = 4096;
constexpr int kMaxSlices = 64;

using ull = unsigned long long;
using ScanU64 = cub::BlockScan<ull, kThreads, cub::BLOCK_SCAN_WARP_SCANS>;

struct Shared {
    ull hist[kMaxBins];
    float list_x[kListCap];  // the compacted survivors' logits, in id order
    int32_t list_id[kListCap];
    typename ScanU64::TempStorage scan;
    ull warp_val[kWarps];
    ull result;
};

}  // namespace

// A row's global scratch (zero before every launch that splits rows: zeroed once when allocated, and the last block
// of a row to finish zeroes it again, which spares every launch a clear of its own): the barrier's arrivals, the extremes (minima
// stored complemented, so that all three are maxima from zero), each slice's count for a compaction or the pick's
// index, and three rotating digit histograms.
struct SampleRowScratch {
    unsigned arrived;
    unsigned exited;  // blocks done: the last one out zeroes the scratch for the next launch
    ull best, least, lowest;
    int counts[3][kMaxSlices];
    // A compaction's slices take their places in the row's list by an atomic on list_n (in any order) and note where
    // (list_at) and how many (list_count), so that every block copies them back in slice order, i.e. id order. At
    // most three compactions of the vocabulary a row: the top-k superset's, top-k's and top-p's.
    unsigned list_n[3];
    int list_at[3][kMaxSlices];
    int list_count[3][kMaxSlices];
    ull hist[3][kMaxBins];
};
// The survivors of a split row, in id order, before each block copies them into its shared memory (not zeroed).
struct SampleRowList {
    float x[kListCap];
    int32_t id[kListCap];
};
// A row's place in the scratch (by the row's index alone, so that launches of any number of rows find their heads
// where the last launch left them zero).
struct SampleRowSpace {
    SampleRowScratch head;
    SampleRowList list;
};

namespace {

// A block's place in its row: its slice, and whether the row is still split (false from the start with one slice,
// and after the survivors were copied into every block).
struct Grid {
    SampleRowScratch* g;
    SampleRowList* list;
    int slice, slices;
    bool split;
    unsigned gen;   // barriers passed
    int hist_use;   // histograms merged
    int count_use;  // slice counts exchanged
    int list_use;   // compactions of the vocabulary tried
    int short_cap;  // a compacted list of at most this many takes short_crossing (a test lowers it to compare)
};

// Every block of the row arrives before any leaves; writes before are visible after (the fences around the count;
// release / acquire operations instead more than doubled the kernel's spills, ptxas -v sm_90: 222 -> 574 bytes
// stored). The row's blocks call it the same number of times: their decisions come from the same row-wide values.
__device__ void row_barrier(Grid& gr) {
    ++gr.gen;
    __syncthreads();
    if (threadIdx.x == 0) {
        __threadfence();
        atomicAdd(&gr.g->arrived, 1u);
        const unsigned target = gr.gen * static_cast<unsigned>(gr.slices);
        while (*static_cast<volatile unsigned*>(&gr.g->arrived) < target) __nanosleep(32);
        __threadfence();
    }
    __syncthreads();
}

// NaN as -inf and -0 as +0: the host chain's reading of a logit.
__device__ __forceinline__ float clean(float x) {
    if (x != x) return -INFINITY;
    return x == 0.f ? 0.f : x;
}

// Order-preserving: a < b (as clean floats) iff key(a) < key(b).
__device__ __forceinline__ uint32_t key_of(float x) {
    const uint32_t b = __float_as_uint(x);
    return (b & 0x80000000u) ? ~b : (b | 0x80000000u);
}

__device__ __forceinline__ float float_of(uint32_t k) {
    return __uint_as_float((k & 0x80000000u) ? (k & 0x7fffffffu) : ~k);
}

// The block-wide maximum or minimum of v (fixed order: warp shuffles, then the warps' results in warp order).
template <bool kMax>
__device__ ull block_extreme(ull v, Shared& sh) {
    auto pick = [](ull a, ull b) { return kMax ? (a > b ? a : b) : (a < b ? a : b); };
    for (int o = 16; o > 0; o >>= 1) v = pick(v, __shfl_xor_sync(kFull, v, o));
    const int warp = static_cast<int>(threadIdx.x) / 32, lane = static_cast<int>(threadIdx.x) % 32;
    if (lane == 0) sh.warp_val[warp] = v;
    __syncthreads();
    if (warp == 0) {
        ull w = sh.warp_val[lane];
        for (int o = 16; o > 0; o >>= 1) w = pick(w, __shfl_xor_sync(kFull, w, o));
        if (lane == 0) sh.result = w;
    }
    __syncthreads();
    const ull r = sh.result;
    __syncthreads();  // warp_val and result free for the next use
    return r;
}

// block_extreme over the whole row: a split row's blocks meet in `slot` (atomicMax, a minimum complemented).
template <bool kMax>
__device__ ull row_extreme(ull v, Shared& sh, Grid& gr, ull* slot) {
    const ull r = block_extreme<kMax>(v, sh);
    if (!gr.split) return r;
    if (threadIdx.x == 0) atomicMax(slot, kMax ? r : ~r);
    row_barrier(gr);
    const ull all = __ldcg(slot);
    return kMax ? all : ~all;
}

// The sum over the row's slices of each block's `mine` (the same in all its threads): the slices before this one's,
// and all of them. A split row's blocks exchange them through the scratch's next counts.
__device__ void row_counts(int mine, Grid& gr, long long& before, long long& all) {
    before = 0;
    all = mine;
    if (!gr.split) return;
    const int use = gr.count_use++;
    if (threadIdx.x == 0) gr.g->counts[use][gr.slice] = mine;
    row_barrier(gr);
    all = 0;
    for (int s = 0; s < gr.slices; ++s) {
        const int c = __ldcg(&gr.g->counts[use][s]);
        if (s < gr.slice) before += c;
        all += c;
    }
}

// A split row's digit histogram (nb bins, this block's in sh.hist) -> the row's, in sh.hist of every block: every block
// adds its nonzero bins, and after the barrier reads the sums. The buffer two uses ahead was last read before this
// barrier by every block, and is next added to after the next one: this block clears its share of it now. Whatever a
// block wrote to the scratch before the call is visible to all after it (the barrier).
__device__ void merge_hist(int nb, Shared& sh, Grid& gr) {
    const int t = static_cast<int>(threadIdx.x);
    const int use = gr.hist_use++;
    ull* all = gr.g->hist[use % 3];
    for (int b = t; b < nb; b += kThreads) {
        if (sh.hist[b] != 0) atomicAdd(&all[b], sh.hist[b]);
    }
    row_barrier(gr);
    for (int b = t; b < nb; b += kThreads) sh.hist[b] = __ldcg(&all[b]);
    ull* ahead = gr.g->hist[(use + 2) % 3];
    for (int b = gr.slice * kThreads + t; b < kMaxBins; b += gr.slices * kThreads) ahead[b] = 0;
    __syncthreads();
}

enum class Weight { Count, T1, Temp };

// One row's view: its (penalized) logits, or the survivors compacted into shared memory (ids ascending), its maximum
// and the fixed-point unit.
struct Row {
    const float* x;
    const int32_t* ids;  // null: x is the whole vocabulary, index = id
    int lo, hi;          // this block's positions in x: its slice of the vocabulary, or all the survivors
    float mx;
    float temp;
    float unit;  // 2^S as a float (exact)

    __device__ __forceinline__ ull weigh(float l, Weight w) const {
        if (w == Weight::Count) return 1;
        // l == mx: exactly one unit whole, also when mx is infinite (where l - mx would be NaN).
        const float e = l == mx ? 1.f : (w == Weight::T1 ? expf(l - mx) : expf((l - mx) / temp));
        return __float2ull_rn(e * unit);
    }
};

// Calls f(i, x[i]) for every i in [row.lo, row.hi), each thread loading kBatch float4 before using any: without that,
// a pass whose body ends in a shared-memory atomic (which may alias row.x, a generic pointer) waits out the L2 latency
// of every load in turn, ~70 us for one block over a 152k vocabulary (the first measurement, docs/PERF.md). Scalar
// loads where x + lo is not 16-byte aligned. The order of the calls is no part of any result (sums, extremes).
constexpr int kBatch = 4;
template <class F>
__device__ __forceinline__ void for_each_value(const Row& row, F f) {
    const int t = static_cast<int>(threadIdx.x);
    const float* x = row.x + row.lo;
    const int len = row.hi - row.lo;
    int done = 0;
    if ((reinterpret_cast<uintptr_t>(x) & 15u) == 0) {
        const auto* x4 = reinterpret_cast<const float4*>(x);
        const int n4 = len / 4;
        int i = t;
        for (; i + (kBatch - 1) * kThreads < n4; i += kBatch * kThreads) {
            float4 v[kBatch];
#pragma unroll
            for (int j = 0; j < kBatch; ++j) v[j] = x4[i + j * kThreads];
#pragma unroll
            for (int j = 0; j < kBatch; ++j) {
                const int at = row.lo + 4 * (i + j * kThreads);
                f(at, v[j].x);
                f(at + 1, v[j].y);
                f(at + 2, v[j].z);
                f(at + 3, v[j].w);
            }
        }
        for (; i < n4; i += kThreads) {
            const float4 v = x4[i];
            const int at = row.lo + 4 * i;
            f(at, v.x);
            f(at + 1, v.y);
            f(at + 2, v.z);
            f(at + 3, v.w);
        }
        done = 4 * n4;
    }
    for (int i = done + t; i < len; i += kThreads) f(row.lo + i, x[i]);
}

// The passes that need id order: warp w owns the positions [lo + w * span, lo + (w + 1) * span) (span a multiple of 32) and reads
// them 32 consecutive values at a time, coalesced, four groups in flight. f(base, mask, v) is called in position order
// for every group, in every lane: mask is the warp's ballot of pred over positions base .. base + 31 (bit l: position
// base + l), v the lane's own value (NaN past the end, where pred is false).
constexpr int kGroups = 4;
template <class Pred, class F>
__device__ __forceinline__ void warp_ballots(const Row& row, Pred pred, F f) {
    const int warp = static_cast<int>(threadIdx.x) / 32, lane = static_cast<int>(threadIdx.x) % 32;
    const int len = row.hi - row.lo;
    const int span = ((len + kWarps - 1) / kWarps + 31) & ~31;
    const int lo = row.lo + min(len, warp * span), hi = min(row.hi, lo + span);
    for (int base = lo; base < hi; base += 32 * kGroups) {
        float v[kGroups];
#pragma unroll
        for (int j = 0; j < kGroups; ++j) {
            const int i = base + 32 * j + lane;
            v[j] = i < hi ? row.x[i] : NAN;
        }
#pragma unroll
        for (int j = 0; j < kGroups; ++j) {
            const bool in = base + 32 * j + lane < hi && pred(v[j]);
            f(base + 32 * j, __ballot_sync(kFull, in), v[j]);
        }
    }
}

// Each warp's `count` (the same in all its lanes) -> the counts of the warps before it, and the sum of all.
__device__ void warp_offsets(int count, int& start, int& total, Shared& sh) {
    const int warp = static_cast<int>(threadIdx.x) / 32, lane = static_cast<int>(threadIdx.x) % 32;
    if (lane == 0) sh.warp_val[warp] = static_cast<ull>(count);
    __syncthreads();
    if (warp == 0) {
        const int mine = static_cast<int>(sh.warp_val[lane]);
        int inclusive = mine;
        for (int o = 1; o < 32; o <<= 1) {
            const int up = __shfl_up_sync(kFull, inclusive, o);
            if (lane >= o) inclusive += up;
        }
        __syncwarp();
        sh.warp_val[lane] = static_cast<ull>(inclusive - mine);
        if (lane == 31) sh.result = static_cast<ull>(inclusive);
    }
    __syncthreads();
    start = static_cast<int>(sh.warp_val[warp]);
    total = static_cast<int>(sh.result);
    __syncthreads();  // warp_val and result free for the next use
}

// The survivors: keys above K, and the first c tokens (by id) with key K; all of K's tokens when all_ties.
struct Prefix {
    uint32_t K;
    bool all_ties;
    long long c;
};

struct Crossing {
    bool found;
    uint32_t key;
    long long index;  // among the tokens with that key, by id
    // Not found yet, but the crossing is among the tokens with keys >= key (a first digit's floor), and they are few
    // (first_crossing's superset_cap).
    bool superset;
};

// The index among the tokens with the crossing's key, from the target, the survivors' sum above that key and the
// weight each of its tokens has: the first whose inclusive running sum reaches the target. Both crossings below use it.
__device__ __forceinline__ long long index_in_key(ull target, ull before, ull each) {
    const ull need = target - before;  // > 0: this key's sum crossed (0 only for a target of 0)
    return static_cast<long long>((need + each - 1) / each - 1);
}

// first_crossing for a short compacted list (at most kShortCap survivors, positions 0 .. n-1 in id order, one a
// thread): no digits, the running sums directly. Position i's place in the chain's order is o_i = (key << 32) | ~id
// (larger first; ids distinct, so no two are equal), its weight w_i the same row.weigh(l, w) as the digit path's, or 0
// when it is not a survivor (a key below p.K, or a tie at p.K past the first p.c by id). Position i's threads sum the
// weights of every o_j >= o_i: S_i, the exact integer running sum through i in the chain's order. The crossing is the first
// position in that order with w_i > 0 and S_i >= target, and it is the one the digit descent finds: a digit whose sum
// m > 0 ends at the S of its last positive-weight token, so the first digit with m > 0 and cum + m >= target is the
// digit of that position, at every level. Then `before` (the survivors' sum above its key), `each` and the index are
// the same integers, computed by the same formula; the total is the same integer sum, so the target is the same; and
// "not found" is in both exactly "total < target". The picks are therefore identical to the digit path's.
constexpr int kShortCap = kShortListCap;
static_assert(kShortCap <= kThreads && 2 * kShortCap <= kMaxBins, "one survivor a thread, two arrays in sh.hist");

// Not inlined: inlined, it doubled the kernel's register spills (ptxas -v, sm_90: 76 -> 154 bytes stored; with a call
// they stay at 74, as before it), which the vocabulary passes would pay.
template <class TargetOf>
__device__ __noinline__ Crossing short_crossing(const Row& row, const Prefix& p, Weight w, TargetOf target_of,
                                                Shared& sh) {
    const int t = static_cast<int>(threadIdx.x);
    const int n = row.hi - row.lo;
    ull* order = sh.hist;  // the digit histograms are not in use here
    ull* weight = sh.hist + kShortCap;
    float l = 0.f;
    uint32_t k = 0;
    if (t < n) {
        l = clean(row.x[row.lo + t]);
        k = key_of(l);
        order[t] = (static_cast<ull>(k) << 32) | (0xffffffffu - static_cast<uint32_t>(row.ids[row.lo + t]));
    }
    __syncthreads();
    // Among the ties at p.K, the first p.c by id: a tie's rank is the ties at positions before it (positions are in
    // id order), an exclusive scan of the tie flags.
    ull rank = 0;
    if (!p.all_ties) {
        ull ties = 0;
        ScanU64(sh.scan).ExclusiveSum(t < n && k == p.K ? 1ull : 0ull, rank, ties);
        __syncthreads();  // the scan's storage free
    }
    ull mine = 0;
    if (t < n) {
        const bool in = k > p.K || (k == p.K && (p.all_ties || rank < static_cast<ull>(p.c)));
        // A tie's weigh(l) is the digit path's weigh(float_of(p.K)): l is clean, and float_of inverts key_of.
        if (in) mine = row.weigh(l, w);
        weight[t] = mine;
    }
    ull start = 0, total = 0;
    ScanU64(sh.scan).ExclusiveSum(mine, start, total);  // the survivors' total (start unused)
    __syncthreads();                                    // weight[] written, the scan's storage free
    const ull target = target_of(total);
    // g consecutive lanes a position (g a power of two, n x g <= kThreads): lane `part` of position i's group sums
    // every g-th position from `part`, and the group adds its lanes' sums; a loop of n / g loads, not n. Integer sums
    // in any order: the same S_i, and the sum above i's key (`before` for the crossing), as one thread's loop.
    int g = 32;
    while (g > 1 && n * g > kThreads) g >>= 1;
    const int i = t / g, part = t % g;
    ull o = 0, s = 0, above = 0;
    if (i < n) {
        o = order[i];
        const uint32_t ki = static_cast<uint32_t>(o >> 32);
        for (int j = part; j < n; j += g) {
            const ull oj = order[j], wj = weight[j];
            s += oj >= o ? wj : 0;
            above += static_cast<uint32_t>(oj >> 32) > ki ? wj : 0;
        }
    }
    for (int off = g / 2; off > 0; off >>= 1) {  // every lane of the warp: groups are aligned within it
        s += __shfl_xor_sync(kFull, s, off);
        above += __shfl_xor_sync(kFull, above, off);
    }
    const bool lead = i < n && part == 0;
    ull first = 0;  // the crossing's o (every o > 0: ~id >= 2^31); 0: none here
    if (lead && weight[i] > 0 && s >= target) first = o;
    first = block_extreme<true>(first, sh);  // the earliest in the chain's order
    if (first == 0) return Crossing{false, 0, 0};
    const uint32_t key = static_cast<uint32_t>(first >> 32);
    if (lead && o == first) sh.result = above;
    __syncthreads();
    const ull before = sh.result;
    __syncthreads();  // result and hist free for the next use
    return Crossing{true, key, index_in_key(target, before, row.weigh(float_of(key), w))};
}

// hist[bin] += w, exactly, as two 32-bit shared atomics: the hardware adds 32-bit words in shared memory natively, but
// a 64-bit shared atomic add is a compare-and-swap loop that same-address lanes retry one after another (at B = 16 the
// full-vocabulary pick's time went to those stalls: docs/PERF.md). The low word's add returns the old value, so the
// one add that wraps it knows and carries 1 into the high word; the two words then hold the exact 64-bit sum, in any
// order of the adds. Readers read the whole after a barrier.
__device__ __forceinline__ void shared_add(ull* hist, unsigned bin, ull w) {
    unsigned* word = reinterpret_cast<unsigned*>(hist + bin);  // little-endian: word[0] low, word[1] high
    const unsigned lo = static_cast<unsigned>(w);
    unsigned hi = static_cast<unsigned>(w >> 32);
    if (lo != 0) {
        const unsigned old = atomicAdd(&word[0], lo);
        hi += old + lo < old ? 1u : 0u;
    }
    if (hi != 0) atomicAdd(&word[1], hi);
}

// hist[bin] += 1: a count, below 2^32 in every bin (a row has fewer tokens), so the low word alone, with the native
// increment whose lanes of one address the hardware adds at once.
__device__ __forceinline__ void shared_count(ull* hist, unsigned bin) {
    atomicAdd(reinterpret_cast<unsigned*>(hist + bin), 1u);
}

// The first survivor, in the chain's order, where the running sum of `w` reaches the target that `target_of` makes of
// the survivors' total. Not found when the total falls short of the target (rounding at an end of the range).
// superset_cap (Weight::Count over a prefix that keeps every token, i.e. top-k): when the tokens whose first digit is
// at or above the crossing's are at most that many, stop after the first level and return them as a superset (the
// caller compacts them and finds the crossing among them, without the vocabulary passes and barriers of two more
// levels). first_ready: the first level's histogram is in sh.hist already, the row's (first_pass counted it).
template <class TargetOf>
__device__ Crossing first_crossing(const Row& row, const Prefix& p, Weight w, TargetOf target_of, Shared& sh, Grid& gr,
                                   long long superset_cap = 0, bool first_ready = false) {
    // A short compacted list (the same in every block of the row: it is no longer split) skips the digit levels.
    if (row.ids != nullptr && !gr.split && row.hi - row.lo <= gr.short_cap)
        return short_crossing(row, p, w, target_of, sh);
    const int t = static_cast<int>(threadIdx.x);
    uint32_t prefix = 0;
    ull before = 0;  // the survivors' sum above the current prefix
    ull target = 0;
    const ull tie_weight = p.all_ties ? 0 : static_cast<ull>(p.c) * row.weigh(float_of(p.K), w);
    for (int level = 0; level < kLevels; ++level) {
        const int bits = level_bits(level), shift = level_shift(level), nb = 1 << bits, high = shift + bits;
        if (level > 0 || !first_ready) {
            for (int b = t; b < nb; b += kThreads) sh.hist[b] = 0;
            __syncthreads();
            for_each_value(row, [&](int, float raw) {
                const float l = clean(raw);
                const uint32_t k = key_of(l);
                if (k < p.K || (k == p.K && !p.all_ties)) return;
                if (level > 0 && (k >> high) != prefix) return;
                const unsigned bin = (k >> shift) & (nb - 1);
                if (w == Weight::Count) {
                    shared_count(sh.hist, bin);
                } else {
                    shared_add(sh.hist, bin, row.weigh(l, w));
                }
            });
            // The ties at K are the row's: one block of a split row adds them.
            if (t == 0 && (!gr.split || gr.slice == 0) && tie_weight > 0 && (level == 0 || (p.K >> high) == prefix)) {
                shared_add(sh.hist, (p.K >> shift) & (nb - 1), tie_weight);
            }
            __syncthreads();
            if (gr.split) merge_hist(nb, sh, gr);
        }
        // Descending digits: thread t holds positions t*per .. t*per+per-1, position q is digit nb-1-q.
        const int per = nb / kThreads;
        ull sum = 0;
        for (int q = 0; q < per; ++q) sum += sh.hist[nb - 1 - (t * per + q)];
        ull start = 0, total = 0;
        ScanU64(sh.scan).ExclusiveSum(sum, start, total);
        if (level == 0) target = target_of(total);
        ull cum = before + start;
        ull pos = ULLONG_MAX;
        for (int q = 0; q < per; ++q) {
            const ull m = sh.hist[nb - 1 - (t * per + q)];
            if (m > 0 && cum + m >= target) {
                pos = static_cast<ull>(t * per + q);
                break;
            }
            cum += m;
        }
        __syncthreads();  // hist and the scan's storage read by all
        const ull first = block_extreme<false>(pos, sh);
        if (first == ULLONG_MAX) return Crossing{false, 0, 0};
        if (pos == first) sh.result = cum;  // the sum before the crossing digit
        __syncthreads();
        before = sh.result;
        const uint32_t digit = static_cast<uint32_t>(nb - 1) - static_cast<uint32_t>(first);
        // Counts: the tokens at or above the crossing digit are `before` and the digit's own.
        const bool few = level == 0 && before + sh.hist[digit] <= static_cast<ull>(superset_cap);
        __syncthreads();
        if (few) return Crossing{false, digit << shift, 0, true};
        prefix = level == 0 ? digit : (prefix << bits) | digit;
    }
    // The key is exact; its tokens weigh the same: the crossing is the index-th of them.
    return Crossing{true, prefix, index_in_key(target, before, row.weigh(float_of(prefix), w))};
}

// Writes to *out the id of the index-th token (by id, clamped to the last) whose key is `key`. In a split row the block
// whose slice holds it writes; otherwise block 0.
__device__ void write_nth_with_key(const Row& row, uint32_t key, long long index, Shared& sh, Grid& gr, int32_t* out) {
    const int lane = static_cast<int>(threadIdx.x) % 32;
    auto match = [key](float v) { return key_of(clean(v)) == key; };
    int count = 0;
    warp_ballots(row, match, [&](int, unsigned m, float) { count += __popc(m); });
    int start = 0, total = 0;
    warp_offsets(count, start, total, sh);
    const bool writes = gr.split || gr.slice == 0;
    long long before = 0, all = 0;
    row_counts(total, gr, before, all);
    const long long want = (index < all ? index : all - 1) - before;  // among this block's matches
    if (writes && want >= start && want < start + count) {            // this warp holds it (uniform in the warp)
        long long left = want - start;                                // matches still to pass; -1 once found
        warp_ballots(row, match, [&](int base, unsigned m, float) {
            if (left < 0) return;
            if (left < __popc(m)) {
                for (long long j = 0; j < left; ++j) m &= m - 1;  // drop the lowest `left` set bits
                const int i = base + __ffs(static_cast<int>(m)) - 1;
                if (lane == 0) *out = row.ids != nullptr ? row.ids[i] : i;
                left = -1;
            } else {
                left -= __popc(m);
            }
        });
    }
}

// Keeps, of a list compacted already, the tokens with keys >= K, in place and in id order: the list a compaction of
// the vocabulary at K would have made (a compaction to a looser superset, first_crossing's, is followed by this one).
__device__ void shrink(Row& row, uint32_t K, Shared& sh) {
    static_assert(kListCap <= 2 * kThreads, "two list positions a thread");
    const int t = static_cast<int>(threadIdx.x);
    const int n = row.hi - row.lo;
    float x[2];
    int32_t id[2];
    bool in[2];
    for (int j = 0; j < 2; ++j) {  // thread t holds positions 2t and 2t + 1: the scan below keeps their order
        const int i = row.lo + 2 * t + j;
        in[j] = 2 * t + j < n;
        if (in[j]) {
            x[j] = row.x[i];
            id[j] = row.ids[i];
            in[j] = key_of(x[j]) >= K;  // list values are clean already
        }
    }
    ull at = 0, total = 0;
    ScanU64(sh.scan).ExclusiveSum(static_cast<ull>(in[0]) + static_cast<ull>(in[1]), at, total);
    __syncthreads();  // every position read before any is written
    for (int j = 0; j < 2; ++j) {
        if (!in[j]) continue;
        sh.list_x[at] = x[j];
        sh.list_id[at] = id[j];
        ++at;
    }
    __syncthreads();
    row.x = sh.list_x;
    row.ids = sh.list_id;
    row.lo = 0;
    row.hi = static_cast<int>(total);
}

// Copies the survivors (keys >= p.K: a superset of the prefix, which only shrinks from here) into shared memory in id
// order, when there are at most kListCap of them; then every later pass reads those instead of the vocabulary. A list
// compacted already is shrunk to them. A split row needs one barrier: each block takes its place in the row's list by
// an atomic (the slices in any order), writes its survivors there when they fit, and after the barrier every block
// copies the slices back in slice order (id order), or, past kListCap in all, goes on over the vocabulary.
__device__ void compact(Row& row, const Prefix& p, Shared& sh, Grid& gr) {
    if (row.ids != nullptr) {
        shrink(row, p.K, sh);
        return;
    }
    const int t = static_cast<int>(threadIdx.x), lane = t % 32;
    const uint32_t K = p.K;
    auto keep = [K](float v) { return key_of(clean(v)) >= K; };
    int count = 0;
    warp_ballots(row, keep, [&](int, unsigned m, float) { count += __popc(m); });
    int start = 0, total = 0;
    warp_offsets(count, start, total, sh);
    if (!gr.split && total > kListCap) return;
    int base = 0, use = 0;
    if (gr.split) {
        use = gr.list_use++;
        if (t == 0) {
            base = static_cast<int>(atomicAdd(&gr.g->list_n[use], static_cast<unsigned>(total)));
            gr.g->list_at[use][gr.slice] = base;
            gr.g->list_count[use][gr.slice] = total;
            sh.result = static_cast<ull>(base);
        }
        __syncthreads();
        base = static_cast<int>(sh.result);
        __syncthreads();
    }
    // Past the cap the row's total is past it too (this block's place and count are part of it): nothing is kept.
    if (base + total <= kListCap) {
        float* to_x = gr.split ? gr.list->x : sh.list_x;
        int32_t* to_id = gr.split ? gr.list->id : sh.list_id;
        int at = base + start;
        warp_ballots(row, keep, [&](int b, unsigned m, float v) {
            if ((m >> lane) & 1u) {
                const int slot = at + __popc(m & ((1u << lane) - 1u));
                to_x[slot] = clean(v);
                to_id[slot] = b + lane;
            }
            at += __popc(m);
        });
    }
    int all = total;
    if (gr.split) {
        row_barrier(gr);
        all = static_cast<int>(__ldcg(&gr.g->list_n[use]));
        if (all > kListCap) return;
        // Each slice's place in the row's list and in id order (a scan of the counts in slice order), in the
        // histogram's shared memory (not in use between crossings); warp 0, two slices a lane.
        int* seg_at = reinterpret_cast<int*>(sh.hist);
        int* seg_off = seg_at + kMaxSlices;
        static_assert(2 * kMaxSlices * sizeof(int) <= sizeof(sh.hist), "the slices' places fit in the histogram");
        if (t < 32) {
            int c[2] = {0, 0}, a[2] = {0, 0};
            for (int j = 0; j < 2; ++j) {
                const int s = 2 * t + j;
                if (s < gr.slices) {
                    c[j] = __ldcg(&gr.g->list_count[use][s]);
                    a[j] = __ldcg(&gr.g->list_at[use][s]);
                }
            }
            int inclusive = c[0] + c[1];
            for (int o = 1; o < 32; o <<= 1) {
                const int up = __shfl_up_sync(kFull, inclusive, o);
                if (lane >= o) inclusive += up;
            }
            const int before = inclusive - c[0] - c[1];
            seg_at[2 * t] = a[0];
            seg_at[2 * t + 1] = a[1];
            seg_off[2 * t] = before;
            seg_off[2 * t + 1] = before + c[0];
        }
        __syncthreads();
        for (int i = t; i < all; i += kThreads) {
            // The slice holding position i: the last whose offset is <= i (an empty slice's next one starts at its
            // offset, so it is never the last such).
            int s = 0;
            for (int j = 1; j < gr.slices; ++j) s += seg_off[j] <= i ? 1 : 0;
            const int from = seg_at[s] + (i - seg_off[s]);
            sh.list_x[i] = __ldcg(&gr.list->x[from]);
            sh.list_id[i] = __ldcg(&gr.list->id[from]);
        }
        gr.split = false;
    }
    __syncthreads();
    row.x = sh.list_x;
    row.ids = sh.list_id;
    row.lo = 0;
    row.hi = all;
}

// The row's extremes: the largest key with its lowest id (greedy's pick), and the smallest key (the last token in the
// order). With `counts`, the same pass also counts every token by its key's first digit into sh.hist, the first level
// of top-k's crossing (a count needs no maximum, and top-k's prefix keeps every token), merged with the extremes
// through one barrier.
__device__ void first_pass(const Row& row, bool counts, Shared& sh, Grid& gr, ull& best_out, ull& least_out) {
    const int t = static_cast<int>(threadIdx.x);
    if (counts) {
        for (int b = t; b < kMaxBins; b += kThreads) sh.hist[b] = 0;
        __syncthreads();
    }
    ull best = 0, least = ULLONG_MAX;
    for_each_value(row, [&](int i, float raw) {
        const uint32_t k = key_of(clean(raw));
        const ull packed = (static_cast<ull>(k) << 32) | (0xffffffffu - static_cast<uint32_t>(i));
        best = packed > best ? packed : best;
        least = k < least ? k : least;
        if (counts) shared_count(sh.hist, k >> level_shift(0));
    });
    best = block_extreme<true>(best, sh);  // its barriers also order the histogram's atomics before the merge
    least = block_extreme<false>(least, sh);
    if (gr.split) {
        if (t == 0) {
            atomicMax(&gr.g->best, best);
            atomicMax(&gr.g->least, ~least);
        }
        if (counts) {
            merge_hist(1 << level_bits(0), sh, gr);  // its barrier is the extremes' too
        } else {
            row_barrier(gr);
        }
        best = __ldcg(&gr.g->best);
        least = ~__ldcg(&gr.g->least);
    }
    best_out = best;
    least_out = least;
}

// The launch's rows: uploaded (`uploaded` set), or, for a few rows, in the launch's parameters themselves (no copy
// to enqueue before it).
struct RowsArg {
    const SampleRow* uploaded;
    SampleRow inline_rows[kInlineRows];
};
static_assert(sizeof(RowsArg) + 64 <= 4096, "the kernel's parameters within the 4 KiB every launch takes");

// The chain for one row (this block's slice of it while it is split).
__device__ __forceinline__ void sample_row(const SampleRow& p, const int32_t* __restrict__ window_ids, int n,
                                           Shared& sh, Grid& gr) {
    const int t = static_cast<int>(threadIdx.x);
    const int slices = gr.slices;
    // Slices of a multiple of 4 values: float4 loads from every slice's start.
    const int per = ((n + slices - 1) / slices + 3) & ~3;
    const int lo = min(n, gr.slice * per), hi = min(n, lo + per);
    Row row{p.logits, nullptr, lo, hi, 0.f, p.temperature, 0.f};

    // The penalty on a copy (the logits stay as they are); the window's ids are distinct, so each is changed once. A
    // block copies and changes its own slice, the only part of the copy it reads.
    if (p.work != nullptr) {
        for (int i = lo + t; i < hi; i += kThreads) p.work[i] = p.logits[i];
        __syncthreads();
        const float pen = p.repeat_penalty;
        for (int j = t; j < p.n_window; j += kThreads) {
            const int id = window_ids[p.window_offset + j];
            if (id < lo || id >= hi) continue;
            const float l = p.work[id];
            p.work[id] = l > 0.f ? l / pen : l * pen;
        }
        __syncthreads();
        row.x = p.work;
    }

    // A top-k that can be compacted (the engine's default 40) takes a short way: its first level counted in the
    // extremes' pass, and, when the tokens at or above the crossing's first digit fit in the list, those compacted
    // right away and the crossing found among them. short_cap 0 (a test's reference) keeps the long way: every
    // level over the vocabulary, as every other crossing runs.
    const bool short_top_k =
        gr.short_cap > 0 && p.temperature > 0.f && p.top_k > 0 && p.top_k < n && p.top_k <= kListCap;
    ull best = 0, least = 0;
    first_pass(row, short_top_k, sh, gr, best, least);
    if (!(p.temperature > 0.f)) {
        if (t == 0 && gr.slice == 0) {
            *p.out = static_cast<int32_t>(0xffffffffu - static_cast<uint32_t>(best & 0xffffffffu));
        }
        return;
    }
    const uint32_t max_key = static_cast<uint32_t>(best >> 32);
    row.mx = float_of(max_key);
    // 2^S with n * 2^S <= 2^62: a sum of n weights, each at most 2^S, cannot overflow.
    const int log2n = n > 1 ? 32 - __clz(n - 1) : 0;
    row.unit = __uint_as_float(static_cast<uint32_t>(127 + 62 - log2n) << 23);

    Prefix keep{static_cast<uint32_t>(least), true, 0};
    if (p.top_k > 0 && p.top_k < n) {
        const ull k = static_cast<ull>(p.top_k);
        auto target = [k](ull) { return k; };
        Crossing c = first_crossing(row, keep, Weight::Count, target, sh, gr, short_top_k ? kListCap : 0, short_top_k);
        if (c.superset) {
            // At most kListCap tokens: the compaction cannot fail, and the crossing among them is the row's (the
            // running counts in the chain's order are the same up to it). Should it fail, the crossing runs over
            // the vocabulary again from the start.
            compact(row, Prefix{c.key, true, 0}, sh, gr);
            c = first_crossing(row, keep, Weight::Count, target, sh, gr);
        }
        if (c.found) keep = Prefix{c.key, false, c.index + 1};
        if (p.top_k <= kListCap) compact(row, keep, sh, gr);
    }
    if (p.top_p < 1.f) {
        const double top_p = p.top_p;
        const Crossing c = first_crossing(
            row, keep, Weight::T1,
            [top_p](ull total) { return static_cast<ull>(ceil(top_p * static_cast<double>(total))); }, sh, gr);
        if (c.found) keep = Prefix{c.key, false, c.index + 1};
        compact(row, keep, sh, gr);
    }
    if (p.min_p > 0.f) {
        // p_i / p_max = e^(l_i - max) falls with the key: the survivors above it are those at or above the smallest
        // key whose ratio is still >= min_p (all of its tokens: they share the ratio). The top token always passes.
        ull lowest = ULLONG_MAX;
        for_each_value(row, [&](int, float raw) {
            const float l = clean(raw);
            const uint32_t k = key_of(l);
            if (k < keep.K || k >= lowest) return;
            if ((l == row.mx ? 1.f : expf(l - row.mx)) >= p.min_p) lowest = k;
        });
        lowest = row_extreme<false>(lowest, sh, gr, gr.split ? &gr.g->lowest : nullptr);
        if (lowest != ULLONG_MAX && static_cast<uint32_t>(lowest) > keep.K) {
            keep = Prefix{static_cast<uint32_t>(lowest), true, 0};
        }
    }
    const double u = p.u;
    const Crossing c = first_crossing(
        row, keep, Weight::Temp, [u](ull total) { return static_cast<ull>(floor(u * static_cast<double>(total))) + 1; },
        sh, gr);
    // Not found: u within rounding of 1, the last survivor.
    const uint32_t key = c.found ? c.key : keep.K;
    const long long index = c.found ? c.index : keep.all_ties ? LLONG_MAX : keep.c - 1;
    write_nth_with_key(row, key, index, sh, gr, p.out);
}

// A split row's blocks count themselves out; the last one (every other block is past its last use of the scratch)
// zeroes the row's head for the next launch: the counters, the extremes and the three histograms (the lists need no
// clearing: each use writes before it reads).
__device__ void leave_row(SampleRowScratch* g, int slices, Shared& sh) {
    __syncthreads();
    if (threadIdx.x == 0) {
        __threadfence();
        const unsigned before = atomicAdd(&g->exited, 1u);
        __threadfence();
        sh.result = before + 1 == static_cast<unsigned>(slices) ? 1 : 0;
    }
    __syncthreads();
    if (sh.result == 0) return;
    constexpr int kWords = static_cast<int>(sizeof(SampleRowScratch) / sizeof(ull));
    static_assert(sizeof(SampleRowScratch) % sizeof(ull) == 0, "the head is cleared in 8-byte words");
    ull* words = reinterpret_cast<ull*>(g);
    for (int i = static_cast<int>(threadIdx.x); i < kWords; i += kThreads) words[i] = 0;
}

__global__ void __launch_bounds__(kThreads)
    sample_rows_kernel(const RowsArg rows, const int32_t* __restrict__ window_ids, int n, SampleRowSpace* space,
                       int slices, int short_cap) {
    __shared__ Shared sh;
    const int r = static_cast<int>(blockIdx.x);
    SampleRow p;  // a copy either way (the address of a launch parameter is not taken)
    if (rows.uploaded != nullptr) {
        p = rows.uploaded[r];
    } else {
        p = rows.inline_rows[r];
    }
    Grid gr{slices > 1 ? &space[r].head : nullptr,
            slices > 1 ? &space[r].list : nullptr,
            static_cast<int>(blockIdx.y),
            slices,
            slices > 1,
            0u,
            0,
            0,
            0,
            min(short_cap, kShortCap)};
    sample_row(p, window_ids, n, sh, gr);
    if (slices > 1) leave_row(&space[r].head, slices, sh);
}

cudaError_t launch(const RowsArg& rows, const int32_t* window_ids, int n_rows, int64_t n, void* scratch, int slices,
                   cudaStream_t s, int short_cap) {
    const dim3 grid(static_cast<unsigned>(n_rows), static_cast<unsigned>(slices));
    sample_rows_kernel<<<grid, kThreads, 0, s>>>(rows, window_ids, static_cast<int>(n),
                                                 static_cast<SampleRowSpace*>(scratch), slices, short_cap);
    return cudaGetLastError();
}

}  // namespace

size_t sample_scratch_bytes(int n_rows) { return static_cast<size_t>(n_rows) * sizeof(SampleRowSpace); }

int sample_block_capacity() {
    int per_sm = 0;
    if (cudaOccupancyMaxActiveBlocksPerMultiprocessor(&per_sm, sample_rows_kernel, kThreads, 0) != cudaSuccess) {
        return 0;  // no split rows: one block a row needs no residency
    }
    return ::orcd::device::sm_count() * per_sm;
}

int sample_slices(int n_rows, int64_t n, int capacity) {
    const int64_t slice_min = ::orcd::cuda::tuning::sample_slice_min(kSliceMin);
    const int64_t by_vocab = (n + slice_min - 1) / slice_min;
    const int64_t fits = n_rows > 0 ? (capacity / 2) / n_rows : 1;
    return static_cast<int>(std::max<int64_t>(1, std::min<int64_t>({by_vocab, fits, kMaxSlices})));
}

cudaError_t launch_sample_rows(const SampleRow* rows, const int32_t* window_ids, int n_rows, int64_t n, void* scratch,
                               int slices, cudaStream_t s, int short_cap) {
    RowsArg arg{};
    arg.uploaded = rows;
    return launch(arg, window_ids, n_rows, n, scratch, slices, s, short_cap);
}

cudaError_t launch_sample_rows_inline(const SampleRow* host_rows, const int32_t* window_ids, int n_rows, int64_t n,
                                      void* scratch, int slices, cudaStream_t s, int short_cap) {
    if (n_rows > kInlineRows) return cudaErrorInvalidValue;
    RowsArg arg{};
    arg.uploaded = nullptr;
    std::copy(host_rows, host_rows + n_rows, arg.inline_rows);
    return launch(arg, window_ids, n_rows, n, scratch, slices, s, short_cap);
}

}  // namespace orcd::backend::cuda::detail
