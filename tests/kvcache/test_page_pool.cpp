#include <gtest/gtest.h>

#include <vector>

#include "common/error.h"
#include "kvcache/page_pool.h"

namespace orcd::kvcache {
namespace {

std::vector<Token> seq(Token first, int n) {
    std::vector<Token> t(static_cast<size_t>(n));
    for (int i = 0; i < n; ++i) t[static_cast<size_t>(i)] = first + i;
    return t;
}

TEST(PagePool, RejectsEmptyShapes) {
    EXPECT_THROW(PagePool(0, 16), Error);
    EXPECT_THROW(PagePool(4, 0), Error);
}

TEST(PagePool, FreshPoolHandsOutPagesInOrderAndTakesThemBack) {
    PagePool pool(3, 4);
    EXPECT_EQ(pool.available(), 3u);
    EXPECT_EQ(pool.allocate(), 0u);
    EXPECT_EQ(pool.allocate(), 1u);
    EXPECT_EQ(pool.allocate(), 2u);
    EXPECT_EQ(pool.available(), 0u);
    EXPECT_THROW(pool.allocate(), Error);
    pool.release(1);
    EXPECT_EQ(pool.free_pages(), 1u);
    EXPECT_EQ(pool.allocate(), 1u);
    EXPECT_THROW(pool.retain(3), Error);
    pool.release(0);
    EXPECT_THROW(pool.release(0), Error);  // no reference left
    EXPECT_THROW(pool.retain(0), Error);   // a free page cannot be retained
    pool.check_invariants();
}

TEST(PagePool, ChainKeyDependsOnParentIndexAndEveryToken) {
    const auto t = seq(100, 4);
    const PageKey k = chain_key(kRootKey, 0, t);
    EXPECT_EQ(k, chain_key(kRootKey, 0, seq(100, 4)));
    EXPECT_NE(k, chain_key(kRootKey + 1, 0, t));
    EXPECT_NE(k, chain_key(kRootKey, 1, t));
    for (size_t i = 0; i < t.size(); ++i) {
        auto u = t;
        u[i] += 1;
        EXPECT_NE(k, chain_key(kRootKey, 0, u)) << "token " << i;
    }
    EXPECT_NE(k, chain_key(kRootKey, 0, seq(100, 3)));
}

TEST(PagePool, PublishedPageIsFoundOnlyWithItsExactContent) {
    PagePool pool(2, 4);
    const PageId p = pool.allocate();
    const auto t = seq(7, 4);
    const PageKey k = chain_key(kRootKey, 0, t);
    EXPECT_FALSE(pool.lookup(k, kRootKey, 0, t).has_value());
    EXPECT_TRUE(pool.publish(p, k, kRootKey, 0, t));
    EXPECT_EQ(pool.lookup(k, kRootKey, 0, t), p);
    // The same key with other stored facts (as a hash collision would present it) is a miss.
    EXPECT_FALSE(pool.lookup(k, kRootKey + 1, 0, t).has_value());
    EXPECT_FALSE(pool.lookup(k, kRootKey, 1, t).has_value());
    EXPECT_FALSE(pool.lookup(k, kRootKey, 0, seq(8, 4)).has_value());
    // A second page with the same content stays private.
    const PageId q = pool.allocate();
    EXPECT_FALSE(pool.publish(q, k, kRootKey, 0, t));
    EXPECT_FALSE(pool.is_cached(q));
    EXPECT_THROW(pool.publish(q, k + 1, kRootKey, 0, seq(1, 3)), Error);  // not a full page
    EXPECT_EQ(pool.cached_pages(), 1u);
    pool.check_invariants();
}

TEST(PagePool, ReleasedCachedPagesAreEvictedLeastRecentlyUsedFirst) {
    PagePool pool(3, 2);
    std::vector<PageKey> keys;
    for (Token i = 0; i < 3; ++i) {
        const PageId p = pool.allocate();
        const auto t = seq(10 * i, 2);
        keys.push_back(chain_key(kRootKey, 0, t));
        ASSERT_TRUE(pool.publish(p, keys.back(), kRootKey, 0, t));
    }
    pool.release(2);
    pool.release(0);
    pool.release(1);
    EXPECT_EQ(pool.evictable_pages(), 3u);
    EXPECT_EQ(pool.free_pages(), 0u);
    EXPECT_EQ(pool.available(), 3u);
    // Reusing page 2 makes it referenced again; it leaves the eviction order.
    pool.retain(2);
    EXPECT_EQ(pool.refcount(2), 1u);
    EXPECT_EQ(pool.allocate(), 0u);  // released before 1
    EXPECT_FALSE(pool.is_cached(0));
    EXPECT_FALSE(pool.lookup(keys[0], kRootKey, 0, seq(0, 2)).has_value());
    EXPECT_EQ(pool.allocate(), 1u);
    EXPECT_EQ(pool.available(), 0u);
    EXPECT_EQ(pool.lookup(keys[2], kRootKey, 0, seq(20, 2)), 2u);
    pool.check_invariants();
}

}  // namespace
}  // namespace orcd::kvcache
