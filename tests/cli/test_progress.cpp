// The progress bar's fraction never leaves [0, 1], whatever the counts (the load bar once counted past 100 %).
#include <gtest/gtest.h>

#include "cli/progress.h"

TEST(ProgressBar, FractionIsClamped) {
    using orcd::cli::ProgressBar;
    EXPECT_DOUBLE_EQ(ProgressBar::clamp_fraction(0, 100), 0.0);
    EXPECT_DOUBLE_EQ(ProgressBar::clamp_fraction(50, 100), 0.5);
    EXPECT_DOUBLE_EQ(ProgressBar::clamp_fraction(100, 100), 1.0);
    EXPECT_DOUBLE_EQ(ProgressBar::clamp_fraction(150, 100), 1.0);  // padding counted on top of the plan's bytes
    EXPECT_DOUBLE_EQ(ProgressBar::clamp_fraction(0, 0), 1.0);      // nothing to do is done
}
