#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <mutex>
#include <set>
#include <thread>
#include <vector>

#include "common/worker_crew.h"

namespace orcd {
namespace {

// Every job is run once per thread, each on a thread of its own, the caller's among them, and run returns only after
// the last one has finished (the slow workers' increments are all seen).
TEST(WorkerCrew, RunsTheJobOncePerThreadAndWaitsForAll) {
    for (unsigned threads : {1u, 2u, 5u}) {
        WorkerCrew crew(threads);
        EXPECT_EQ(crew.threads(), threads);
        for (int rep = 0; rep < 50; ++rep) {
            std::mutex mu;
            std::set<std::thread::id> ids;
            int calls = 0;  // guarded by mu: a plain int, so that a missing wait is a wrong count, not just a race
            crew.run([&] {
                if (rep % 10 == 0) std::this_thread::sleep_for(std::chrono::milliseconds(2));
                std::lock_guard lock(mu);
                ++calls;
                ids.insert(std::this_thread::get_id());
            });
            ASSERT_EQ(calls, static_cast<int>(threads)) << threads << " threads, rep " << rep;
            ASSERT_EQ(ids.size(), threads);
            ASSERT_EQ(ids.count(std::this_thread::get_id()), 1u);
        }
    }
}

TEST(WorkerCrew, ZeroThreadsCountsAsOneAndRunsInline) {
    WorkerCrew crew(0);
    EXPECT_EQ(crew.threads(), 1u);
    std::thread::id ran_on;
    crew.run([&] { ran_on = std::this_thread::get_id(); });
    EXPECT_EQ(ran_on, std::this_thread::get_id());
}

TEST(WorkerCrew, WorkersShareACounterForTheWork) {
    WorkerCrew crew(4);
    std::atomic<int> next{0};
    std::vector<std::atomic<int>> hits(1000);
    crew.run([&] {
        for (int i; (i = next.fetch_add(1)) < 1000;) hits[static_cast<size_t>(i)].fetch_add(1);
    });
    for (size_t i = 0; i < hits.size(); ++i) ASSERT_EQ(hits[i].load(), 1) << i;
}

}  // namespace
}  // namespace orcd
