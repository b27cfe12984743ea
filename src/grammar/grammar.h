#pragma once
// A compiled grammar: context-free rules whose terminals are sets of bytes. Character classes and literals are
// expanded to UTF-8 byte sequences when the grammar is built, so everything downstream (the matcher, the token
// masks) works on bytes, which is what a tokenizer's pieces are.
//
// Layout: every alternative of every rule is a run of elements in `elems`, closed by an End element. A position in
// the grammar is an index into `elems`; that is what the matcher keeps on its stacks.
#include <array>
#include <cstdint>
#include <string>
#include <vector>

namespace orcd::grammar {

// A set of byte values.
struct ByteSet {
    std::array<uint64_t, 4> bits{};
    bool test(uint8_t b) const { return (bits[b >> 6] >> (b & 63)) & 1; }
    void set(uint8_t b) { bits[b >> 6] |= uint64_t{1} << (b & 63); }
    void set_range(uint8_t lo, uint8_t hi) {
        for (unsigned b = lo; b <= hi; ++b) set(static_cast<uint8_t>(b));
    }
    bool operator==(const ByteSet&) const = default;
};

struct Elem {
    enum class Kind : uint8_t { End, Bytes, Ref };
    Kind kind = Kind::End;
    uint32_t arg = 0;  // Bytes: index into Grammar::byte_sets; Ref: rule index
};

// Bounds on what a grammar (or a schema compiled to one) may cost. Each is checked where it could be exceeded and
// reported with a specific error, so that hostile input is refused instead of exhausting time or memory.
struct GrammarLimits {
    size_t max_source_bytes = 1u << 20;  // GBNF text, schema text
    size_t max_elems = 1u << 20;         // elements of the compiled grammar after expanding repetitions
    size_t max_rules = 1u << 16;
    uint32_t max_nesting = 64;        // parentheses in GBNF and regular expressions, schema nesting
    uint32_t max_repetition = 10000;  // the bound of {m,n}
    size_t max_enum_values = 4096;    // enum entries in a schema
    size_t max_pattern_bytes = 4096;  // a schema's string pattern
};

struct Grammar {
    std::vector<Elem> elems;
    std::vector<std::vector<uint32_t>> rule_alts;  // per rule: the position of each alternative's first element
    std::vector<std::string> rule_names;
    std::vector<ByteSet> byte_sets;
    uint32_t root = 0;

    size_t n_rules() const { return rule_alts.size(); }
};

}  // namespace orcd::grammar
