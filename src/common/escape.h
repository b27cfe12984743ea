#pragma once
// Makes untrusted text safe to print on a terminal: control characters (C0, DEL, and the C1 range as UTF-8 encodes
// it) become visible escapes, so that a model file's metadata cannot move the cursor, change colours or rewrite what
// the user sees. Printable bytes, including every other UTF-8 sequence, pass unchanged; a backslash stays a backslash
// (the output is for reading, not for parsing back).
#include <string>
#include <string_view>

namespace orcd {

// "\n" -> "\\n", "\t" -> "\\t", "\r" -> "\\r", other C0 and DEL -> "\\xNN", U+0080..U+009F -> "\\u0080".."\\u009f".
std::string escape_control(std::string_view s);

}  // namespace orcd
