// The template language feature by feature, with expected strings worked out by hand from jinja2's documented
// behaviour, and hostile templates that must fail fast with their specific error.
#include <chrono>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <string>

#include "common/error.h"
#include "template/template.h"

namespace {

using nlohmann::ordered_json;
using orcd::tmpl::RenderOptions;
using orcd::tmpl::Template;

std::string render(const std::string& src, const ordered_json& ctx = ordered_json::object(),
                   const RenderOptions& o = {}) {
    return Template(src, "test.jinja").render(ctx, o);
}

// The message of the Error(ChatTemplate) the template raises, or "no error".
std::string error_of(const std::string& src, const ordered_json& ctx = ordered_json::object(),
                     const RenderOptions& o = {}) {
    try {
        render(src, ctx, o);
    } catch (const orcd::Error& e) {
        EXPECT_EQ(e.code(), orcd::ErrorCode::ChatTemplate);
        return e.what();
    }
    return "no error";
}

TEST(TemplateEngine, WhitespaceControlAsHuggingFaceSetsIt) {
    // trim_blocks: the newline after a block tag goes; lstrip_blocks: indentation before it goes.
    EXPECT_EQ(render("{% if true %}\n  a\n  {% endif %}\nb"), "  a\nb");
    EXPECT_EQ(render("x  {%- if true -%}  y  {%- endif -%}  z"), "xyz");
    EXPECT_EQ(render("a\n{{- 'b' -}}\nc"), "abc");
    EXPECT_EQ(render("a\n  {%+ if true %}b{% endif %}"), "a\n  b");
    EXPECT_EQ(render("a\n"), "a");  // one trailing newline dropped
    EXPECT_EQ(render("a\n\n"), "a\n");
    EXPECT_EQ(render("a\r\nb"), "a\nb");
    EXPECT_EQ(render("{# comment #}\nx"), "x");
    EXPECT_EQ(render("{% raw %}{{ not rendered }}{% endraw %}"), "{{ not rendered }}");
}

TEST(TemplateEngine, PythonSemanticsOfValues) {
    EXPECT_EQ(render("{{ {'a': 1, 'b': [true, none, 'x\\'y']} | string }}"), "{'a': 1, 'b': [True, None, \"x'y\"]}");
    EXPECT_EQ(render("{{ 7 // 2 }} {{ -7 // 2 }} {{ -7 % 3 }} {{ 7 / 2 }} {{ 2 ** 10 }} {{ 1.0 }} {{ 1e20 }}"),
              "3 -4 2 3.5 1024 1.0 1e+20");
    EXPECT_EQ(render("{{ 'ab' * 3 }} {{ [1] + [2] }} {{ 'a' ~ 1 ~ none }} {{ (1,) }} {{ 1 == 1.0 }}"),
              "ababab [1, 2] a1None (1,) True");
    EXPECT_EQ(render("[{{ missing }}]{{ missing is defined }}{{ none is none }}"), "[]FalseTrue");
    EXPECT_EQ(render("{{ x.content }}", {{"x", {{"content", "hi"}}}}), "hi");
}

// The three escaping tables (the lexer's one-letter escapes, tojson's JSON escapes, the escape filter's HTML
// entities), entry by entry; expected strings from jinja2 3 with tojson as json.dumps(ensure_ascii=False).
TEST(TemplateEngine, EscapeTablesAsPythonAndJinjaWriteThem) {
    EXPECT_EQ(render(R"({{ 'a\tb\nc\\d\'e\"f' | tojson }})"), R"("a\tb\nc\\d'e\"f")");
    EXPECT_EQ(render(R"({{ '\a\b\f\v\r' | tojson }})"), R"("\u0007\b\f\u000b\r")");
    EXPECT_EQ(render(R"({{ '<a href="x">&\'</a>' | escape }})"), "&lt;a href=&#34;x&#34;&gt;&amp;&#39;&lt;/a&gt;");
    EXPECT_EQ(render(R"({{ 'x\qy' }}|{{ "\'\"" }})"), R"(x\qy|'")");
}

TEST(TemplateEngine, TojsonIsJsonDumpsWithoutAsciiEscaping) {
    const ordered_json ctx = {{"v", {{"b", "é\n\"<"}, {"a", {1, 2.5, nullptr}}}}};
    EXPECT_EQ(render("{{ v | tojson }}", ctx), "{\"b\": \"é\\n\\\"<\", \"a\": [1, 2.5, null]}");
    EXPECT_EQ(render("{{ v | tojson(indent=2) }}", ctx),
              "{\n  \"b\": \"é\\n\\\"<\",\n  \"a\": [\n    1,\n    2.5,\n    null\n  ]\n}");
}

TEST(TemplateEngine, StatementsLoopsAndNamespaces) {
    EXPECT_EQ(render("{% for x in [1, 2, 3] %}{{ loop.index }}{{ x }}{% if not loop.last %},{% endif %}{% endfor %}"),
              "11,22,33");
    EXPECT_EQ(render("{% for x in [] %}a{% else %}empty{% endfor %}"), "empty");
    EXPECT_EQ(render("{% for x in range(10) %}{% if x == 3 %}{% break %}{% endif %}{{ x }}{% endfor %}"), "012");
    EXPECT_EQ(render("{% for x in range(5) if x is odd %}{{ x }}{{ loop.length }}{% endfor %}"), "1232");
    EXPECT_EQ(render("{% set ns = namespace(n=0) %}{% for x in range(4) %}{% set ns.n = ns.n + x %}{% endfor %}"
                     "{{ ns.n }}"),
              "6");
    // A plain set inside a loop does not leak out of it.
    EXPECT_EQ(render("{% set n = 1 %}{% for x in range(3) %}{% set n = x %}{% endfor %}{{ n }}"), "1");
    EXPECT_EQ(render("{% for k, v in {'a': 1, 'b': 2}.items() %}{{ k }}={{ v }};{% endfor %}"), "a=1;b=2;");
    EXPECT_EQ(render("{% if 0 %}a{% elif '' %}b{% else %}c{% endif %}"), "c");
    EXPECT_EQ(render("{% set x %}in{{ 1 }}{% endset %}[{{ x }}]"), "[in1]");
    EXPECT_EQ(render("{% filter upper %}abc{% endfilter %}"), "ABC");
    EXPECT_EQ(render("{% generation %}kept{% endgeneration %}"), "kept");
}

TEST(TemplateEngine, MacrosAndCallBlocks) {
    EXPECT_EQ(render("{% macro m(a, b='B') %}{{ a }}{{ b }}{% endmacro %}{{ m(1) }}{{ m(1, b=2) }}"), "1B12");
    EXPECT_EQ(render("{% macro w() %}<{{ caller() }}>{% endmacro %}{% call w() %}in{% endcall %}"), "<in>");
    EXPECT_EQ(render("{% macro f(n) %}{{ n }}{% if n > 0 %}{{ f(n - 1) }}{% endif %}{% endmacro %}{{ f(3) }}"), "3210");
}

TEST(TemplateEngine, FiltersTestsAndMethods) {
    EXPECT_EQ(
        render("{{ '  Hi  ' | trim }}|{{ 'a b' | upper }}|{{ [3, 1, 2] | sort | join(',') }}|{{ 'abc' | length }}"),
        "Hi|A B|1,2,3|3");
    EXPECT_EQ(render("{{ [{'r': 'u'}, {'r': 'a'}, {'r': 'u'}] | selectattr('r', 'equalto', 'u') | list | length }}"),
              "2");
    EXPECT_EQ(render("{{ [{'r': 'u'}, {'r': 'a'}] | map(attribute='r') | join }}"), "ua");
    EXPECT_EQ(
        render("{{ undefined_thing | default('d') }}{{ '' | default('e', true) }}{{ [1, 1, 2] | unique | list }}"),
        "de[1, 2]");
    EXPECT_EQ(render("{{ 'a\nb' | indent(2) }}|{{ 'a\nb' | indent(2, true) }}"), "a\n  b|  a\n  b");
    EXPECT_EQ(render("{{ ' x '.strip() }}{{ 'a,b'.split(',') }}{{ 'ab'.startswith('a') }}{{ 'ab'.replace('b', 'c') }}"),
              "x['a', 'b']Trueac");
    EXPECT_EQ(render("{{ {'k': 1}.get('k') }}{{ {'k': 1}.get('z', 5) }}{{ {'k': 1}.get('z') }}"), "15None");
    EXPECT_EQ(render("{{ 'héllo'[1:3] }}{{ [1, 2, 3][::-1] }}{{ 'abc'[-1] }}"), "él[3, 2, 1]c");
    EXPECT_EQ(
        render("{{ 1 is number }}{{ 'a' is string }}{{ {} is mapping }}{{ [] is iterable }}{{ 3 is divisibleby 3 }}"),
        "TrueTrueTrueTrueTrue");
    EXPECT_EQ(render("{{ 'b' in 'abc' }}{{ 2 in [1, 2] }}{{ 'k' in {'k': 1} }}{{ 'z' not in 'abc' }}"),
              "TrueTrueTrueTrue");
}

TEST(TemplateEngine, StrftimeNowWithAFixedDate) {
    RenderOptions o;
    o.date = "2026-07-26";
    EXPECT_EQ(render("{{ strftime_now('%d %b %Y %H:%M %A') }}", ordered_json::object(), o), "26 Jul 2026 00:00 Sunday");
}

TEST(TemplateEngine, PythonTypeErrorsRaise) {
    EXPECT_NE(error_of("{{ 'a' + none }}").find("can only concatenate str"), std::string::npos);
    EXPECT_NE(error_of("{{ 'a' + {} }}").find("can only concatenate str"), std::string::npos);
    EXPECT_NE(error_of("{% for x in none %}{% endfor %}").find("'NoneType' object is not iterable"), std::string::npos);
    EXPECT_NE(error_of("{{ none.strip() }}").find("has no attribute 'strip'"), std::string::npos);
    EXPECT_NE(error_of("{{ missing.strip() }}").find("'missing' is undefined"), std::string::npos);
    EXPECT_NE(error_of("{{ messages.append(1) }}", {{"messages", ordered_json::array()}}).find("unsafe"),
              std::string::npos);
    // raise_exception's message and the line it was raised on.
    EXPECT_EQ(error_of("line one\n{{ raise_exception('Roles must alternate') }}"),
              "template test.jinja line 2: Roles must alternate");
}

TEST(TemplateEngine, SyntaxErrorsNameTheLine) {
    EXPECT_EQ(error_of("a\n{% if x %}b"),
              "template test.jinja line 2: unexpected end of template, expected 'elif' "
              "or 'else' or 'endif'");
    EXPECT_NE(error_of("{{ 1 + }}").find("line 1"), std::string::npos);
    EXPECT_NE(error_of("{% include 'other.jinja' %}").find("cannot load other templates"), std::string::npos);
    EXPECT_NE(error_of("{{ 'unterminated }}").find("unterminated string"), std::string::npos);
}

TEST(TemplateHostile, InfiniteLoopIsBoundedByTheRangeLimit) {
    EXPECT_NE(error_of("{% for x in range(10**9) %}{{ x }}{% endfor %}").find("range too big"), std::string::npos);
}

// Limits other than wall time are tested with the time limit out of reach, so that a loaded machine cannot change
// which limit fires first.
RenderOptions without_time_limit() {
    RenderOptions o;
    o.limits.max_time = std::chrono::hours(1);
    return o;
}

TEST(TemplateHostile, NestedLoopsAreBoundedByTheIterationLimit) {
    const std::string e = error_of("{% for a in range(100000) %}{% for b in range(100000) %}{% endfor %}{% endfor %}",
                                   ordered_json::object(), without_time_limit());
    EXPECT_NE(e.find("loop iterations"), std::string::npos) << e;
}

TEST(TemplateHostile, ExponentialStringGrowthIsBounded) {
    const std::string e = error_of(
        "{% set ns = namespace(s='ab') %}{% for i in range(64) %}"
        "{% set ns.s = ns.s ~ ns.s %}{% endfor %}{{ ns.s | length }}",
        ordered_json::object(), without_time_limit());
    EXPECT_NE(e.find("limit of"), std::string::npos) << e;
    EXPECT_NE(error_of("{{ 'x' * 10**12 }}").find("limit of"), std::string::npos);
}

TEST(TemplateHostile, OutputSizeIsBounded) {
    RenderOptions o = without_time_limit();
    o.limits.max_output_bytes = 1000;
    const std::string e = error_of("{% for i in range(100000) %}0123456789{% endfor %}", ordered_json::object(), o);
    EXPECT_NE(e.find("output exceeds"), std::string::npos) << e;
}

TEST(TemplateHostile, RecursiveMacroIsBounded) {
    const std::string e = error_of("{% macro f(n) %}{{ f(n + 1) }}{% endmacro %}{{ f(0) }}", ordered_json::object(),
                                   without_time_limit());
    EXPECT_NE(e.find("macro calls nested more than"), std::string::npos) << e;
}

TEST(TemplateHostile, DeeplyNestedSourceIsRefusedByTheParser) {
    const std::string parens = "{{ " + std::string(100000, '(') + "1" + std::string(100000, ')') + " }}";
    EXPECT_NE(error_of(parens).find("nested too deeply"), std::string::npos);
    const std::string brackets = "{{ " + std::string(100000, '[') + std::string(100000, ']') + " }}";
    EXPECT_NE(error_of(brackets).find("nested too deeply"), std::string::npos);
    std::string ifs;
    for (int i = 0; i < 10000; ++i) ifs += "{% if true %}";
    EXPECT_NE(error_of(ifs).find("nested too deeply"), std::string::npos);
    EXPECT_NE(error_of("{{ " + std::string(100000, '-') + "1 }}").find("nested too deeply"), std::string::npos);
}

TEST(TemplateHostile, HugeTemplateIsRefused) {
    const std::string big(1 << 20, 'x');
    EXPECT_NE(error_of(big).find("larger than the limit"), std::string::npos);
}

TEST(TemplateHostile, WallTimeIsBounded) {
    RenderOptions o;
    o.limits.max_time = std::chrono::milliseconds(0);  // already past the deadline at the first check
    const std::string e = error_of("{% for i in range(100000) %}{% endfor %}", ordered_json::object(), o);
    EXPECT_NE(e.find("longer than the limit"), std::string::npos) << e;
}

}  // namespace
