#include "grammar/builder.h"

#include <fmt/format.h>

#include <algorithm>

#include "common/error.h"
#include "grammar/utf8_ranges.h"

namespace orcd::grammar {

namespace {

[[noreturn]] void fail(const std::string& message) { throw Error(ErrorCode::InvalidArgument, message); }

}  // namespace

uint32_t GrammarBuilder::rule(std::string_view name) {
    auto it = by_name_.find(std::string(name));
    if (it != by_name_.end()) return it->second;
    if (names_.size() >= limits_.max_rules) {
        fail(fmt::format("grammar has more than {} rules", limits_.max_rules));
    }
    const auto id = static_cast<uint32_t>(names_.size());
    names_.emplace_back(name);
    defined_.push_back(false);
    rules_.emplace_back();
    by_name_.emplace(std::string(name), id);
    return id;
}

uint32_t GrammarBuilder::helper_rule(std::string_view base) {
    // GBNF names never contain '~', so helper names cannot collide with a user's rules.
    return rule(fmt::format("{}~{}", base, ++n_helpers_));
}

void GrammarBuilder::count_elems(size_t n) {
    n_elems_ += n;
    if (n_elems_ > limits_.max_elems) {
        fail(fmt::format("grammar too large: more than {} elements after expanding repetitions", limits_.max_elems));
    }
}

void GrammarBuilder::define(uint32_t rule, Alternatives alts) {
    size_t n = 0;
    for (const auto& a : alts) n += a.size() + 1;
    count_elems(n);
    rules_[rule] = std::move(alts);
    defined_[rule] = true;
}

Elem GrammarBuilder::bytes(const ByteSet& set) {
    auto it = std::find(sets_.begin(), sets_.end(), set);
    if (it == sets_.end()) {
        sets_.push_back(set);
        it = sets_.end() - 1;
    }
    return {Elem::Kind::Bytes, static_cast<uint32_t>(it - sets_.begin())};
}

void GrammarBuilder::append_code_point(uint32_t cp, Sequence& out) {
    std::vector<uint8_t> utf8;
    append_utf8(cp, utf8);
    count_elems(utf8.size());
    for (uint8_t b : utf8) {
        ByteSet s;
        s.set(b);
        out.push_back(bytes(s));
    }
}

Elem GrammarBuilder::char_class(std::vector<std::pair<uint32_t, uint32_t>> ranges, bool negate, std::string_view base) {
    const auto cps = normalize_ranges(std::move(ranges), negate);
    ByteSet single;
    bool any_single = false;
    Alternatives multi;
    for (auto [lo, hi] : cps) {
        for (const auto& seq : utf8_sequences(lo, hi)) {
            if (seq.size() == 1) {
                single.set_range(seq[0].lo, seq[0].hi);
                any_single = true;
                continue;
            }
            Sequence alt;
            for (const auto& r : seq) {
                ByteSet s;
                s.set_range(r.lo, r.hi);
                alt.push_back(bytes(s));
            }
            multi.push_back(std::move(alt));
        }
    }
    if (!any_single && multi.empty()) fail(fmt::format("character class in rule '{}' matches nothing", base));
    if (multi.empty()) return bytes(single);
    if (any_single) multi.insert(multi.begin(), Sequence{bytes(single)});
    const uint32_t r = helper_rule(base);
    define(r, std::move(multi));
    return {Elem::Kind::Ref, r};
}

void GrammarBuilder::append_repetition(const Sequence& item, uint32_t min, uint32_t max, std::string_view base,
                                       Sequence& out) {
    if (max != kUnbounded && (max < min || max > limits_.max_repetition)) {
        fail(fmt::format("repetition {{{},{}}} in rule '{}': the bounds must satisfy m <= n <= {}", min, max, base,
                         limits_.max_repetition));
    }
    if (min > limits_.max_repetition) {
        fail(fmt::format("repetition {{{},}} in rule '{}' exceeds the limit {}", min, base, limits_.max_repetition));
    }
    // The item is referenced through one rule so that each copy costs one element.
    Elem one;
    if (item.size() == 1) {
        one = item[0];
    } else {
        const uint32_t r = helper_rule(base);
        define(r, {item});
        one = {Elem::Kind::Ref, r};
    }
    count_elems(min);
    for (uint32_t i = 0; i < min; ++i) out.push_back(one);
    if (max == kUnbounded) {
        // star ::= item star | ""  (right recursion: the matcher drops a frame whose return is the rule's end)
        const uint32_t star = helper_rule(base);
        define(star, {{one, {Elem::Kind::Ref, star}}, {}});
        out.push_back({Elem::Kind::Ref, star});
        return;
    }
    if (max == min) return;
    // opt_k ::= item opt_{k-1} | ""  nested so that at most max - min more items follow.
    uint32_t inner = UINT32_MAX;
    for (uint32_t k = 0; k < max - min; ++k) {
        const uint32_t r = helper_rule(base);
        Sequence s{one};
        if (inner != UINT32_MAX) s.push_back({Elem::Kind::Ref, inner});
        define(r, {std::move(s), {}});
        inner = r;
    }
    out.push_back({Elem::Kind::Ref, inner});
}

Grammar GrammarBuilder::finish(std::string_view root_name) {
    auto root_it = by_name_.find(std::string(root_name));
    if (root_it == by_name_.end() || !defined_[root_it->second]) {
        fail(fmt::format("grammar has no '{}' rule", root_name));
    }
    for (size_t r = 0; r < names_.size(); ++r) {
        if (!defined_[r]) fail(fmt::format("rule '{}' is referenced but never defined", names_[r]));
    }
    const size_t n = rules_.size();

    // Nullable rules, by propagation: an alternative is nullable once every element in it is a nullable rule, so
    // each alternative counts its elements not yet known nullable (linear in the grammar's size).
    std::vector<bool> nullable(n, false);
    {
        std::vector<uint32_t> pending;  // per alternative (numbered across all rules)
        std::vector<uint32_t> alt_rule;
        std::vector<std::vector<uint32_t>> used_in(n);  // rule -> alternatives mentioning it (once per mention)
        std::vector<uint32_t> work;
        for (uint32_t r = 0; r < n; ++r) {
            for (const auto& alt : rules_[r]) {
                const auto a = static_cast<uint32_t>(pending.size());
                const bool has_bytes =
                    std::any_of(alt.begin(), alt.end(), [](const Elem& e) { return e.kind != Elem::Kind::Ref; });
                pending.push_back(has_bytes ? UINT32_MAX : static_cast<uint32_t>(alt.size()));
                alt_rule.push_back(r);
                if (has_bytes) continue;
                for (const auto& e : alt) used_in[e.arg].push_back(a);
                if (alt.empty() && !nullable[r]) {
                    nullable[r] = true;
                    work.push_back(r);
                }
            }
        }
        while (!work.empty()) {
            const uint32_t r = work.back();
            work.pop_back();
            for (uint32_t a : used_in[r]) {
                if (--pending[a] == 0 && !nullable[alt_rule[a]]) {
                    nullable[alt_rule[a]] = true;
                    work.push_back(alt_rule[a]);
                }
            }
        }
    }
    // Left edges: A -> B when B can be the first thing A expands to. An edge "pushes" when something follows B in
    // the alternative (the matcher then keeps a return frame). A cycle through a pushing edge would grow the stack
    // forever without consuming a byte: that is left recursion, refused. Cycles of tail edges only (such as the
    // repetition of something nullable) are harmless: the matcher's expansion visits each stack once.
    struct Edge {
        uint32_t to;
        bool push;
    };
    std::vector<std::vector<Edge>> edges(n);
    for (size_t r = 0; r < n; ++r) {
        for (const auto& alt : rules_[r]) {
            for (size_t i = 0; i < alt.size(); ++i) {
                if (alt[i].kind != Elem::Kind::Ref) break;
                edges[r].push_back({alt[i].arg, i + 1 < alt.size()});
                if (!nullable[alt[i].arg]) break;
            }
        }
    }
    // Strongly connected components (Kosaraju, iterative).
    std::vector<uint32_t> order;
    std::vector<uint8_t> seen(n, 0);
    for (uint32_t s = 0; s < n; ++s) {
        if (seen[s]) continue;
        std::vector<std::pair<uint32_t, size_t>> st{{s, 0}};
        seen[s] = 1;
        while (!st.empty()) {
            auto& [v, i] = st.back();
            if (i < edges[v].size()) {
                const uint32_t w = edges[v][i++].to;
                if (!seen[w]) {
                    seen[w] = 1;
                    st.emplace_back(w, 0);
                }
            } else {
                order.push_back(v);
                st.pop_back();
            }
        }
    }
    std::vector<std::vector<uint32_t>> reverse(n);
    for (uint32_t v = 0; v < n; ++v) {
        for (const auto& e : edges[v]) reverse[e.to].push_back(v);
    }
    std::vector<uint32_t> comp(n, UINT32_MAX);
    uint32_t n_comp = 0;
    for (auto it = order.rbegin(); it != order.rend(); ++it) {
        if (comp[*it] != UINT32_MAX) continue;
        std::vector<uint32_t> st{*it};
        comp[*it] = n_comp;
        while (!st.empty()) {
            const uint32_t v = st.back();
            st.pop_back();
            for (uint32_t w : reverse[v]) {
                if (comp[w] == UINT32_MAX) {
                    comp[w] = n_comp;
                    st.push_back(w);
                }
            }
        }
        ++n_comp;
    }
    for (uint32_t v = 0; v < n; ++v) {
        for (const auto& e : edges[v]) {
            if (e.push && comp[e.to] == comp[v]) {
                fail(
                    fmt::format("rule '{}' is left-recursive (it can reach itself before matching any character); "
                                "rewrite it with repetition",
                                names_[v]));
            }
        }
    }

    Grammar g;
    g.root = root_it->second;
    g.rule_names = names_;
    g.byte_sets = sets_;
    g.rule_alts.resize(n);
    g.elems.reserve(n_elems_);
    for (size_t r = 0; r < n; ++r) {
        for (const auto& alt : rules_[r]) {
            g.rule_alts[r].push_back(static_cast<uint32_t>(g.elems.size()));
            g.elems.insert(g.elems.end(), alt.begin(), alt.end());
            g.elems.push_back({Elem::Kind::End, 0});
        }
    }
    return g;
}

}  // namespace orcd::grammar
