#pragma once
// The paged-KV block manager: which pool pages each running sequence's KV lives in, whether a request can be admitted
// now, which sequence to preempt when the pool runs dry, and automatic prefix caching of complete pages.
//
// A scheduler drives it, one step at a time, from one thread (it is not thread-safe):
//   admit(seq, prompt, max_new)   the prompt's pages: cached prefix pages reused, the rest allocated; returns how many
//                                 leading prompt tokens already have their KV (the prefill starts there)
//   append(seq, tokens)           room for more positions (the next decode token); false when no page is left
//   commit(seq, n)                the KV of positions [0, n) is written: complete pages become reusable by others
//   finish(seq)                   finished or cancelled: every page reference dropped at once
//   preempt_newest()              frees the most recently admitted sequence, whose tokens the scheduler re-queues
// Positions map to pages as position p -> page_table(seq)[p / page_size], slot p % page_size. Shared (cached) pages
// are only ever read: a sequence reuses complete pages strictly before the last prompt token, and writes only after.
#include <cstdint>
#include <optional>
#include <span>
#include <unordered_map>
#include <vector>

#include "kvcache/page_pool.h"

namespace orcd::kvcache {

using SeqId = uint64_t;

struct BlockManagerConfig {
    uint32_t num_pages = 0;
    uint32_t page_size = 16;     // positions per page
    bool prefix_caching = true;  // false: no page is ever published or looked up
};

// How much of a request's future a new admission must find room for now.
enum class AdmitPolicy {
    PromptOnly,  // pages for the prompt; decode pages come later, by preemption if need be (vLLM's default)
    Reserve,     // pages for prompt + max_new_tokens set aside: an admitted request is never preempted for lack of room
};

struct Admitted {
    uint32_t cached_tokens = 0;  // leading prompt tokens whose KV came from the prefix cache
};

struct Preempted {
    SeqId seq = 0;
    std::vector<Token> tokens;   // prompt + generated so far: the prompt to re-admit it with
    uint32_t remaining_new = 0;  // max_new_tokens still to generate
};

struct BlockStats {
    uint32_t pages_total = 0;
    uint32_t pages_used = 0;       // referenced by at least one running sequence
    uint32_t pages_free = 0;       // never cached or evicted
    uint32_t pages_cached = 0;     // holding published content (used or evictable)
    uint32_t pages_evictable = 0;  // cached and unreferenced
    uint32_t pages_reserved = 0;   // promised to running sequences under AdmitPolicy::Reserve, not yet taken
    uint32_t sequences = 0;
    uint64_t prefix_queried_tokens = 0;  // prompt tokens looked up at admission
    uint64_t prefix_hit_tokens = 0;      // of those, served from the cache
    uint64_t preemptions = 0;
    double prefix_hit_rate() const {
        return prefix_queried_tokens == 0
                   ? 0.0
                   : static_cast<double>(prefix_hit_tokens) / static_cast<double>(prefix_queried_tokens);
    }
};

class BlockManager {
public:
    explicit BlockManager(BlockManagerConfig config);

    const BlockManagerConfig& config() const { return config_; }
    uint32_t pages_for(uint64_t tokens) const;

    // Throws orcd::Error(InvalidArgument) naming the limit when prompt + max_new_tokens could never fit the whole
    // pool, however empty; such a request must be refused, not queued.
    void check_request(uint64_t prompt_tokens, uint64_t max_new_tokens) const;
    // Whether admit() would succeed now (check_request's error is thrown, not answered false).
    bool can_admit(std::span<const Token> prompt, uint32_t max_new_tokens, AdmitPolicy policy) const;
    // Admits a new sequence, or returns nullopt (and changes nothing) when the pool has no room for it now: the
    // request waits. Throws for an empty prompt, a duplicate id, or a request check_request refuses.
    std::optional<Admitted> admit(SeqId seq, std::span<const Token> prompt, uint32_t max_new_tokens,
                                  AdmitPolicy policy = AdmitPolicy::PromptOnly);
    // Appends tokens to the sequence, taking pages as positions cross page boundaries. Returns false, changing
    // nothing, when the pages are not available (the caller preempts, see append_or_preempt). Throws when the
    // sequence would exceed the prompt + max_new_tokens it was admitted with.
    bool append(SeqId seq, std::span<const Token> tokens);
    // append(), preempting the newest running sequence while it fails. Returns those preempted, in order; when `seq`
    // itself was the newest it is among them and is no longer running.
    std::vector<Preempted> append_or_preempt(SeqId seq, std::span<const Token> tokens);
    // Records that the KV of positions [0, computed) is written; complete pages among them are published to the
    // prefix cache. `computed` never decreases and is at most the sequence's length.
    void commit(SeqId seq, uint32_t computed);
    // Drops the sequence and every page reference it holds (finish, cancel, client gone).
    void finish(SeqId seq);
    // Frees the most recently admitted running sequence; nullopt when none runs.
    std::optional<Preempted> preempt_newest();

    bool contains(SeqId seq) const { return seqs_.count(seq) != 0; }
    std::span<const PageId> page_table(SeqId seq) const;
    uint32_t length(SeqId seq) const;    // tokens (positions) in the sequence
    uint32_t computed(SeqId seq) const;  // positions whose KV is written
    BlockStats stats() const;

    // The pool's invariants plus: each page's refcount equals its occurrences across page tables, a page that is not
    // cached appears in at most one page table, every table covers its sequence's length, reservations add up.
    // Throws orcd::Error(Internal). For tests: O(pages + positions).
    void check_invariants() const;
    const PagePool& pool() const { return pool_; }

private:
    struct Sequence {
        std::vector<Token> tokens;
        std::vector<PageId> pages;
        std::vector<PageKey> keys;  // chain keys of the leading complete, committed pages
        uint32_t computed = 0;
        uint32_t max_length = 0;  // prompt + max_new_tokens
        uint32_t reserved = 0;    // pages set aside for this sequence, not yet taken
        uint64_t order = 0;       // admission order: the largest is the newest
    };
    struct PrefixHits {
        std::vector<PageId> pages;
        std::vector<PageKey> keys;
        uint32_t evictable = 0;  // hits that are currently unreferenced (retaining them uses available pages)
    };

    Sequence& get(SeqId seq, const char* what);
    const Sequence& get(SeqId seq, const char* what) const;
    PrefixHits find_prefix(std::span<const Token> prompt) const;
    bool fits_now(const PrefixHits& hits, uint64_t prompt_tokens, uint32_t max_new_tokens, AdmitPolicy policy) const;
    uint32_t unreserved_available() const { return pool_.available() - reserved_; }
    void release_pages(Sequence& s);

    BlockManagerConfig config_;
    PagePool pool_;
    std::unordered_map<SeqId, Sequence> seqs_;
    uint32_t reserved_ = 0;
    uint64_t next_order_ = 0;
    uint64_t queried_tokens_ = 0;
    uint64_t hit_tokens_ = 0;
    uint64_t preemptions_ = 0;
};

}  // namespace orcd::kvcache
