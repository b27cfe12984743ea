#pragma once
// Assembles a Grammar rule by rule (the GBNF parser's back end): names to rule ids, generated helper rules for
// groups and repetitions, character classes to byte-level alternatives. finish() checks the whole (every referenced
// rule defined, no left recursion, the size limits) and lays the rules out flat.
#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "grammar/grammar.h"

namespace orcd::grammar {

using Sequence = std::vector<Elem>;
using Alternatives = std::vector<Sequence>;

class GrammarBuilder {
public:
    explicit GrammarBuilder(const GrammarLimits& limits) : limits_(limits) {}

    // The id of a named rule, declaring it (undefined) on first use.
    uint32_t rule(std::string_view name);
    // A fresh helper rule named after `base` ("base-3").
    uint32_t helper_rule(std::string_view base);
    bool defined(uint32_t rule) const { return defined_[rule]; }
    const std::string& name(uint32_t rule) const { return names_[rule]; }
    void define(uint32_t rule, Alternatives alts);

    Elem bytes(const ByteSet& set);
    // A code point literal as single-byte elements.
    void append_code_point(uint32_t cp, Sequence& out);
    // A character class (inclusive code point ranges; complemented when `negate`) as one element: a byte set when
    // every member is one byte long, else a reference to a helper rule with one alternative per UTF-8 shape.
    // Throws InvalidArgument when the class is empty.
    Elem char_class(std::vector<std::pair<uint32_t, uint32_t>> ranges, bool negate, std::string_view base);
    // `item` repeated min..max times (max = kUnbounded for no upper bound), appended to `out` through helper rules.
    static constexpr uint32_t kUnbounded = UINT32_MAX;
    void append_repetition(const Sequence& item, uint32_t min, uint32_t max, std::string_view base, Sequence& out);

    // Names the first rule referenced but never defined, and checks left recursion and the limits.
    Grammar finish(std::string_view root_name);

private:
    void count_elems(size_t n);

    const GrammarLimits& limits_;
    std::vector<std::string> names_;
    std::vector<bool> defined_;
    std::vector<Alternatives> rules_;
    std::unordered_map<std::string, uint32_t> by_name_;
    std::vector<ByteSet> sets_;
    size_t n_elems_ = 0;
    uint32_t n_helpers_ = 0;
};

}  // namespace orcd::grammar
