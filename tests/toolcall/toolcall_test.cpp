// The tool-call parsers on scripted model replies, whole and streamed in every split, and the format chosen from the
// real templates of ../shared/templates.
#include <gtest/gtest.h>

#include <fstream>
#include <sstream>

#include "shared_files.h"
#include "toolcall/toolcall.h"

namespace orcd::toolcall {
namespace {

void expect_call(const ToolCall& c, std::string_view name, std::string_view args, std::string_view id = "") {
    EXPECT_EQ(c.name, name);
    EXPECT_EQ(c.arguments, args);
    EXPECT_EQ(c.id, id);
}

TEST(ToolCallHermes, OneCallWithContentBefore) {
    Parsed p = parse(Format::Hermes,
                     "Let me look.\n<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\"}}\n"
                     "</tool_call>");
    EXPECT_EQ(p.content, "Let me look.");
    ASSERT_EQ(p.calls.size(), 1u);
    expect_call(p.calls[0], "get_weather", R"({"city":"Paris"})");
}

TEST(ToolCallHermes, TwoCallsAndArgumentsAsAString) {
    Parsed p = parse(Format::Hermes,
                     "<tool_call>\n{\"name\": \"a\", \"arguments\": {}}\n</tool_call>\n<tool_call>\n"
                     "{\"name\": \"b\", \"arguments\": \"{\\\"x\\\": [1, 2]}\"}\n</tool_call>\n");
    EXPECT_EQ(p.content, "");
    ASSERT_EQ(p.calls.size(), 2u);
    expect_call(p.calls[0], "a", "{}");
    expect_call(p.calls[1], "b", R"({"x":[1,2]})");
}

TEST(ToolCallHermes, BrokenJsonStaysContent) {
    const std::string text = "Sure <tool_call>\n{\"name\": \"a\", \"arguments\": {\"x\": }\n</tool_call> done";
    Parsed p = parse(Format::Hermes, text);
    EXPECT_TRUE(p.calls.empty());
    EXPECT_EQ(p.content, text);
    // A call without a name is no call either.
    p = parse(Format::Hermes, "<tool_call>{\"arguments\": {}}</tool_call>");
    EXPECT_TRUE(p.calls.empty());
    EXPECT_EQ(p.content, "<tool_call>{\"arguments\": {}}</tool_call>");
}

TEST(ToolCallHermes, UnclosedBlockWithCompleteJsonCounts) {
    Parsed p = parse(Format::Hermes, "<tool_call>\n{\"name\": \"a\", \"arguments\": {\"k\": \"}\"}}\n");
    ASSERT_EQ(p.calls.size(), 1u);
    expect_call(p.calls[0], "a", R"({"k":"}"})");
}

TEST(ToolCallLlama3, BareJsonWithParameters) {
    Parsed p = parse(Format::Llama3, " {\"name\": \"get_weather\", \"parameters\": {\"city\": \"Oslo\"}}");
    EXPECT_EQ(p.content, "");
    ASSERT_EQ(p.calls.size(), 1u);
    expect_call(p.calls[0], "get_weather", R"({"city":"Oslo"})");
}

TEST(ToolCallLlama3, PythonTagAndSeveralCalls) {
    Parsed p =
        parse(Format::Llama3,
              "<|python_tag|>{\"name\": \"a\", \"parameters\": {\"n\": 1}}; {\"name\": \"b\", \"parameters\": {}}");
    ASSERT_EQ(p.calls.size(), 2u);
    expect_call(p.calls[0], "a", R"({"n":1})");
    expect_call(p.calls[1], "b", "{}");
}

TEST(ToolCallLlama3, PlainTextAndNonCallsStayContent) {
    EXPECT_TRUE(parse(Format::Llama3, "The answer is {42}.").calls.empty());
    EXPECT_EQ(parse(Format::Llama3, "The answer is {42}.").content, "The answer is {42}.");
    // JSON that is not a call (no name) is the reply itself.
    const std::string data = R"({"city": "Oslo", "temp": 3})";
    EXPECT_TRUE(parse(Format::Llama3, data).calls.empty());
    EXPECT_EQ(parse(Format::Llama3, data).content, data);
    // A built-in tool in Python syntax is not JSON: content.
    const std::string py = "<|python_tag|>brave_search.call(query=\"x\")";
    EXPECT_EQ(parse(Format::Llama3, py).content, py);
}

TEST(ToolCallMistral, V03ArrayWithIds) {
    Parsed p = parse(Format::Mistral,
                     "[TOOL_CALLS] [{\"name\": \"a\", \"arguments\": {\"q\": \"x\"}, \"id\": "
                     "\"abcDEF123\"}, {\"name\": \"b\", \"arguments\": {}}]");
    EXPECT_EQ(p.content, "");
    ASSERT_EQ(p.calls.size(), 2u);
    expect_call(p.calls[0], "a", R"({"q":"x"})", "abcDEF123");
    expect_call(p.calls[1], "b", "{}");
}

TEST(ToolCallMistral, NewerNameArgsForm) {
    Parsed p =
        parse(Format::Mistral, "Checking.[TOOL_CALLS]get_weather[ARGS]{\"city\": \"Rome\"}[TOOL_CALLS]b[ARGS]{}");
    EXPECT_EQ(p.content, "Checking.");
    ASSERT_EQ(p.calls.size(), 2u);
    expect_call(p.calls[0], "get_weather", R"({"city":"Rome"})");
    expect_call(p.calls[1], "b", "{}");
}

TEST(ToolCallMistral, BrokenStaysContent) {
    for (std::string text : {"[TOOL_CALLS] [{\"name\": \"a\", \"arguments\": {}", "[TOOL_CALLS] nothing here",
                             "[TOOL_CALLS] [{\"arguments\": {}}]", "no calls at all"}) {
        Parsed p = parse(Format::Mistral, text);
        EXPECT_TRUE(p.calls.empty()) << text;
        EXPECT_EQ(p.content, text);
    }
}

// Streams `text` split at every position (two pieces) and byte by byte: the content that push() lets out plus the
// content of finish() is the whole reply's content, the calls are the same, and no marker text leaks.
void check_stream(Format f, const std::string& text) {
    const Parsed whole = parse(f, text);
    auto run = [&](const std::vector<std::string>& pieces) {
        StreamSplitter s(f);
        std::string streamed;
        for (const auto& p : pieces) streamed += s.push(p);
        Parsed rest = s.finish();
        SCOPED_TRACE(text);
        EXPECT_EQ(rest.calls.size(), whole.calls.size());
        for (size_t i = 0; i < std::min(rest.calls.size(), whole.calls.size()); ++i) {
            EXPECT_EQ(rest.calls[i].name, whole.calls[i].name);
            EXPECT_EQ(rest.calls[i].arguments, whole.calls[i].arguments);
        }
        std::string all = streamed + rest.content;
        if (!whole.calls.empty()) {
            // Whitespace around calls is trimmed in both; compare without it.
            auto strip = [](std::string s) {
                std::erase_if(s, [](char c) { return c == ' ' || c == '\n'; });
                return s;
            };
            EXPECT_EQ(strip(all), strip(whole.content));
        } else {
            EXPECT_EQ(all, whole.content);
        }
    };
    for (size_t cut = 0; cut <= text.size(); ++cut) run({text.substr(0, cut), text.substr(cut)});
    std::vector<std::string> bytes;
    for (char c : text) bytes.emplace_back(1, c);
    run(bytes);
}

TEST(ToolCallStream, EverySplitGivesTheWholeResult) {
    check_stream(Format::Hermes,
                 "Let me look.\n<tool_call>\n{\"name\": \"w\", \"arguments\": {\"c\": 1}}\n</tool_call>");
    check_stream(Format::Hermes, "Plain text with a < sign and <tool_ but no call.");
    check_stream(Format::Llama3, "{\"name\": \"w\", \"parameters\": {}}");
    check_stream(Format::Llama3, "Hi {not json} there");
    check_stream(Format::Llama3, "Calling.<|python_tag|>{\"name\": \"w\", \"parameters\": {\"a\": \"b\"}}");
    check_stream(Format::Mistral, "[TOOL_CALLS] [{\"name\": \"w\", \"arguments\": {}}]");
    check_stream(Format::Mistral, "Just [TOOL text.");
}

TEST(ToolCallStream, ContentBeforeACallGoesOutBeforeTheEnd) {
    StreamSplitter s(Format::Hermes);
    EXPECT_EQ(s.push("Hello there. "), "Hello there. ");
    EXPECT_EQ(s.push("<tool"), "");
    EXPECT_EQ(s.push("_call>{\"name\": \"f\", \"arguments\": {}}"), "");
    Parsed p = s.finish();
    ASSERT_EQ(p.calls.size(), 1u);
    EXPECT_EQ(p.calls[0].name, "f");
}

std::string read_template(const std::string& name) {
    std::ifstream f(orcd::test::shared_path("templates") / name);
    std::stringstream ss;
    ss << f.rdbuf();
    return ss.str();
}

TEST(ToolCallFormat, ChosenFromRealTemplates) {
    ORCD_SKIP_WITHOUT_SHARED(orcd::test::shared_path("templates"));
    const std::pair<const char*, Format> cases[] = {{"qwen2.5-instruct.jinja", Format::Hermes},
                                                    {"qwen3.jinja", Format::Hermes},
                                                    {"llama-3.1-instruct.jinja", Format::Llama3},
                                                    {"mistral-7b-instruct-v0.3.jinja", Format::Mistral},
                                                    {"mistral-small-3.2-instruct-2506.jinja", Format::Mistral},
                                                    {"chatml.jinja", Format::None},
                                                    {"llama-3-instruct.jinja", Format::None},
                                                    {"gemma-2-it.jinja", Format::None}};
    for (const auto& [file, want] : cases) {
        const std::string t = read_template(file);
        ASSERT_FALSE(t.empty()) << file;
        EXPECT_EQ(detect_format(t), want) << file << ": found " << format_name(detect_format(t));
    }
}

}  // namespace
}  // namespace orcd::toolcall
