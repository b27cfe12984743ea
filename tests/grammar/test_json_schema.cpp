#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>
#include <sstream>

#include "common/error.h"
#include "grammar/gbnf.h"
#include "grammar/json_schema.h"
#include "grammar/matcher.h"
#include "grammar/regex.h"

using namespace orcd;
using namespace orcd::grammar;

namespace {

std::shared_ptr<const Grammar> schema_grammar(std::string_view schema) {
    return std::make_shared<const Grammar>(compile_json_schema(schema));
}

std::string refusal(std::string_view schema, const GrammarLimits& limits = {}) {
    try {
        compile_json_schema(schema, limits);
    } catch (const Error& e) {
        EXPECT_EQ(e.code(), ErrorCode::InvalidArgument);
        return e.what();
    }
    ADD_FAILURE() << "no refusal for: " << schema;
    return {};
}

}  // namespace

TEST(JsonSchema, BasicTypes) {
    const auto g = schema_grammar(R"({"type":"object","properties":{"name":{"type":"string"},"age":{"type":"integer"}},
                                      "required":["name"],"additionalProperties":false})");
    EXPECT_TRUE(matches(g, R"({"name":"Bob"})"));
    EXPECT_TRUE(matches(g, R"({"name":"Bob","age":42})"));
    EXPECT_TRUE(matches(g, "{ \"name\" : \"B\\u00e9b\\n\",\n  \"age\": -3 }"));
    EXPECT_FALSE(matches(g, R"({"age":42})"));
    EXPECT_FALSE(matches(g, R"({"name":"Bob","age":4.5})"));
    EXPECT_FALSE(matches(g, R"({"name":"Bob","x":1})"));
    EXPECT_FALSE(matches(g, R"( {"name":"Bob"})"));    // no whitespace around the top-level value
    EXPECT_FALSE(matches(g, "{\"name\":\"a\x01\"}"));  // control characters must be escaped
    EXPECT_FALSE(matches(g, R"({"name":"\ud800"})"));  // lone surrogate escapes are never produced
}

TEST(JsonSchema, OptionalPropertiesAnyOrderOfPresence) {
    const auto g = schema_grammar(R"({"type":"object","properties":{"a":{"type":"null"},"b":{"type":"boolean"},
                                      "c":{"type":"number"}}})");
    for (const char* ok : {"{}", R"({"a":null})", R"({"b":true})", R"({"c":1.5e3})", R"({"a":null,"c":0})",
                           R"({"b":false,"c":-0.25})", R"({"a":null,"b":true,"c":1})"}) {
        EXPECT_TRUE(matches(g, ok)) << ok;
    }
    for (const char* bad : {"{,}", R"({"a":null,})", R"({,"a":null})", R"({"a":null"b":true})", R"({"c":01})"}) {
        EXPECT_FALSE(matches(g, bad)) << bad;
    }
}

TEST(JsonSchema, ArraysEnumConstRefs) {
    const auto arr =
        schema_grammar(R"({"type":"array","items":{"enum":["x",1,null,{"k":[true]}]},"minItems":1,"maxItems":3})");
    EXPECT_TRUE(matches(arr, R"(["x"])"));
    EXPECT_TRUE(matches(arr, R"([1, null, {"k":[true]}])"));
    EXPECT_FALSE(matches(arr, "[]"));
    EXPECT_FALSE(matches(arr, R"(["x","x","x","x"])"));
    EXPECT_FALSE(matches(arr, R"(["y"])"));
    const auto tree = schema_grammar(R"({"$ref":"#/$defs/node","$defs":{"node":{"type":"object",
        "properties":{"v":{"const":7},"kids":{"type":"array","items":{"$ref":"#/$defs/node"}}},"required":["v"]}}})");
    EXPECT_TRUE(matches(tree, R"({"v":7,"kids":[{"v":7},{"v":7,"kids":[]}]})"));
    EXPECT_FALSE(matches(tree, R"({"v":7,"kids":[{"v":8}]})"));
    const auto any = schema_grammar(R"({"anyOf":[{"type":"string","maxLength":2},{"type":"integer"}]})");
    EXPECT_TRUE(matches(any, R"("ab")"));
    EXPECT_TRUE(matches(any, "12"));
    EXPECT_FALSE(matches(any, R"("abc")"));
    const auto obj = schema_grammar(R"({"type":"json_object"})");
    EXPECT_TRUE(matches(obj, R"({"a":[1,{"b":null}],"c":"d"})"));
    EXPECT_FALSE(matches(obj, "[1]"));
}

TEST(JsonSchema, StringFormatsAndPatterns) {
    const auto date = schema_grammar(R"({"type":"string","format":"date"})");
    EXPECT_TRUE(matches(date, R"("2024-01-31")"));
    EXPECT_TRUE(matches(date, R"("2024-04-30")"));
    EXPECT_FALSE(matches(date, R"("2024-04-31")"));
    EXPECT_FALSE(matches(date, R"("2024-02-30")"));
    EXPECT_FALSE(matches(date, R"("2024-13-01")"));
    const auto dt = schema_grammar(R"({"type":"string","format":"date-time"})");
    EXPECT_TRUE(matches(dt, R"("2024-01-31T23:59:59Z")"));
    EXPECT_TRUE(matches(dt, R"("2024-01-31T00:00:00.123+05:30")"));
    EXPECT_FALSE(matches(dt, R"("2024-01-31T24:00:00Z")"));
    EXPECT_FALSE(matches(dt, R"("2024-01-31T10:00:00")"));
    const auto uuid = schema_grammar(R"({"type":"string","format":"uuid"})");
    EXPECT_TRUE(matches(uuid, R"("123e4567-e89b-12d3-a456-426614174000")"));
    EXPECT_FALSE(matches(uuid, R"("123e4567e89b12d3a456426614174000")"));
    const auto pat = schema_grammar(R"({"type":"string","pattern":"^[A-Z]{2}-\\d{3,4}(x|yz)?$"})");
    EXPECT_TRUE(matches(pat, R"("AB-123")"));
    EXPECT_TRUE(matches(pat, R"("AB-1234yz")"));
    EXPECT_FALSE(matches(pat, R"("AB-12")"));
    EXPECT_FALSE(matches(pat, R"("ab-123")"));
    const auto quote = schema_grammar(R"({"type":"string","pattern":"^a\"b\\\\c.$"})");
    EXPECT_TRUE(matches(quote, R"("a\"b\\cz")"));
    const auto unanchored = schema_grammar(R"({"type":"string","pattern":"ab+"})");
    EXPECT_TRUE(matches(unanchored, R"("xxabbby")"));
    EXPECT_FALSE(matches(unanchored, R"("xxa")"));
    const auto len = schema_grammar(R"({"type":"string","minLength":2,"maxLength":3})");
    EXPECT_TRUE(matches(len, R"("é\n")"));
    EXPECT_TRUE(matches(len, R"("abc")"));
    EXPECT_FALSE(matches(len, R"("a")"));
    EXPECT_FALSE(matches(len, R"("abcd")"));
}

TEST(JsonSchema, RefusalsNameKeywordAndPointer) {
    EXPECT_NE(
        refusal(R"({"type":"integer","minimum":3})").find("JSON schema at '#/minimum': unsupported keyword 'minimum'"),
        std::string::npos);
    EXPECT_NE(refusal(R"({"type":"object","properties":{"a":{"type":"array","prefixItems":[]}}})")
                  .find("'#/properties/a/prefixItems': unsupported keyword 'prefixItems'"),
              std::string::npos);
    EXPECT_NE(refusal(R"({"type":"string","format":"email"})").find("unsupported format 'email'"), std::string::npos);
    EXPECT_NE(refusal(R"({"type":"object","additionalProperties":{"type":"string"}})").find("#/additionalProperties"),
              std::string::npos);
    EXPECT_NE(refusal(R"({"$ref":"http://example.com/s.json"})").find("only local references"), std::string::npos);
    EXPECT_NE(refusal(R"({"$ref":"#/$defs/missing"})").find("does not resolve"), std::string::npos);
    EXPECT_NE(refusal(R"({"type":"strin"})").find("unknown type 'strin'"), std::string::npos);
    EXPECT_NE(refusal(R"({"type":"string","pattern":"^(a)\\1$"})").find("#/pattern"), std::string::npos);
    EXPECT_NE(refusal(R"({"type":"string","pattern":"(?=a)b"})").find("lookaround"), std::string::npos);
    EXPECT_NE(refusal(R"({"type":"string","pattern":"a^b"})").find("'^' is only supported at the start"),
              std::string::npos);
    EXPECT_NE(refusal(R"({"type":"string","pattern":"\\bword"})").find("unsupported escape '\\b'"), std::string::npos);
    EXPECT_NE(refusal(R"({"enum":[1,2],"type":"string"})").find("no value of 'enum'/'const'"), std::string::npos);
    EXPECT_NE(refusal(R"({"type":"array","minItems":3,"maxItems":2})").find("'maxItems' is below 'minItems'"),
              std::string::npos);
    EXPECT_NE(refusal(R"({"type":"array","minItems":-1})").find("'minItems' must be >= 0"), std::string::npos);
    EXPECT_NE(refusal(R"(false)").find("matches nothing"), std::string::npos);
    EXPECT_NE(refusal(R"({"type":)").find("not valid JSON"), std::string::npos);
    // A number past double's range is an nlohmann out_of_range, not a parse_error (found by fuzz_json_schema).
    EXPECT_NE(refusal(R"({"maxLength": 1e99999})").find("not valid JSON"), std::string::npos);
    EXPECT_NE(refusal(R"({"type":"string","anyOf":[{"maxLength":1}]})").find("'type' next to 'anyOf'"),
              std::string::npos);
}

TEST(JsonSchema, HostileSchemasHitLimits) {
    // Deep nesting.
    std::string deep;
    for (int i = 0; i < 200; ++i) deep += R"({"type":"array","items":)";
    deep += "true";
    for (int i = 0; i < 200; ++i) deep += "}";
    EXPECT_NE(refusal(deep).find("levels deep"), std::string::npos);
    // Huge enum.
    std::string big = R"({"enum":[)";
    for (int i = 0; i < 5000; ++i) big += (i ? "," : "") + std::to_string(i);
    big += "]}";
    EXPECT_NE(refusal(big).find("exceed the limit of 4096"), std::string::npos);
    // A pattern with a large repetition of a repetition stays small (references), but a bound beyond the limit is
    // refused.
    EXPECT_NE(refusal(R"({"type":"string","pattern":"^(a{1000}){20000}$"})").find("above the limit"),
              std::string::npos);
    // Catastrophic-backtracking patterns cost nothing special: the matcher tracks parses in parallel.
    const auto evil = schema_grammar(R"({"type":"string","pattern":"^(a+)+$"})");
    EXPECT_TRUE(matches(evil, "\"" + std::string(5000, 'a') + "\""));
    EXPECT_FALSE(matches(evil, "\"" + std::string(5000, 'a') + "b\""));
    // A definition that refers to itself without progress is a cycle of tail calls: it terminates, meaning null.
    const auto self =
        schema_grammar(R"({"$ref":"#/$defs/a","$defs":{"a":{"anyOf":[{"$ref":"#/$defs/a"},{"type":"null"}]}}})");
    EXPECT_TRUE(matches(self, "null"));
    EXPECT_FALSE(matches(self, "nul"));
}
