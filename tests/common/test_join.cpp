#include "common/join.h"

#include <gtest/gtest.h>

#include <array>
#include <cstdint>
#include <string>
#include <vector>

namespace orcd {
namespace {

TEST(Join, EmptyRangeGivesEmptyString) {
    const std::vector<int> none;
    EXPECT_EQ(join(none, ", ", [](int v) { return std::to_string(v); }), "");
}

TEST(Join, OneItemHasNoSeparator) {
    const std::array<uint64_t, 1> one{4096};
    EXPECT_EQ(join(one, ", ", [](uint64_t v) { return std::to_string(v); }), "4096");
}

TEST(Join, SeparatorOnlyBetweenItemsAndProjectionApplied) {
    struct Named {
        int id;
        const char* name;
    };
    const std::array items{Named{1, "Q4_K"}, Named{2, "Q5_K"}, Named{3, "Q6_K"}};
    EXPECT_EQ(join(items, ", ", [](const Named& n) { return n.name; }), "Q4_K, Q5_K, Q6_K");
    EXPECT_EQ(join(items, "|", [](const Named& n) { return std::to_string(n.id); }), "1|2|3");
}

TEST(Join, EmptyItemsStillGetSeparators) {
    // A projection that yields "" must not swallow a separator (a plain "out.empty()" test would).
    const std::vector<std::string> items{"", "a", ""};
    EXPECT_EQ(join(items, ",", [](const std::string& s) { return s; }), ",a,");
}

}  // namespace
}  // namespace orcd
