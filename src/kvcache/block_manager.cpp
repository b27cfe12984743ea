#include "kvcache/block_manager.h"

#include <fmt/format.h>

#include <algorithm>

#include "common/error.h"

namespace orcd::kvcache {

namespace {

[[noreturn]] void broken(const std::string& what) {
    throw Error(ErrorCode::Internal, "KV block manager invariant violated: " + what);
}

}  // namespace

BlockManager::BlockManager(BlockManagerConfig config) : config_(config), pool_(config.num_pages, config.page_size) {}

uint32_t BlockManager::pages_for(uint64_t tokens) const {
    return static_cast<uint32_t>((tokens + config_.page_size - 1) / config_.page_size);
}

void BlockManager::check_request(uint64_t prompt_tokens, uint64_t max_new_tokens) const {
    const uint64_t total = prompt_tokens + max_new_tokens;
    const uint64_t positions = static_cast<uint64_t>(config_.num_pages) * config_.page_size;
    if (total > positions) {
        throw Error(
            ErrorCode::InvalidArgument,
            fmt::format("request needs {} KV positions ({} prompt + {} new tokens, {} pages of {}) but the whole "
                        "KV pool holds {} positions ({} pages)",
                        total, prompt_tokens, max_new_tokens, (total + config_.page_size - 1) / config_.page_size,
                        config_.page_size, positions, config_.num_pages));
    }
}

BlockManager::PrefixHits BlockManager::find_prefix(std::span<const Token> prompt) const {
    PrefixHits hits;
    if (!config_.prefix_caching || prompt.empty()) return hits;
    const uint32_t ps = config_.page_size;
    // The last prompt token is always computed (its logits give the first new token), so only complete pages that
    // end before it are reusable.
    const uint32_t reusable = static_cast<uint32_t>((prompt.size() - 1) / ps);
    PageKey parent = kRootKey;
    for (uint32_t i = 0; i < reusable; ++i) {
        const auto page_tokens = prompt.subspan(static_cast<size_t>(i) * ps, ps);
        const PageKey key = chain_key(parent, i, page_tokens);
        const auto page = pool_.lookup(key, parent, i, page_tokens);
        if (!page) break;
        hits.pages.push_back(*page);
        hits.keys.push_back(key);
        if (pool_.refcount(*page) == 0) ++hits.evictable;
        parent = key;
    }
    return hits;
}

bool BlockManager::fits_now(const PrefixHits& hits, uint64_t prompt_tokens, uint32_t max_new_tokens,
                            AdmitPolicy policy) const {
    const uint32_t prompt_pages = pages_for(prompt_tokens);
    const uint32_t reserve =
        policy == AdmitPolicy::Reserve ? pages_for(prompt_tokens + max_new_tokens) - prompt_pages : 0;
    const uint64_t need = static_cast<uint64_t>(hits.evictable) + (prompt_pages - hits.pages.size()) + reserve;
    return need <= unreserved_available();
}

bool BlockManager::can_admit(std::span<const Token> prompt, uint32_t max_new_tokens, AdmitPolicy policy) const {
    check_request(prompt.size(), max_new_tokens);
    return fits_now(find_prefix(prompt), prompt.size(), max_new_tokens, policy);
}

std::optional<Admitted> BlockManager::admit(SeqId seq, std::span<const Token> prompt, uint32_t max_new_tokens,
                                            AdmitPolicy policy) {
    if (prompt.empty()) throw Error(ErrorCode::InvalidArgument, fmt::format("sequence {}: empty prompt", seq));
    if (seqs_.count(seq)) throw Error(ErrorCode::InvalidArgument, fmt::format("sequence {} is already running", seq));
    check_request(prompt.size(), max_new_tokens);
    PrefixHits hits = find_prefix(prompt);
    if (!fits_now(hits, prompt.size(), max_new_tokens, policy)) return std::nullopt;

    Sequence s;
    s.tokens.assign(prompt.begin(), prompt.end());
    s.max_length = static_cast<uint32_t>(prompt.size() + max_new_tokens);
    s.order = next_order_++;
    // Retain the hits before allocating: an allocation may evict evictable pages, and these must not be among them.
    for (const PageId p : hits.pages) pool_.retain(p);
    s.pages = std::move(hits.pages);
    s.keys = std::move(hits.keys);
    const uint32_t prompt_pages = pages_for(prompt.size());
    while (s.pages.size() < prompt_pages) s.pages.push_back(pool_.allocate());
    if (policy == AdmitPolicy::Reserve) {
        s.reserved = pages_for(s.max_length) - prompt_pages;
        reserved_ += s.reserved;
    }
    s.computed = static_cast<uint32_t>(s.keys.size()) * config_.page_size;
    if (config_.prefix_caching) {
        queried_tokens_ += prompt.size();
        hit_tokens_ += s.computed;
    }
    const Admitted result{s.computed};
    seqs_.emplace(seq, std::move(s));
    return result;
}

BlockManager::Sequence& BlockManager::get(SeqId seq, const char* what) {
    const auto it = seqs_.find(seq);
    if (it == seqs_.end())
        throw Error(ErrorCode::InvalidArgument, fmt::format("{}: sequence {} is not running", what, seq));
    return it->second;
}

const BlockManager::Sequence& BlockManager::get(SeqId seq, const char* what) const {
    return const_cast<BlockManager*>(this)->get(seq, what);
}

bool BlockManager::append(SeqId seq, std::span<const Token> tokens) {
    Sequence& s = get(seq, "append");
    const uint64_t new_length = s.tokens.size() + tokens.size();
    if (new_length > s.max_length) {
        throw Error(
            ErrorCode::InvalidArgument,
            fmt::format("append: sequence {} would hold {} tokens, more than the {} (prompt + max new tokens) it "
                        "was admitted with",
                        seq, new_length, s.max_length));
    }
    const uint32_t need = pages_for(new_length) - static_cast<uint32_t>(s.pages.size());
    const uint32_t from_reserve = std::min(need, s.reserved);
    if (need - from_reserve > unreserved_available()) return false;
    s.reserved -= from_reserve;
    reserved_ -= from_reserve;
    for (uint32_t i = 0; i < need; ++i) s.pages.push_back(pool_.allocate());
    s.tokens.insert(s.tokens.end(), tokens.begin(), tokens.end());
    return true;
}

std::vector<Preempted> BlockManager::append_or_preempt(SeqId seq, std::span<const Token> tokens) {
    std::vector<Preempted> preempted;
    // Each round frees one sequence, so this ends within the number of running sequences.
    while (!append(seq, tokens)) {
        std::optional<Preempted> p = preempt_newest();
        const bool was_self = p->seq == seq;  // append() succeeded for no one: seq itself is running, so p is set
        preempted.push_back(std::move(*p));
        if (was_self) break;
    }
    return preempted;
}

void BlockManager::commit(SeqId seq, uint32_t computed) {
    Sequence& s = get(seq, "commit");
    if (computed < s.computed || computed > s.tokens.size()) {
        throw Error(ErrorCode::InvalidArgument,
                    fmt::format("commit: sequence {} of {} tokens with {} computed cannot commit {} computed positions",
                                seq, s.tokens.size(), s.computed, computed));
    }
    s.computed = computed;
    if (!config_.prefix_caching) return;
    const uint32_t ps = config_.page_size;
    const std::span<const Token> all(s.tokens);
    for (uint32_t i = static_cast<uint32_t>(s.keys.size()); i < computed / ps; ++i) {
        const PageKey parent = i == 0 ? kRootKey : s.keys[i - 1];
        const auto page_tokens = all.subspan(static_cast<size_t>(i) * ps, ps);
        const PageKey key = chain_key(parent, i, page_tokens);
        pool_.publish(s.pages[i], key, parent, i, page_tokens);
        s.keys.push_back(key);
    }
}

void BlockManager::release_pages(Sequence& s) {
    // Last page first: the deepest pages of a prefix chain become the least recently used and are evicted before the
    // pages they depend on, which keeps the shorter prefixes reusable longest.
    for (auto it = s.pages.rbegin(); it != s.pages.rend(); ++it) pool_.release(*it);
    s.pages.clear();
    reserved_ -= s.reserved;
    s.reserved = 0;
}

void BlockManager::finish(SeqId seq) {
    Sequence& s = get(seq, "finish");
    release_pages(s);
    seqs_.erase(seq);
}

std::optional<Preempted> BlockManager::preempt_newest() {
    if (seqs_.empty()) return std::nullopt;
    auto newest = seqs_.begin();
    for (auto it = seqs_.begin(); it != seqs_.end(); ++it) {
        if (it->second.order > newest->second.order) newest = it;
    }
    Sequence& s = newest->second;
    Preempted p{newest->first, std::move(s.tokens), 0};
    p.remaining_new = s.max_length - static_cast<uint32_t>(p.tokens.size());
    release_pages(s);
    seqs_.erase(newest);
    ++preemptions_;
    return p;
}

std::span<const PageId> BlockManager::page_table(SeqId seq) const { return get(seq, "page_table").pages; }
uint32_t BlockManager::length(SeqId seq) const { return static_cast<uint32_t>(get(seq, "length").tokens.size()); }
uint32_t BlockManager::computed(SeqId seq) const { return get(seq, "computed").computed; }

BlockStats BlockManager::stats() const {
    BlockStats st;
    st.pages_total = pool_.num_pages();
    st.pages_used = pool_.referenced_pages();
    st.pages_free = pool_.free_pages();
    st.pages_cached = pool_.cached_pages();
    st.pages_evictable = pool_.evictable_pages();
    st.pages_reserved = reserved_;
    st.sequences = static_cast<uint32_t>(seqs_.size());
    st.prefix_queried_tokens = queried_tokens_;
    st.prefix_hit_tokens = hit_tokens_;
    st.preemptions = preemptions_;
    return st;
}

void BlockManager::check_invariants() const {
    pool_.check_invariants();
    std::vector<uint32_t> uses(pool_.num_pages(), 0);
    uint64_t reserved = 0;
    for (const auto& [id, s] : seqs_) {
        if (s.pages.size() != pages_for(s.tokens.size())) {
            broken(fmt::format("sequence {} of {} tokens has {} pages", id, s.tokens.size(), s.pages.size()));
        }
        if (s.tokens.size() > s.max_length || s.computed > s.tokens.size()) {
            broken(fmt::format("sequence {}: {} tokens, {} computed, limit {}", id, s.tokens.size(), s.computed,
                               s.max_length));
        }
        if (s.keys.size() * config_.page_size > s.computed) {
            broken(fmt::format("sequence {} has {} published pages but {} computed positions", id, s.keys.size(),
                               s.computed));
        }
        for (const PageId p : s.pages) {
            if (p >= pool_.num_pages()) broken(fmt::format("sequence {} holds page {} outside the pool", id, p));
            ++uses[p];
        }
        reserved += s.reserved;
    }
    for (PageId p = 0; p < pool_.num_pages(); ++p) {
        if (uses[p] != pool_.refcount(p)) {
            broken(fmt::format("page {} is in {} page tables but has refcount {}", p, uses[p], pool_.refcount(p)));
        }
        if (uses[p] > 1 && !pool_.is_cached(p)) {
            broken(fmt::format("page {} is owned by {} sequences without being a cached page", p, uses[p]));
        }
    }
    if (reserved != reserved_) broken(fmt::format("reservations add up to {}, counter says {}", reserved, reserved_));
    if (reserved_ > pool_.available()) {
        broken(fmt::format("{} pages reserved but only {} available", reserved_, pool_.available()));
    }
}

}  // namespace orcd::kvcache
