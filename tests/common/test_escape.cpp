// Terminal-safe printing of untrusted strings (issue 13 row 14): expected strings written by hand from the escape
// rules in common/escape.h.
#include <gtest/gtest.h>

#include "common/escape.h"

namespace orcd {
namespace {

TEST(EscapeControl, PrintableTextAndUtf8PassUnchanged) {
    EXPECT_EQ(escape_control("Qwen2.5 0.5B Instruct"), "Qwen2.5 0.5B Instruct");
    EXPECT_EQ(escape_control("\xe4\xbd\xa0\xe5\xa5\xbd \xc3\xa9"), "\xe4\xbd\xa0\xe5\xa5\xbd \xc3\xa9");  // 你好 é
    EXPECT_EQ(escape_control(""), "");
}

TEST(EscapeControl, TerminalEscapesBecomeVisible) {
    // Clear screen, home the cursor, red text: the kind of sequence a hostile general.name could carry.
    EXPECT_EQ(escape_control("\x1b[2J\x1b[H\x1b[31mevil"), "\\x1b[2J\\x1b[H\\x1b[31mevil");
    EXPECT_EQ(escape_control("a\nb\tc\rd"), "a\\nb\\tc\\rd");
    EXPECT_EQ(escape_control(std::string_view("\0\x07\x7f", 3)), "\\x00\\x07\\x7f");
    // The 8-bit CSI U+009B as UTF-8, and the end of the C1 range; U+00A0 is printable and stays.
    EXPECT_EQ(escape_control("\xc2\x9b"
                             "31m \xc2\x80 \xc2\xa0"),
              "\\u009b31m \\u0080 \xc2\xa0");
    EXPECT_EQ(escape_control("\xc2"), "\xc2");  // a truncated sequence is not a control
}

}  // namespace
}  // namespace orcd
