// engine::LateMask, the token mask a constrained generation computes while the step's forward pass runs: resolve()
// gives the computed mask whether a worker or the resolver runs it, an error comes back from finish() (resolve()
// gives an empty mask), and a computation never resolved is withdrawn or waited for, never run after its owner
// is gone.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <thread>
#include <vector>

#include "common/error.h"
#include "engine/late_mask.h"

namespace orcd::engine {
namespace {

TEST(LateMask, ResolvesToTheComputedMaskEachStep) {
    std::vector<uint64_t> mask(3, 0);
    std::atomic<int> runs{0};
    LateMask late([&] {
        ++runs;
        mask.assign(3, 0);
        mask[1] = static_cast<uint64_t>(runs.load());
        return std::span<const uint64_t>(mask);
    });
    for (int step = 1; step <= 50; ++step) {
        late.start();
        if (step % 2 == 0) std::this_thread::sleep_for(std::chrono::microseconds(200));  // let a worker take it
        const auto m = late.resolve();
        ASSERT_EQ(m.size(), 3u);
        EXPECT_EQ(m[1], static_cast<uint64_t>(step));
        late.finish();
        EXPECT_EQ(runs.load(), step) << "one computation per step";
    }
    EXPECT_GE(LateMask::workers(), 1u);
}

TEST(LateMask, AnErrorGivesAnEmptyMaskAndComesBackFromFinish) {
    LateMask late([]() -> std::span<const uint64_t> { throw Error(ErrorCode::InvalidArgument, "dead end"); });
    late.start();
    EXPECT_TRUE(late.resolve().empty());
    try {
        late.finish();
        FAIL() << "no error";
    } catch (const Error& e) {
        EXPECT_EQ(e.code(), ErrorCode::InvalidArgument);
        EXPECT_STREQ(e.what(), "dead end");
    }
    late.finish();  // reported once
    late.start();   // and usable again
    EXPECT_TRUE(late.resolve().empty());
    EXPECT_THROW(late.finish(), Error);
}

TEST(LateMask, MisuseIsAnInternalError) {
    std::vector<uint64_t> mask(1, 1);
    LateMask late([&] { return std::span<const uint64_t>(mask); });
    EXPECT_THROW(late.resolve(), Error);  // nothing started
    late.start();
    EXPECT_THROW(late.start(), Error);  // the previous one not finished
    late.finish();
}

// Owners that go away right after start() (a step that failed before resolving): the computation either never runs
// or ends before the owner's destructor returns, so it never touches freed memory (ASan would see it).
TEST(LateMask, AnUnresolvedComputationEndsWithItsOwner) {
    std::atomic<int> finished{0};
    for (int i = 0; i < 200; ++i) {
        auto data = std::make_unique<std::vector<uint64_t>>(4, 0);
        auto late = std::make_unique<LateMask>([&finished, d = data.get()] {
            std::this_thread::sleep_for(std::chrono::microseconds(50));
            (*d)[0] = 1;
            ++finished;
            return std::span<const uint64_t>(*d);
        });
        late->start();
        if (i % 3 == 1) std::this_thread::sleep_for(std::chrono::microseconds(20));
        late.reset();
        data.reset();
    }
    // Nothing runs after its owner is gone: the count seen once the last owner died stays as it is.
    const int after = finished.load();
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    EXPECT_EQ(finished.load(), after);
}

}  // namespace
}  // namespace orcd::engine
