#pragma once
// The pool of fixed-size KV pages and the prefix cache over it, host-side bookkeeping only: a page is an index into a
// pool of device (or host) memory that a backend owns; nothing here touches that memory.
//
// Every page is in exactly one of three states:
//   free        — in the free list, content meaningless, not in the cache;
//   referenced  — held by one or more sequences' page tables (refcount > 0), cached or not;
//   evictable   — cached (its content is published under a key) but held by no sequence; kept in least-recently-used
//                 order and reused by a later sequence whose prompt has the same content, or evicted when a page is
//                 needed and the free list is empty.
// A page is cached when its KV for page_size positions is complete; its key chains the previous page's key, the page's
// index in the sequence and its token ids, so equal keys mean an equal token prefix up to and including this page.
// Lookups also compare the stored tokens and parent key, so a 64-bit hash collision costs a miss, never a wrong page.
#include <cstdint>
#include <optional>
#include <span>
#include <unordered_map>
#include <vector>

namespace orcd::kvcache {

using PageId = uint32_t;
using Token = int32_t;
using PageKey = uint64_t;

// The key of the page that holds positions [index * page_size, (index + 1) * page_size), given the key of the page
// before it (kRootKey for the first page) and the page's token ids.
inline constexpr PageKey kRootKey = 0x6b76636163686531ull;  // an arbitrary non-zero constant
PageKey chain_key(PageKey parent, uint32_t index, std::span<const Token> tokens);

class PagePool {
public:
    PagePool(uint32_t num_pages, uint32_t page_size);

    uint32_t num_pages() const { return num_pages_; }
    uint32_t page_size() const { return page_size_; }
    // Pages a new allocation can take: the free ones plus the evictable cached ones.
    uint32_t available() const { return static_cast<uint32_t>(free_.size()) + evictable_; }
    uint32_t free_pages() const { return static_cast<uint32_t>(free_.size()); }
    uint32_t evictable_pages() const { return evictable_; }
    uint32_t cached_pages() const { return static_cast<uint32_t>(by_key_.size()); }
    uint32_t referenced_pages() const { return num_pages_ - available(); }
    uint32_t refcount(PageId p) const { return refs_[p]; }
    bool is_cached(PageId p) const { return cached_[p] != 0; }

    // Takes a page with refcount 1: a free one if any, else the least recently released evictable one (dropping it
    // from the cache). The caller checks available() > 0 first; an empty pool is an internal error.
    PageId allocate();
    // Adds a reference to a cached page found by lookup(); an evictable page leaves the LRU list.
    void retain(PageId p);
    // Drops one reference; at zero a cached page becomes evictable (most recently used), any other page free.
    void release(PageId p);

    // The cached page holding exactly `tokens` as page `index` after `parent`, if any.
    std::optional<PageId> lookup(PageKey key, PageKey parent, uint32_t index, std::span<const Token> tokens) const;
    // Publishes a referenced page's complete content under `key`. Returns false (and leaves the page private) when
    // another page already holds that key: both stay valid, only one is found by later lookups.
    bool publish(PageId p, PageKey key, PageKey parent, uint32_t index, std::span<const Token> tokens);

    // Checks the three-state invariant and the cache index; throws orcd::Error(Internal) naming the first violation.
    // For tests and debug builds: O(pages).
    void check_invariants() const;

private:
    void lru_push_back(PageId p);
    void lru_unlink(PageId p);
    void uncache(PageId p);
    bool same_content(PageId p, PageKey parent, uint32_t index, std::span<const Token> tokens) const;

    uint32_t num_pages_;
    uint32_t page_size_;
    std::vector<PageId> free_;  // a stack: the most recently freed page is reused first
    std::vector<uint32_t> refs_;
    std::vector<uint8_t> cached_;
    std::vector<PageKey> key_;     // valid where cached_
    std::vector<PageKey> parent_;  // valid where cached_
    std::vector<uint32_t> index_;  // valid where cached_
    std::vector<Token> tokens_;    // page_size tokens per page, valid where cached_
    // The evictable pages as an intrusive doubly linked list over page ids; num_pages_ is the sentinel.
    std::vector<PageId> prev_, next_;
    uint32_t evictable_ = 0;
    std::unordered_map<PageKey, PageId> by_key_;
};

}  // namespace orcd::kvcache
