#include "kvcache/page_pool.h"

#include <fmt/format.h>

#include <algorithm>
#include <limits>

#include "common/error.h"

namespace orcd::kvcache {

namespace {

// splitmix64's finalizer: a bijective 64-bit mix with full avalanche, cheap enough to run once per token.
uint64_t mix(uint64_t x) {
    x += 0x9e3779b97f4a7c15ull;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

[[noreturn]] void broken(const std::string& what) {
    throw Error(ErrorCode::Internal, "KV page pool invariant violated: " + what);
}

}  // namespace

PageKey chain_key(PageKey parent, uint32_t index, std::span<const Token> tokens) {
    uint64_t h = mix(parent ^ mix(index));
    for (const Token t : tokens) h = mix(h ^ static_cast<uint32_t>(t));
    return mix(h ^ tokens.size());
}

PagePool::PagePool(uint32_t num_pages, uint32_t page_size)
    : num_pages_(num_pages),
      page_size_(page_size),
      refs_(num_pages, 0),
      cached_(num_pages, 0),
      key_(num_pages, 0),
      parent_(num_pages, 0),
      index_(num_pages, 0),
      prev_(num_pages + 1, num_pages),
      next_(num_pages + 1, num_pages) {
    if (num_pages == 0) throw Error(ErrorCode::InvalidArgument, "KV page pool: expected at least 1 page, found 0");
    if (page_size == 0) {
        throw Error(ErrorCode::InvalidArgument, "KV page pool: expected a page size of at least 1 position, found 0");
    }
    // Positions are 32-bit everywhere downstream (page tables, attention kernels): the pool must be addressable so.
    const uint64_t positions = static_cast<uint64_t>(num_pages) * page_size;
    if (positions > std::numeric_limits<uint32_t>::max()) {
        throw Error(ErrorCode::InvalidArgument,
                    fmt::format("KV page pool: {} pages of {} positions is {} positions, expected at most {}",
                                num_pages, page_size, positions, std::numeric_limits<uint32_t>::max()));
    }
    tokens_.resize(static_cast<size_t>(num_pages) * page_size);
    free_.reserve(num_pages);
    // Pushed in reverse so that page 0 is handed out first: page tables of a fresh pool read 0, 1, 2, ...
    for (uint32_t p = num_pages; p-- > 0;) free_.push_back(p);
}

void PagePool::lru_push_back(PageId p) {
    const PageId s = num_pages_;
    prev_[p] = prev_[s];
    next_[p] = s;
    next_[prev_[s]] = p;
    prev_[s] = p;
    ++evictable_;
}

void PagePool::lru_unlink(PageId p) {
    next_[prev_[p]] = next_[p];
    prev_[next_[p]] = prev_[p];
    prev_[p] = next_[p] = num_pages_;
    --evictable_;
}

void PagePool::uncache(PageId p) {
    by_key_.erase(key_[p]);
    cached_[p] = 0;
}

PageId PagePool::allocate() {
    PageId p;
    if (!free_.empty()) {
        p = free_.back();
        free_.pop_back();
    } else if (evictable_ > 0) {
        p = next_[num_pages_];  // the head: released longest ago
        lru_unlink(p);
        uncache(p);
    } else {
        throw Error(ErrorCode::Internal, fmt::format("KV page pool: allocate() with all {} pages in use", num_pages_));
    }
    refs_[p] = 1;
    return p;
}

void PagePool::retain(PageId p) {
    if (p >= num_pages_ || (refs_[p] == 0 && !cached_[p])) {
        throw Error(ErrorCode::Internal, fmt::format("KV page pool: retain() of page {} that is free", p));
    }
    if (refs_[p] == 0) lru_unlink(p);
    ++refs_[p];
}

void PagePool::release(PageId p) {
    if (p >= num_pages_ || refs_[p] == 0) {
        throw Error(ErrorCode::Internal, fmt::format("KV page pool: release() of page {} that holds no reference", p));
    }
    if (--refs_[p] > 0) return;
    if (cached_[p]) {
        lru_push_back(p);
    } else {
        free_.push_back(p);
    }
}

bool PagePool::same_content(PageId p, PageKey parent, uint32_t index, std::span<const Token> tokens) const {
    if (parent_[p] != parent || index_[p] != index || tokens.size() != page_size_) return false;
    return std::equal(tokens.begin(), tokens.end(), tokens_.begin() + static_cast<ptrdiff_t>(p) * page_size_);
}

std::optional<PageId> PagePool::lookup(PageKey key, PageKey parent, uint32_t index,
                                       std::span<const Token> tokens) const {
    const auto it = by_key_.find(key);
    if (it == by_key_.end() || !same_content(it->second, parent, index, tokens)) return std::nullopt;
    return it->second;
}

bool PagePool::publish(PageId p, PageKey key, PageKey parent, uint32_t index, std::span<const Token> tokens) {
    if (p >= num_pages_ || refs_[p] == 0) {
        throw Error(ErrorCode::Internal, fmt::format("KV page pool: publish() of page {} that holds no reference", p));
    }
    if (tokens.size() != page_size_) {
        throw Error(ErrorCode::Internal, fmt::format("KV page pool: publish() of page {} with {} tokens, expected {}",
                                                     p, tokens.size(), page_size_));
    }
    if (cached_[p]) return key_[p] == key;
    if (!by_key_.emplace(key, p).second) return false;
    cached_[p] = 1;
    key_[p] = key;
    parent_[p] = parent;
    index_[p] = index;
    std::copy(tokens.begin(), tokens.end(), tokens_.begin() + static_cast<ptrdiff_t>(p) * page_size_);
    return true;
}

void PagePool::check_invariants() const {
    std::vector<uint8_t> in_free(num_pages_, 0), in_lru(num_pages_, 0);
    for (const PageId p : free_) {
        if (p >= num_pages_) broken(fmt::format("free list holds page {} of {}", p, num_pages_));
        if (in_free[p]) broken(fmt::format("page {} is in the free list twice", p));
        in_free[p] = 1;
    }
    uint32_t walked = 0;
    for (PageId p = next_[num_pages_]; p != num_pages_; p = next_[p]) {
        if (p >= num_pages_ || in_lru[p] || walked > num_pages_) broken("the LRU list is not a simple list");
        if (prev_[next_[p]] != p) broken(fmt::format("LRU links around page {} disagree", p));
        in_lru[p] = 1;
        ++walked;
    }
    if (walked != evictable_) broken(fmt::format("LRU list holds {} pages, counter says {}", walked, evictable_));
    for (PageId p = 0; p < num_pages_; ++p) {
        const int states = in_free[p] + in_lru[p] + (refs_[p] > 0 ? 1 : 0);
        if (states != 1) {
            broken(fmt::format("page {} is in {} states (free {}, evictable {}, refcount {})", p, states, in_free[p],
                               in_lru[p], refs_[p]));
        }
        if (in_free[p] && cached_[p]) broken(fmt::format("free page {} is still cached", p));
        if (in_lru[p] && !cached_[p]) broken(fmt::format("evictable page {} is not cached", p));
        if (cached_[p]) {
            const auto it = by_key_.find(key_[p]);
            if (it == by_key_.end() || it->second != p) broken(fmt::format("cached page {} is not indexed", p));
        }
    }
    for (const auto& [key, p] : by_key_) {
        if (p >= num_pages_ || !cached_[p] || key_[p] != key) broken(fmt::format("cache index entry for page {}", p));
    }
}

}  // namespace orcd::kvcache
