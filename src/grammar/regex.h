#pragma once
// A JSON Schema `pattern` (the regular-expression subset below) translated to a GBNF expression that matches the
// JSON string *contents* (between the quotes) of the strings the pattern accepts.
//
// Supported: literals, `.`, classes `[...]`/`[^...]` with ranges, escapes \d \D \w \W \s \S \n \r \t \f \v \xHH
// \uHHHH and escaped punctuation, groups `(...)` `(?:...)`, alternation, quantifiers * + ? {m} {m,} {m,n} (a trailing
// `?` for laziness changes nothing here), `^` at the start and `$` at the end. A pattern without `^` (`$`) may be
// preceded (followed) by anything, as JSON Schema's unanchored search means. Refused with the construct named:
// backreferences, lookaround, word boundaries, Unicode properties, anchors elsewhere.
//
// Output is a subset of the matching strings: `\d` and `\w` are ASCII, and characters that JSON must escape are
// produced only as `\"`, `\\`, `\n`, `\r`, `\t`, `\f` escapes (other control characters are left out).
#include <string>
#include <string_view>

#include "grammar/grammar.h"

namespace orcd::grammar {

// `max_repeat` > 0 bounds the unbounded quantifiers (* + {m,}) and the free text around an unanchored pattern to that
// many repeats (a subset; see SchemaOptions). Errors: InvalidArgument naming the construct and its offset.
std::string regex_to_gbnf(std::string_view pattern, const GrammarLimits& limits, uint32_t max_repeat = 0);

}  // namespace orcd::grammar
