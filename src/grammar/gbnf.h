#pragma once
// GBNF, the grammar notation of llama.cpp, parsed into a byte-level Grammar:
//
//   root  ::= "{" ws pair ("," ws pair)* "}"     # a rule: name ::= alternatives; the start rule is "root"
//   pair  ::= [a-z]+ ":" ws ( num | "null" )      # literals, classes, rule references, groups
//   num   ::= "-"? [0-9]{1,10} ("." [0-9]+)?      # postfix * + ? {m} {m,} {m,n}
//   ws    ::= [ \t\n]*
//
// Literals and classes take the escapes \n \r \t \\ \" \[ \] \- \^ \xHH \uHHHH \UHHHHHHHH; [^...] negates a class
// and `.` is any character. Characters are Unicode code points, matched as their UTF-8 bytes. A rule ends at the end
// of its line except inside parentheses; `#` starts a comment. Errors name the line and column, what was expected
// and what was found (ErrorCode::InvalidArgument).
#include <string_view>

#include "grammar/grammar.h"

namespace orcd::grammar {

Grammar parse_gbnf(std::string_view text, const GrammarLimits& limits = {});

}  // namespace orcd::grammar
