// "Did you mean": the edit distance against hand-counted cases, the choice of candidates, and the message a user sees
// from the real binary for a mistyped flag and subcommand.
#include <gtest/gtest.h>

#include "cli/suggest.h"
#include "run.h"

namespace {

using orcd::cli::closest;
using orcd::cli::edit_distance;

TEST(Suggest, EditDistance) {
    EXPECT_EQ(edit_distance("", ""), 0u);
    EXPECT_EQ(edit_distance("abc", ""), 3u);
    EXPECT_EQ(edit_distance("kitten", "sitting"), 3u);  // k->s, e->i, +g
    EXPECT_EQ(edit_distance("temp", "tmep"), 1u);       // one adjacent transposition
    EXPECT_EQ(edit_distance("top_k", "top-k"), 1u);
    EXPECT_EQ(edit_distance("ca", "abc"), 3u);  // the restricted (OSA) distance, not Damerau's 2
}

TEST(Suggest, Closest) {
    const std::vector<std::string> names{"--temp", "--top-k", "--top-p", "--threads", "-t", "--model", "generate"};
    EXPECT_EQ(closest("--tmp", names), std::vector<std::string>{"--temp"});
    EXPECT_EQ(closest("--top_k", names), std::vector<std::string>{"--top-k"});             // --top-p is 2 away
    EXPECT_EQ(closest("--top", names), (std::vector<std::string>{"--top-k", "--top-p"}));  // a prefix of both
    EXPECT_EQ(closest("--mod", names), std::vector<std::string>{"--model"});               // a prefix
    EXPECT_TRUE(closest("--zzzzzz", names).empty());
    EXPECT_TRUE(closest("--temp", names).empty());  // a known name suggests nothing
    EXPECT_EQ(closest("genrate", names), std::vector<std::string>{"generate"});
}

TEST(Suggest, BinaryShowsSuggestionAndUsage) {
    const std::string orcd = ORCD_BINARY;
    auto r = orcd::test::run(orcd + " generate -m x.gguf -p hi --tmp 0 2>&1");
    EXPECT_NE(r.exit_code, 0);
    EXPECT_NE(r.out.find("did you mean --temp (for --tmp)?"), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("Usage: orcd generate [OPTIONS]"), std::string::npos) << r.out;
    r = orcd::test::run(orcd + " genrate 2>&1");
    EXPECT_NE(r.exit_code, 0);
    EXPECT_NE(r.out.find("did you mean generate (for genrate)?"), std::string::npos) << r.out;
    // A deprecated spelling (--ctx, one edit from --ctz) is accepted but never suggested (the usage lists it apart).
    r = orcd::test::run(orcd + " generate -m x.gguf -p hi --ctz 64 2>&1");
    EXPECT_NE(r.exit_code, 0);
    EXPECT_EQ(r.out.find("did you mean --ctx"), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("Deprecated (removed in the next release):\n  --ctx UINT"), std::string::npos) << r.out;
}

}  // namespace
