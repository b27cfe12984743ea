#pragma once
// Shared by the grammar fuzzers: limits small enough that any input finishes quickly, and a matcher run over bytes
// derived from the input, so that compiled grammars are exercised as well as parsed.
#include <cstddef>
#include <memory>
#include <string_view>

#include "common/error.h"
#include "grammar/grammar.h"
#include "grammar/matcher.h"

namespace fuzz_grammar {

inline orcd::grammar::GrammarLimits limits() {
    orcd::grammar::GrammarLimits l;
    l.max_source_bytes = 64 * 1024;
    l.max_elems = 1u << 16;
    l.max_rules = 4096;
    l.max_nesting = 32;
    l.max_repetition = 1000;
    l.max_enum_values = 256;
    l.max_pattern_bytes = 1024;
    return l;
}

// Feeds up to 64 bytes of `text` to a matcher of `g`; the matcher's own bounds (stacks, frames) may refuse an
// ambiguous grammar with an orcd::Error, which is an answer, not a bug.
inline void exercise(orcd::grammar::Grammar g, std::string_view text) {
    auto grammar = std::make_shared<const orcd::grammar::Grammar>(std::move(g));
    try {
        orcd::grammar::Matcher m(grammar);
        for (size_t i = 0; i < text.size() && i < 64; ++i) {
            orcd::grammar::Matcher copy = m;
            if (!m.advance(static_cast<uint8_t>(text[i]))) break;
            (void)copy.accepts();
            (void)m.can_continue();
        }
    } catch (const orcd::Error&) {}
}

}  // namespace fuzz_grammar
