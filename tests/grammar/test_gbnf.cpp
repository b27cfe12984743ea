#include <gtest/gtest.h>

#include <memory>

#include "common/error.h"
#include "grammar/gbnf.h"
#include "grammar/matcher.h"

using namespace orcd;
using namespace orcd::grammar;

namespace {

std::shared_ptr<const Grammar> compile(std::string_view text) {
    return std::make_shared<const Grammar>(parse_gbnf(text));
}

std::string error_of(std::string_view text) {
    try {
        parse_gbnf(text);
    } catch (const Error& e) {
        EXPECT_EQ(e.code(), ErrorCode::InvalidArgument);
        return e.what();
    }
    ADD_FAILURE() << "no error for: " << text;
    return {};
}

struct Case {
    const char* grammar;
    std::vector<std::string> accept, reject;
};

}  // namespace

TEST(Gbnf, AcceptsAndRejectsHandWrittenGrammars) {
    const Case cases[] = {
        {R"(root ::= "yes" | "no")", {"yes", "no"}, {"", "y", "yess", "No"}},
        {R"(root ::= [a-c]+ "!"?)", {"a", "abcabc", "c!"}, {"", "!", "ad", "a!!"}},
        {R"(root ::= [^a-z]*)", {"", "ABC", "123", "é", "日本"}, {"a", "Az"}},
        {R"(root ::= "x"{2,4})", {"xx", "xxx", "xxxx"}, {"x", "xxxxx"}},
        {R"(root ::= ("ab"){3})", {"ababab"}, {"abab", "abababab"}},
        {R"(root ::= "a"{2,} "b")", {"aab", "aaaaab"}, {"ab", "aa"}},
        {R"(root ::= . .)", {"ab", "éz", "日本", "😀x"}, {"a", "abc"}},
        {"root ::= [\\u03b1-\\u03c9]+  # greek lower case\n", {"αβγ", "ω"}, {"a", "Ω"}},
        {R"(root ::= "\x41\u00e9\n\t\"\\")", {"Aé\n\t\"\\"}, {"Ae"}},
        {R"(root ::= [\]\[\-^])", {"]", "[", "-", "^"}, {"a"}},
        // Ambiguity and nesting: balanced parentheses, and two readings of the same text.
        {"root ::= p\np ::= \"(\" p* \")\"\n", {"()", "(())", "(()())"}, {"(", "())", ")("}},
        {R"(root ::= ("a" | "ab") ("b" | "")*)", {"a", "ab", "abbb"}, {"b", "aa"}},
        // A nullable item under a star (a tail cycle) terminates.
        {R"(root ::= ("a"*)* "b")", {"b", "aab"}, {"a", "ba"}},
        // Rules across lines, groups spanning lines, comments.
        {"# comment\nroot ::= (\n  \"a\" |\n  \"b\"\n) tail\ntail ::= \"c\" # trailing\n\n",
         {"ac", "bc"},
         {"c", "abc"}},
        // JSON-like recursion.
        {R"(root ::= value
value ::= "[" (value ("," value)*)? "]" | [0-9]+)",
         {"1", "[]", "[1,[2,[]],33]"},
         {"[", "[1,]", "[,1]", "01a"}},
    };
    for (const auto& c : cases) {
        const auto g = compile(c.grammar);
        for (const auto& s : c.accept) EXPECT_TRUE(matches(g, s)) << c.grammar << " should accept '" << s << "'";
        for (const auto& s : c.reject) EXPECT_FALSE(matches(g, s)) << c.grammar << " should reject '" << s << "'";
    }
}

TEST(Gbnf, MatcherReportsAcceptAndContinuation) {
    Matcher m(compile(R"(root ::= "ab" "c"?)"));
    EXPECT_FALSE(m.accepts());
    EXPECT_TRUE(m.can_continue());
    EXPECT_FALSE(m.advance('x'));  // rejected bytes leave the state as it was
    EXPECT_TRUE(m.advance("ab"));
    EXPECT_TRUE(m.accepts());
    EXPECT_TRUE(m.can_continue());
    const Matcher saved = m;  // copies roll back
    EXPECT_TRUE(m.advance('c'));
    EXPECT_TRUE(m.accepts());
    EXPECT_FALSE(m.can_continue());
    m = saved;
    EXPECT_FALSE(m.advance("cc"));  // all or nothing
    EXPECT_TRUE(m.advance('c'));
}

TEST(Gbnf, DeepRepetitionKeepsConstantStackDepth) {
    Matcher m(compile(R"(root ::= "a"* "b")"));
    for (int i = 0; i < 100000; ++i) ASSERT_TRUE(m.advance('a'));
    EXPECT_EQ(m.stacks().size(), 2u);  // another 'a', or the 'b'
    EXPECT_TRUE(m.advance('b'));
    EXPECT_TRUE(m.accepts());
}

TEST(Gbnf, ErrorsNameLineColumnAndExpectation) {
    EXPECT_NE(error_of("root ::= \"a\"\nfoo = \"b\"").find("2:5: expected '::=' after the rule name 'foo'"),
              std::string::npos);
    EXPECT_NE(error_of("root ::= \"abc").find("1:14: expected '\"' to close the literal, found end of input"),
              std::string::npos);
    EXPECT_NE(error_of("root ::= [a-").find("expected ']' to close the character class"), std::string::npos);
    EXPECT_NE(error_of("root ::= (\"a\"").find("expected ')'"), std::string::npos);
    EXPECT_NE(error_of("root ::= missing").find("rule 'missing' is referenced but never defined"), std::string::npos);
    EXPECT_NE(error_of("start ::= \"a\"").find("no 'root' rule"), std::string::npos);
    EXPECT_NE(error_of("root ::= \"a\"\nroot ::= \"b\"").find("2:"), std::string::npos);
    EXPECT_NE(error_of("root ::= \"\\q\"").find("1:11: expected an escape"), std::string::npos);
    EXPECT_NE(error_of("root ::= [z-a]").find("reversed"), std::string::npos);
    EXPECT_NE(error_of("root ::= \"a\"{3,2}").find("m <= n"), std::string::npos);
    EXPECT_NE(error_of("root ::= * \"a\"").find("'*' must follow an element"), std::string::npos);
    EXPECT_NE(error_of("root ::= \"a\" ) ").find("expected '|', an element or the end of the line"), std::string::npos);
    EXPECT_NE(error_of("root ::= \"\\uD800\"").find("not a Unicode scalar value"), std::string::npos);
    EXPECT_NE(error_of("root ::= root \"a\" | \"b\"").find("rule 'root' is left-recursive"), std::string::npos);
    EXPECT_NE(error_of("root ::= x\nx ::= y? root \"a\"\ny ::= \"b\"").find("left-recursive"), std::string::npos);
}

TEST(Gbnf, LimitsAreEnforced) {
    GrammarLimits small;
    small.max_elems = 1000;
    small.max_nesting = 8;
    small.max_repetition = 100;
    auto err = [&](std::string_view text) -> std::string {
        try {
            parse_gbnf(text, small);
        } catch (const Error& e) {
            return e.what();
        }
        return {};
    };
    EXPECT_NE(err("root ::= \"a\"{101}").find("exceeds the limit 100"), std::string::npos);
    EXPECT_NE(err("root ::= ((((((((((\"a\"))))))))))").find("nested deeper than 8"), std::string::npos);
    // Repetitions go through references, so nesting them does not multiply the automaton's size...
    EXPECT_EQ(err("root ::= a{100}\na ::= b{100}\nb ::= \"xy\"{100}"), "");
    // ...and the element budget is checked as the grammar grows.
    EXPECT_NE(err("root ::= \"a\"{100} \"b\"{100} \"c\"{100} \"d\"{100} \"e\"{100} \"f\"{100} \"g\"{100} "
                  "\"h\"{100} \"i\"{100} \"j\"{100} \"k\"{100}")
                  .find("grammar too large"),
              std::string::npos);
    small.max_source_bytes = 10;
    EXPECT_NE(err("root ::= \"0123456789\"").find("exceeds the limit of 10 bytes"), std::string::npos);
}
