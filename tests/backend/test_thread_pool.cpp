#include <gtest/gtest.h>

#include <atomic>
#include <stdexcept>
#include <vector>

#include "backend/cpu/thread_pool.h"

namespace orcd::backend::cpu {
namespace {

TEST(ThreadPool, CoversEveryIndexExactlyOnceAcrossManyJobs) {
    ThreadPool pool(3);
    EXPECT_EQ(pool.size(), 3u);
    for (int64_t n : {1, 2, 7, 64, 1000, 4097}) {
        for (int64_t grain : {1, 5, 64}) {
            std::vector<std::atomic<int>> hits(static_cast<size_t>(n));
            pool.parallel_for(n, grain, [&](int64_t b, int64_t e) {
                ASSERT_LT(b, e);
                for (int64_t i = b; i < e; ++i) hits[static_cast<size_t>(i)].fetch_add(1);
            });
            for (int64_t i = 0; i < n; ++i) ASSERT_EQ(hits[static_cast<size_t>(i)].load(), 1) << n << " " << i;
        }
    }
}

TEST(ThreadPool, RethrowsAnExceptionFromAWorkerAndStaysUsable) {
    ThreadPool pool(2);
    EXPECT_THROW(pool.parallel_for(100, 1,
                                   [](int64_t b, int64_t) {
                                       if (b >= 50) throw std::runtime_error("boom");
                                   }),
                 std::runtime_error);
    std::atomic<int64_t> sum{0};
    pool.parallel_for(100, 1, [&](int64_t b, int64_t e) {
        for (int64_t i = b; i < e; ++i) sum += i;
    });
    EXPECT_EQ(sum.load(), 4950);
}

}  // namespace
}  // namespace orcd::backend::cpu
