#include <gtest/gtest.h>

#include <algorithm>
#include <string>
#include <vector>

#include "common/error.h"
#include "kvcache/block_manager.h"

namespace orcd::kvcache {
namespace {

std::vector<Token> tokens(Token first, int n) {
    std::vector<Token> t(static_cast<size_t>(n));
    for (int i = 0; i < n; ++i) t[static_cast<size_t>(i)] = first + i;
    return t;
}

std::vector<Token> concat(std::vector<Token> a, const std::vector<Token>& b) {
    a.insert(a.end(), b.begin(), b.end());
    return a;
}

std::vector<PageId> table(const BlockManager& bm, SeqId s) {
    const auto t = bm.page_table(s);
    return {t.begin(), t.end()};
}

BlockManager manager(uint32_t pages, uint32_t page_size, bool caching = true) {
    return BlockManager(BlockManagerConfig{pages, page_size, caching});
}

TEST(BlockManager, SequenceGrowsPageByPage) {
    auto bm = manager(8, 16);
    ASSERT_TRUE(bm.admit(1, tokens(0, 20), 100).has_value());
    EXPECT_EQ(table(bm, 1), (std::vector<PageId>{0, 1}));
    EXPECT_EQ(bm.length(1), 20u);
    for (Token t = 0; t < 12; ++t) ASSERT_TRUE(bm.append(1, std::vector<Token>{t}));
    EXPECT_EQ(bm.length(1), 32u);
    EXPECT_EQ(table(bm, 1).size(), 2u);  // 32 positions: two full pages
    ASSERT_TRUE(bm.append(1, std::vector<Token>{5}));
    EXPECT_EQ(table(bm, 1), (std::vector<PageId>{0, 1, 2}));
    EXPECT_EQ(bm.stats().pages_used, 3u);
    EXPECT_EQ(bm.stats().pages_free, 5u);
    bm.check_invariants();
}

TEST(BlockManager, FinishFreesEveryPage) {
    auto bm = manager(4, 4, false);
    ASSERT_TRUE(bm.admit(1, tokens(0, 9), 3).has_value());
    ASSERT_TRUE(bm.admit(2, tokens(50, 3), 1).has_value());
    EXPECT_EQ(bm.stats().pages_used, 4u);
    bm.finish(1);
    EXPECT_FALSE(bm.contains(1));
    EXPECT_EQ(bm.stats().pages_free, 3u);
    bm.finish(2);
    EXPECT_EQ(bm.stats().pages_free, 4u);
    EXPECT_EQ(bm.stats().sequences, 0u);
    EXPECT_THROW(bm.finish(2), Error);
    bm.check_invariants();
}

TEST(BlockManager, RequestLargerThanThePoolIsRefusedNamingTheLimit) {
    auto bm = manager(4, 16);
    EXPECT_NO_THROW(bm.check_request(60, 4));  // exactly the 64 positions of the pool
    try {
        bm.check_request(60, 5);
        FAIL() << "expected a refusal";
    } catch (const Error& e) {
        EXPECT_EQ(e.code(), ErrorCode::InvalidArgument);
        const std::string m = e.what();
        EXPECT_NE(m.find("65 KV positions"), std::string::npos) << m;
        EXPECT_NE(m.find("60 prompt + 5 new"), std::string::npos) << m;
        EXPECT_NE(m.find("holds 64 positions (4 pages)"), std::string::npos) << m;
    }
    EXPECT_THROW(bm.admit(1, tokens(0, 65), 0), Error);
    EXPECT_THROW(bm.can_admit(tokens(0, 10), 60, AdmitPolicy::PromptOnly), Error);
    EXPECT_EQ(bm.stats().sequences, 0u);
    EXPECT_EQ(bm.stats().pages_free, 4u);
}

TEST(BlockManager, RejectsBadCalls) {
    auto bm = manager(4, 4);
    EXPECT_THROW(bm.admit(1, {}, 4), Error);
    ASSERT_TRUE(bm.admit(1, tokens(0, 4), 2).has_value());
    EXPECT_THROW(bm.admit(1, tokens(0, 4), 2), Error);  // duplicate id
    EXPECT_THROW(bm.append(9, tokens(0, 1)), Error);    // unknown id
    EXPECT_THROW(bm.page_table(9), Error);
    EXPECT_THROW(bm.append(1, tokens(0, 3)), Error);  // beyond prompt + max_new_tokens
    EXPECT_THROW(bm.commit(1, 5), Error);             // beyond the length
    bm.commit(1, 3);
    EXPECT_THROW(bm.commit(1, 2), Error);                                             // backwards
    EXPECT_THROW(BlockManager(BlockManagerConfig{1u << 20, 1u << 13, true}), Error);  // 2^33 positions
    bm.check_invariants();
}

TEST(BlockManager, AdmissionWaitsWhileThePoolIsFullAndChangesNothing) {
    auto bm = manager(4, 16);
    ASSERT_TRUE(bm.admit(1, tokens(0, 40), 8).has_value());  // 3 pages
    EXPECT_FALSE(bm.can_admit(tokens(100, 17), 8, AdmitPolicy::PromptOnly));
    EXPECT_FALSE(bm.admit(2, tokens(100, 17), 8).has_value());
    EXPECT_FALSE(bm.contains(2));
    EXPECT_EQ(bm.stats().pages_used, 3u);
    EXPECT_TRUE(bm.can_admit(tokens(100, 16), 8, AdmitPolicy::PromptOnly));
    bm.finish(1);
    EXPECT_TRUE(bm.admit(2, tokens(100, 17), 8).has_value());
    bm.check_invariants();
}

TEST(BlockManager, ReservePolicySetsDecodePagesAside) {
    auto bm = manager(4, 4, false);
    // Prompt 4 + 8 new: 1 page now, 2 reserved.
    ASSERT_TRUE(bm.admit(1, tokens(0, 4), 8, AdmitPolicy::Reserve).has_value());
    EXPECT_EQ(bm.stats().pages_reserved, 2u);
    EXPECT_FALSE(bm.can_admit(tokens(10, 5), 0, AdmitPolicy::PromptOnly));  // needs 2, 1 unreserved
    EXPECT_FALSE(bm.can_admit(tokens(10, 4), 4, AdmitPolicy::Reserve));     // needs 1 + 1
    ASSERT_TRUE(bm.admit(2, tokens(10, 4), 4, AdmitPolicy::PromptOnly).has_value());
    // Sequence 2 cannot grow (the last free page is promised to 1), sequence 1 can, to its full length.
    EXPECT_FALSE(bm.append(2, tokens(0, 1)));
    EXPECT_TRUE(bm.append(1, tokens(0, 8)));
    EXPECT_EQ(bm.stats().pages_reserved, 0u);
    EXPECT_EQ(bm.stats().pages_free, 0u);
    bm.finish(1);
    EXPECT_TRUE(bm.append(2, tokens(0, 1)));
    bm.check_invariants();
}

TEST(BlockManager, FinishingReleasesAnUnusedReservation) {
    auto bm = manager(4, 4, false);
    ASSERT_TRUE(bm.admit(1, tokens(0, 4), 12, AdmitPolicy::Reserve).has_value());
    EXPECT_EQ(bm.stats().pages_reserved, 3u);
    bm.finish(1);
    EXPECT_EQ(bm.stats().pages_reserved, 0u);
    EXPECT_TRUE(bm.can_admit(tokens(0, 16), 0, AdmitPolicy::PromptOnly));
}

TEST(BlockManager, NewestRunningSequenceIsPreemptedWhenAPageIsMissing) {
    auto bm = manager(3, 4, false);
    ASSERT_TRUE(bm.admit(10, tokens(0, 4), 8).has_value());
    ASSERT_TRUE(bm.admit(20, tokens(100, 4), 8).has_value());
    ASSERT_TRUE(bm.admit(30, tokens(200, 3), 8).has_value());
    ASSERT_TRUE(bm.append(30, std::vector<Token>{7}));  // fills its page: no allocation
    EXPECT_FALSE(bm.append(10, std::vector<Token>{1}));
    EXPECT_EQ(bm.length(10), 4u);  // a failed append changes nothing

    auto pre = bm.append_or_preempt(10, std::vector<Token>{1});
    ASSERT_EQ(pre.size(), 1u);
    EXPECT_EQ(pre[0].seq, 30u);
    EXPECT_EQ(pre[0].tokens, concat(tokens(200, 3), {7}));  // the prompt to recompute it from
    EXPECT_EQ(pre[0].remaining_new, 7u);
    EXPECT_FALSE(bm.contains(30));
    EXPECT_EQ(bm.length(10), 5u);
    EXPECT_EQ(bm.stats().preemptions, 1u);

    // Now 20 is the newest: growing it preempts itself.
    pre = bm.append_or_preempt(20, std::vector<Token>{1});
    ASSERT_EQ(pre.size(), 1u);
    EXPECT_EQ(pre[0].seq, 20u);
    EXPECT_FALSE(bm.contains(20));
    EXPECT_EQ(bm.stats().pages_used, 2u);
    bm.check_invariants();

    bm.finish(10);
    EXPECT_FALSE(bm.preempt_newest().has_value());
}

TEST(BlockManager, PromptWithCachedPagesReusesTheSamePageIds) {
    auto bm = manager(16, 4);
    const auto system = tokens(1000, 8);  // two full pages
    const auto a = concat(system, tokens(1, 2));
    ASSERT_EQ(bm.admit(1, a, 4)->cached_tokens, 0u);
    const auto a_pages = table(bm, 1);
    bm.commit(1, 10);
    EXPECT_EQ(bm.stats().pages_cached, 2u);  // the third page is partial

    // While 1 still runs, 2 shares its two prefix pages.
    const auto b = concat(system, tokens(500, 5));
    ASSERT_EQ(bm.admit(2, b, 4)->cached_tokens, 8u);
    EXPECT_EQ(bm.computed(2), 8u);
    const auto b_pages = table(bm, 2);
    ASSERT_EQ(b_pages.size(), 4u);
    EXPECT_EQ(b_pages[0], a_pages[0]);
    EXPECT_EQ(b_pages[1], a_pages[1]);
    EXPECT_NE(b_pages[2], a_pages[2]);
    EXPECT_EQ(bm.pool().refcount(a_pages[0]), 2u);
    bm.check_invariants();

    // After both finish the pages stay cached and a third request gets them again.
    bm.finish(1);
    bm.finish(2);
    EXPECT_EQ(bm.stats().pages_used, 0u);
    EXPECT_EQ(bm.stats().pages_evictable, 2u);
    ASSERT_EQ(bm.admit(3, b, 4)->cached_tokens, 8u);
    EXPECT_EQ(table(bm, 3)[0], a_pages[0]);
    EXPECT_EQ(table(bm, 3)[1], a_pages[1]);

    const BlockStats st = bm.stats();
    EXPECT_EQ(st.prefix_queried_tokens, 10u + 13u + 13u);
    EXPECT_EQ(st.prefix_hit_tokens, 16u);
    EXPECT_DOUBLE_EQ(st.prefix_hit_rate(), 16.0 / 36.0);
    bm.check_invariants();
}

TEST(BlockManager, LastPromptTokenIsAlwaysComputed) {
    auto bm = manager(8, 4);
    const auto p = tokens(0, 8);
    ASSERT_TRUE(bm.admit(1, p, 1).has_value());
    bm.commit(1, 8);
    bm.finish(1);
    // Both pages are cached, but the prompt ends on the second: only the first is reused.
    EXPECT_EQ(bm.admit(2, p, 1)->cached_tokens, 4u);
    EXPECT_EQ(bm.admit(3, concat(p, {9}), 1)->cached_tokens, 8u);
}

TEST(BlockManager, SameTokensAtAnotherPositionOrAfterAnotherPrefixMiss) {
    auto bm = manager(16, 4);
    ASSERT_TRUE(bm.admit(1, concat(tokens(0, 4), tokens(100, 5)), 1).has_value());
    bm.commit(1, 9);
    // Page 1's tokens (100..103) as the first page, and after a different first page: no reuse.
    EXPECT_EQ(bm.admit(2, concat(tokens(100, 4), tokens(0, 5)), 1)->cached_tokens, 0u);
    EXPECT_EQ(bm.admit(3, concat(tokens(1, 4), tokens(100, 5)), 1)->cached_tokens, 0u);
    EXPECT_EQ(bm.admit(4, concat(tokens(0, 4), tokens(100, 5)), 1)->cached_tokens, 8u);
}

TEST(BlockManager, UncommittedPagesAreNotReused) {
    auto bm = manager(8, 4);
    ASSERT_TRUE(bm.admit(1, tokens(0, 9), 1).has_value());
    EXPECT_EQ(bm.admit(2, tokens(0, 9), 1)->cached_tokens, 0u);  // 1's KV is not written yet
    bm.commit(1, 5);                                             // one complete page written
    EXPECT_EQ(bm.admit(3, tokens(0, 9), 1)->cached_tokens, 4u);
}

TEST(BlockManager, DecodedTokensFillPagesThatBecomeCached) {
    auto bm = manager(8, 4);
    ASSERT_TRUE(bm.admit(1, tokens(0, 3), 6).has_value());
    bm.commit(1, 3);
    std::vector<Token> all = tokens(0, 3);
    for (Token t : {50, 51, 52, 53}) {
        ASSERT_TRUE(bm.append(1, std::vector<Token>{t}));
        bm.commit(1, bm.length(1));
        all.push_back(t);
    }
    EXPECT_EQ(bm.stats().pages_cached, 1u);  // positions 0..3; 4..6 are partial
    bm.finish(1);
    all.push_back(99);
    EXPECT_EQ(bm.admit(2, all, 1)->cached_tokens, 4u);
}

TEST(BlockManager, LeastRecentlyUsedPagesAreEvictedDeepestFirst) {
    auto bm = manager(4, 4);
    const auto a = tokens(0, 9);  // pages: 0, 1 (complete), 2 (partial)
    ASSERT_TRUE(bm.admit(1, a, 1).has_value());
    bm.commit(1, 9);
    EXPECT_EQ(table(bm, 1), (std::vector<PageId>{0, 1, 2}));
    bm.finish(1);
    EXPECT_EQ(bm.stats().pages_evictable, 2u);
    EXPECT_EQ(bm.stats().pages_free, 2u);

    // Three fresh pages: the two free ones and then the deeper cached page 1.
    ASSERT_EQ(bm.admit(2, tokens(500, 9), 1)->cached_tokens, 0u);
    EXPECT_EQ(bm.stats().pages_cached, 1u);
    const auto t2 = table(bm, 2);
    EXPECT_NE(std::find(t2.begin(), t2.end(), 1u), t2.end());
    EXPECT_EQ(std::find(t2.begin(), t2.end(), 0u), t2.end());
    // Page 0 would be a hit, but taking it leaves no page for the rest of the prompt.
    EXPECT_FALSE(bm.can_admit(a, 1, AdmitPolicy::PromptOnly));
    bm.finish(2);
    const auto hit = bm.admit(3, a, 1);
    ASSERT_TRUE(hit.has_value());
    EXPECT_EQ(hit->cached_tokens, 4u);
    EXPECT_EQ(table(bm, 3)[0], 0u);
    bm.check_invariants();
}

TEST(BlockManager, DisabledPrefixCachingNeverReuses) {
    auto bm = manager(8, 4, false);
    ASSERT_TRUE(bm.admit(1, tokens(0, 9), 1).has_value());
    bm.commit(1, 9);
    bm.finish(1);
    EXPECT_EQ(bm.stats().pages_cached, 0u);
    EXPECT_EQ(bm.stats().pages_free, 8u);
    EXPECT_EQ(bm.admit(2, tokens(0, 9), 1)->cached_tokens, 0u);
    EXPECT_EQ(bm.stats().prefix_queried_tokens, 0u);
    EXPECT_EQ(bm.stats().prefix_hit_rate(), 0.0);
}

TEST(BlockManager, PreemptedSequenceKeepsItsPublishedPagesForTheRecompute) {
    auto bm = manager(4, 4);
    ASSERT_TRUE(bm.admit(1, tokens(0, 9), 4).has_value());
    bm.commit(1, 9);
    const auto p = bm.preempt_newest();
    ASSERT_TRUE(p.has_value());
    EXPECT_EQ(bm.stats().pages_evictable, 2u);
    EXPECT_EQ(bm.admit(1, p->tokens, p->remaining_new)->cached_tokens, 8u);
}

}  // namespace
}  // namespace orcd::kvcache
