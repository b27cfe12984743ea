// The progress bar's fraction never leaves [0, 1], whatever the counts (the load bar once counted past 100 %); a
// load's steps add up to one fraction that only grows and ends at 1.
#include <gtest/gtest.h>

#include <cstdio>
#include <fstream>
#include <string>
#include <vector>

#include "cli/load_progress.h"
#include "cli/progress.h"

TEST(ProgressBar, FractionIsClamped) {
    using orcd::cli::ProgressBar;
    EXPECT_DOUBLE_EQ(ProgressBar::clamp_fraction(0, 100), 0.0);
    EXPECT_DOUBLE_EQ(ProgressBar::clamp_fraction(50, 100), 0.5);
    EXPECT_DOUBLE_EQ(ProgressBar::clamp_fraction(100, 100), 1.0);
    EXPECT_DOUBLE_EQ(ProgressBar::clamp_fraction(150, 100), 1.0);  // padding counted on top of the plan's bytes
    EXPECT_DOUBLE_EQ(ProgressBar::clamp_fraction(0, 0), 1.0);      // nothing to do is done
}

// The percent shown rounds down: "100%" only when done (a log once showed "100%" twice, for 99.6 % and then 100 %).
TEST(ProgressBar, ShownPercentIsHundredOnlyWhenDone) {
    using orcd::cli::ProgressBar;
    EXPECT_EQ(ProgressBar::shown_percent(0, 100), 0);
    EXPECT_EQ(ProgressBar::shown_percent(29, 100), 29);
    EXPECT_EQ(ProgressBar::shown_percent(996, 1000), 99);
    EXPECT_EQ(ProgressBar::shown_percent(999999, 1000000), 99);
    EXPECT_EQ(ProgressBar::shown_percent(100, 100), 100);
    EXPECT_EQ(ProgressBar::shown_percent(150, 100), 100);
    EXPECT_EQ(ProgressBar::shown_percent(0, 0), 100);
    EXPECT_EQ(ProgressBar::shown_percent(UINT64_MAX - 1, UINT64_MAX), 99);  // no overflow in done * 100
}

// A load is a read step, then (CUDA) an upload step: the whole load's fraction is their mean, within [0, 1].
TEST(LoadProgress, OverallFractionIsTheMeanOfTheSteps) {
    using orcd::cli::LoadProgress;
    EXPECT_DOUBLE_EQ(LoadProgress::overall_fraction(0.5, 0.0, /*has_upload=*/false), 0.5);
    EXPECT_DOUBLE_EQ(LoadProgress::overall_fraction(1.0, 0.0, /*has_upload=*/true), 0.5);
    EXPECT_DOUBLE_EQ(LoadProgress::overall_fraction(1.0, 0.5, /*has_upload=*/true), 0.75);
    EXPECT_DOUBLE_EQ(LoadProgress::overall_fraction(1.0, 1.0, /*has_upload=*/true), 1.0);
    EXPECT_DOUBLE_EQ(LoadProgress::overall_fraction(2.0, 3.0, /*has_upload=*/true), 1.0);
}

// What an observer (serve's /health) sees while a file is read: one stage, a fraction that only grows to exactly 1.
TEST(LoadProgress, ReadStepReportsToTheObserverUpToOne) {
    const std::string path = ::testing::TempDir() + "/load_progress_read.bin";
    {
        std::ofstream f(path, std::ios::binary);
        const std::string block(1 << 20, 'x');
        for (int i = 0; i < 130; ++i) f << block;  // 130 MiB: three 64 MiB chunks, the last one short
    }
    std::vector<orcd::cli::LoadStatus> seen;
    std::vector<std::string> stages;
    orcd::cli::LoadProgress p(/*upload=*/true, "test: ", /*quiet=*/true, [&](const orcd::cli::LoadStatus& s) {
        seen.push_back(s);
        stages.emplace_back(s.stage);
    });
    p.read_file(path);
    std::remove(path.c_str());
    ASSERT_EQ(seen.size(), 3u);
    for (size_t i = 0; i < seen.size(); ++i) {
        EXPECT_EQ(stages[i], "read");
        EXPECT_EQ(seen[i].bytes_total, 130ull << 20);
        if (i > 0) {
            EXPECT_GT(seen[i].fraction, seen[i - 1].fraction);
        }
    }
    EXPECT_EQ(seen.back().bytes_done, 130ull << 20);
    // With an upload step to come, the read is half of the load.
    EXPECT_DOUBLE_EQ(seen.back().fraction, 0.5);

    // The upload's reports: bytes past the plan's total (padding) and the final Done never take it past 1.
    const orcd::loader::ProgressFn upload = p.upload_callback();
    orcd::loader::Progress r;
    r.bytes_total = 1000;
    r.bytes_done = 500;
    upload(r);
    EXPECT_DOUBLE_EQ(seen.back().fraction, 0.75);
    EXPECT_EQ(stages.back(), "upload");
    r.bytes_done = 1200;
    upload(r);
    EXPECT_DOUBLE_EQ(seen.back().fraction, 1.0);
    EXPECT_EQ(seen.back().bytes_done, 1000u);
    r.kind = orcd::loader::Progress::Kind::Done;
    upload(r);
    EXPECT_DOUBLE_EQ(seen.back().fraction, 1.0);
}
