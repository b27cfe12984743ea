// The server library's parts without sockets: request validation, wire formats, metrics text, the scheduler (with a
// scripted InferenceService) and the residency monitor.
#include <gtest/gtest.h>

#include <cmath>
#include <condition_variable>
#include <deque>
#include <nlohmann/json.hpp>
#include <mutex>
#include <thread>

#include "common/error.h"
#include "server/api_common.h"
#include "server/http_parse.h"
#include "server/json_guard.h"
#include "server/loading_server.h"
#include "server/metrics.h"
#include "server/openai_tools.h"
#include "server/requests.h"
#include "server/residency.h"
#include "server/scheduler.h"
#include "server/wire.h"

namespace orcd::server {
namespace {

using json = nlohmann::json;
using namespace std::chrono_literals;

std::vector<std::string> fields_of(const std::vector<FieldError>& errors) {
    std::vector<std::string> f;
    for (const auto& e : errors) f.push_back(e.field);
    return f;
}

TEST(ServerJsonGuard, DepthAndNumbersWithTheFieldNamed) {
    EXPECT_FALSE(prescan_json(R"({"a":[1,2,{"b":"[[[[["}],"c":-1.5e10})"));
    // 64 levels pass, 65 do not; the field is where the limit was hit.
    EXPECT_FALSE(prescan_json(std::string(64, '[') + std::string(64, ']')));
    auto deep = prescan_json(std::string(65, '['));
    ASSERT_TRUE(deep);
    EXPECT_NE(deep->message.find("deeper than 64"), std::string::npos);
    auto big = prescan_json(R"({"job_id":"x","stop":["a"],"temperature":1e400})");
    ASSERT_TRUE(big);
    EXPECT_EQ(big->field, "temperature");
    auto nested = prescan_json(R"({"messages":[{"role":"user"},{"content":[{"n":-2E+999}]}]})");
    ASSERT_TRUE(nested);
    EXPECT_EQ(nested->field, "messages[1].content[0].n");
    EXPECT_FALSE(prescan_json("1e-400"));  // underflow is a finite 0
    // A key holding control bytes is not echoed raw.
    auto ctl = prescan_json("{\"a\nb\":1e999}");
    ASSERT_TRUE(ctl);
    EXPECT_EQ(ctl->field, "ab");
}

TEST(ServerRequests, JobIdCharset) {
    EXPECT_EQ(job_id_problem("job-1_a.b:c"), "");
    EXPECT_NE(job_id_problem("a\nb"), "");
    EXPECT_NE(job_id_problem(""), "");
    EXPECT_NE(job_id_problem(std::string(257, 'a')), "");
    EXPECT_EQ(job_id_problem(std::string(256, 'a')), "");
}

TEST(ServerAccess, HostNamesThatNameTheServer) {
    ServerOptions o;
    o.host = "127.0.0.1";
    for (const char* h : {"127.0.0.1", "127.0.0.1:8080", "localhost", "LocalHost:1", "localhost.", "[::1]", "[::1]:80",
                          "10.0.0.7:8080"}) {
        EXPECT_TRUE(host_allowed(h, o)) << h;
    }
    for (const char* h :
         {"", "evil.example", "evil.example:8080", "localhost.evil.example", "127.0.0.1.evil", "[zz]"}) {
        EXPECT_FALSE(host_allowed(h, o)) << h;
    }
    o.allowed_hosts = {"worker.lan"};
    EXPECT_TRUE(host_allowed("worker.lan:9", o));
    o.host = "box.local";
    EXPECT_TRUE(host_allowed("box.local:8080", o));
}

TEST(ServerAccess, OriginsThatMayPost) {
    ServerOptions o;
    // Same-origin: the chat page served by this worker posts with its own origin.
    EXPECT_TRUE(origin_allowed("http://127.0.0.1:8080", "127.0.0.1:8080", o));
    EXPECT_TRUE(origin_allowed("http://localhost:8080", "localhost:8080", o));
    // Another site, another port of the same host, or an Origin without a Host to compare with: refused.
    EXPECT_FALSE(origin_allowed("http://evil.example", "127.0.0.1:8080", o));
    EXPECT_FALSE(origin_allowed("http://127.0.0.1:9999", "127.0.0.1:8080", o));
    EXPECT_FALSE(origin_allowed("null", "127.0.0.1:8080", o));
    EXPECT_FALSE(origin_allowed("http://", "", o));
    o.allowed_origins = {"http://app.example"};
    EXPECT_TRUE(origin_allowed("http://app.example", "127.0.0.1:8080", o));
    o.allowed_origins = {"*"};
    EXPECT_TRUE(origin_allowed("http://evil.example", "127.0.0.1:8080", o));
}

TEST(ServerHttpParse, FramingRules) {
    TransportLimits lim;
    lim.max_header_bytes = 1024;
    lim.max_body_bytes = 16;
    auto why = [&](std::string_view bytes) {
        auto r = parse_request(bytes, lim);
        if (auto* x = std::get_if<RefusedRequest>(&r)) return static_cast<int>(x->why);
        return std::holds_alternative<Incomplete>(r) ? -1 : -2;  // -2: parsed
    };
    const int malformed = static_cast<int>(Refusal::MalformedRequest);
    EXPECT_EQ(why("GET / HTTP/1.1\r\nHost: a\r\n\r\n"), -2);
    EXPECT_EQ(why("GET / HTTP/1.1\r\nHost: a\r\n"), -1);
    EXPECT_EQ(why("POST / HTTP/1.1\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\n{}"), malformed);
    EXPECT_EQ(why("POST / HTTP/1.1\r\nContent-Length: +2\r\n\r\n{}"), malformed);
    EXPECT_EQ(why("POST / HTTP/1.1\r\nContent-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"), malformed);
    EXPECT_EQ(why("POST / HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n"), malformed);
    EXPECT_EQ(why("POST / HTTP/1.1\r\nContent-Length: 17\r\n\r\n"), static_cast<int>(Refusal::BodyTooLarge));
    EXPECT_EQ(why("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n9\r\n123456789\r\n9\r\n123456789\r\n0\r\n\r\n"),
              static_cast<int>(Refusal::BodyTooLarge));
    EXPECT_EQ(why("GET / HTTP/1.1\r\nX: " + std::string(2000, 'a') + "\r\n\r\n"),
              static_cast<int>(Refusal::HeadersTooLarge));
    // Two pipelined requests: the first takes exactly its bytes.
    auto r = parse_request("POST /a HTTP/1.1\r\nContent-Length: 2\r\n\r\n{}GET /b HTTP/1.1\r\n\r\n", lim);
    ASSERT_TRUE(std::holds_alternative<Parsed>(r));
    EXPECT_EQ(std::get<Parsed>(r).request.body, "{}");
    EXPECT_EQ(std::get<Parsed>(r).consumed, 41u);
}

TEST(ServerRequests, ExecuteDefaultsAndValues) {
    std::vector<FieldError> errors;
    auto r = parse_execute(json::parse(R"({"job_id":"a","prompt":"hi"})"), 2048, errors);
    EXPECT_TRUE(errors.empty());
    EXPECT_EQ(r.job_id, "a");
    EXPECT_EQ(r.generate.prompt, "hi");
    EXPECT_EQ(r.generate.max_tokens, 128u);
    EXPECT_FALSE(r.generate.sampling.seed.has_value());

    r = parse_execute(json::parse(R"({"job_id":"a","prompt":"hi","max_tokens":64,"temperature":0,"top_p":0.5,
        "top_k":3,"min_p":0.1,"repetition_penalty":1.1,"stop":["x","y"],"seed":18446744073709551615})"),
                      2048, errors);
    EXPECT_TRUE(errors.empty());
    EXPECT_EQ(r.generate.max_tokens, 64u);
    EXPECT_EQ(r.generate.sampling.temperature, 0.0f);
    EXPECT_EQ(r.generate.sampling.top_p, 0.5f);
    EXPECT_EQ(r.generate.sampling.top_k, 3);
    EXPECT_FLOAT_EQ(r.generate.sampling.min_p, 0.1f);
    EXPECT_FLOAT_EQ(r.generate.sampling.repeat_penalty, 1.1f);
    EXPECT_EQ(r.generate.stop, (std::vector<std::string>{"x", "y"}));
    EXPECT_EQ(r.generate.sampling.seed, UINT64_MAX);

    // The default max_tokens never exceeds a small context.
    r = parse_execute(json::parse(R"({"job_id":"a","prompt":"hi"})"), 32, errors);
    EXPECT_EQ(r.generate.max_tokens, 32u);
}

TEST(ServerRequests, TopPZeroMeansOnlyTheMostLikelyToken) {
    std::vector<FieldError> errors;
    auto r = parse_execute(json::parse(R"({"job_id":"a","prompt":"hi","top_p":0})"), 2048, errors);
    EXPECT_TRUE(errors.empty());
    EXPECT_EQ(r.generate.sampling.top_k, 1);
    EXPECT_EQ(r.generate.sampling.top_p, 1.0f);
}

TEST(ServerRequests, ExecuteNamesEveryBadField) {
    std::vector<FieldError> errors;
    parse_execute(json::parse(R"({"job_id":"","prompt":5,"max_tokens":4097,"temperature":"hot","top_p":1.01,
        "top_k":-1,"min_p":1.5,"repetition_penalty":0,"stop":["a",null],"seed":-3,"extra":true})"),
                  4096, errors);
    EXPECT_EQ(fields_of(errors),
              (std::vector<std::string>{"extra", "job_id", "prompt", "max_tokens", "temperature", "top_k", "top_p",
                                        "min_p", "repetition_penalty", "seed", "stop[1]"}));
    for (const auto& e : errors) {
        if (e.field == "max_tokens") {
            EXPECT_EQ(e.message, "expected an integer in [1, 4096] (the context length), found 4097");
        } else if (e.field == "temperature") {
            EXPECT_EQ(e.message, "expected a number in [0, 2], found the string \"hot\"");
        } else if (e.field == "prompt") {
            EXPECT_EQ(e.message, "expected a string, found the integer 5");
        }
    }
}

TEST(ServerRequests, PromptLengthCountsCharactersNotBytes) {
    std::string p;
    for (size_t i = 0; i < kMaxPromptChars; ++i) p += "\xC3\xA9";  // 'é': 2 bytes, 1 character
    std::vector<FieldError> errors;
    parse_execute(json{{"job_id", "a"}, {"prompt", p}}, 2048, errors);
    EXPECT_TRUE(errors.empty());
    parse_execute(json{{"job_id", "a"}, {"prompt", p + "e"}}, 2048, errors);
    ASSERT_EQ(errors.size(), 1u);
    EXPECT_EQ(errors[0].message, "expected at most 32768 characters, found 32769");
}

TEST(ServerRequests, OpenAiCompletionAndChat) {
    std::vector<FieldError> errors;
    auto c = parse_openai(json::parse(R"({"model":"m","prompt":["hi"],"stop":"\n","stream":true,
        "stream_options":{"include_usage":true},"user":"ignored"})"),
                          false, 2048, errors);
    EXPECT_TRUE(errors.empty());
    EXPECT_EQ(c.generate.prompt, "hi");
    EXPECT_EQ(c.generate.max_tokens, 16u);  // OpenAI's default for completions
    EXPECT_EQ(c.generate.stop, std::vector<std::string>{"\n"});
    EXPECT_TRUE(c.stream);
    EXPECT_TRUE(c.include_usage);
    EXPECT_EQ(c.generate.sampling.temperature, 1.0f);
    EXPECT_EQ(c.generate.sampling.top_k, 0);  // OpenAI has no top-k/min-p: off
    EXPECT_EQ(c.generate.sampling.min_p, 0.0f);

    auto ch = parse_openai(json::parse(R"({"model":"m","messages":[{"role":"developer","content":"be brief"},
        {"role":"user","content":[{"type":"text","text":"a"},{"type":"text","text":"b"}]},
        {"role":"assistant","content":null}],"max_completion_tokens":7})"),
                           true, 2048, errors);
    EXPECT_TRUE(errors.empty());
    ASSERT_EQ(ch.messages.size(), 3u);
    EXPECT_EQ(ch.messages[0].role, "system");
    EXPECT_EQ(ch.messages[1].content, "ab");
    EXPECT_EQ(ch.generate.max_tokens, 7u);

    auto bad = parse_openai(json::parse(R"({"messages":[{"role":"wizard","content":"x"},{"role":"user",
        "content":[{"type":"image_url"}]}],"n":17,"echo":true,"logprobs":true})"),
                            true, 2048, errors);
    EXPECT_EQ(fields_of(errors),
              (std::vector<std::string>{"model", "messages[0].role", "messages[1].content[0]", "n"}));
    EXPECT_EQ(bad.unsupported, std::vector<std::string>{"echo"});  // a completions field, not chat's
    errors.clear();
    parse_openai(json::parse(R"({"model":"m","prompt":"x","n":1,"best_of":2,"echo":true})"), false, 2048, errors);
    EXPECT_EQ(fields_of(errors), (std::vector<std::string>{"best_of", "echo"}));
}

// A part's, a tool's or tool_choice's "type" of another JSON type is a field error, never an exception (the fuzzer's
// find: nlohmann's value("type", "") throws on {"type": 2}).
TEST(ServerRequests, NonStringTypeMembersAreFieldErrors) {
    std::vector<FieldError> errors;
    EXPECT_NO_THROW(parse_openai(json::parse(R"({"model":"m","messages":[{"role":"user","content":[{"type":2,
        "text":"hi"},{"type":["text"],"text":"a"},{"type":"text","text":"b"}]}]})"),
                                 true, 2048, errors));
    EXPECT_EQ(fields_of(errors), (std::vector<std::string>{"messages[0].content[0]", "messages[0].content[1]"}));
    errors.clear();
    EXPECT_NO_THROW(parse_openai(json::parse(R"({"model":"m","messages":[{"role":"user","content":"x"}],
        "tools":[{"type":7,"function":{"name":"f"}},{"type":null,"function":{"name":"g"}}]})"),
                                 true, 2048, errors));
    EXPECT_EQ(fields_of(errors), (std::vector<std::string>{"tools[0]", "tools[1]"}));
    errors.clear();
    EXPECT_NO_THROW(parse_openai(json::parse(R"({"model":"m","messages":[{"role":"user","content":"x"}],
        "tools":[{"type":"function","function":{"name":"f"}}],"tool_choice":{"type":{},"function":{"name":"f"}}})"),
                                 true, 2048, errors));
    EXPECT_EQ(fields_of(errors), std::vector<std::string>{"tool_choice"});
}

// Every key is either implemented or listed as unsupported (the endpoint answers "unsupported parameter: X").
TEST(ServerRequests, UnknownAndUnimplementedFieldsAreUnsupported) {
    std::vector<FieldError> errors;
    auto r = parse_openai(json::parse(R"({"model":"m","messages":[{"role":"user","content":"x"}],"functions":[],
        "audio":{},"temprature":1,"store":false,"top_k":3})"),
                          true, 2048, errors);
    EXPECT_TRUE(errors.empty());
    EXPECT_EQ(r.unsupported, (std::vector<std::string>{"audio", "functions", "store", "temprature"}));
    r = parse_openai(json::parse(R"({"model":"m","prompt":"x","suffix":"y","user":"u1"})"), false, 2048, errors);
    EXPECT_EQ(r.unsupported, std::vector<std::string>{"suffix"});
    EXPECT_EQ(r.user, "u1");
    // Message members beyond OpenAI's are field errors naming the message.
    parse_openai(json::parse(R"({"model":"m","messages":[{"role":"user","content":"x","mood":"happy"}]})"), true, 2048,
                 errors);
    EXPECT_EQ(fields_of(errors), std::vector<std::string>{"messages[0].mood"});
}

TEST(ServerRequests, PenaltiesLogitBiasAndLogprobs) {
    std::vector<FieldError> errors;
    auto r = parse_openai(json::parse(R"({"model":"m","messages":[{"role":"user","content":"x"}],
        "presence_penalty":0.5,"frequency_penalty":-1,"logit_bias":{"5":-100,"70":2.5},"logprobs":true,
        "top_logprobs":3,"seed":9})"),
                          true, 2048, errors);
    EXPECT_TRUE(errors.empty());
    EXPECT_EQ(r.generate.sampling.presence_penalty, 0.5f);
    EXPECT_EQ(r.generate.sampling.frequency_penalty, -1.f);
    EXPECT_EQ(r.generate.sampling.logit_bias,
              (std::vector<std::pair<engine::TokenId, float>>{{5, -100.f}, {70, 2.5f}}));
    EXPECT_TRUE(r.logprobs);
    EXPECT_EQ(r.top_logprobs, 3u);
    EXPECT_EQ(r.generate.sampling.seed, 9u);
    // Completions: logprobs N is the number of alternatives.
    auto c = parse_openai(json::parse(R"({"model":"m","prompt":"x","logprobs":2})"), false, 2048, errors);
    EXPECT_TRUE(errors.empty());
    EXPECT_TRUE(c.logprobs);
    EXPECT_EQ(c.top_logprobs, 2u);

    parse_openai(json::parse(R"({"model":"m","messages":[{"role":"user","content":"x"}],"presence_penalty":2.5,
        "frequency_penalty":"1","logit_bias":{"x":1,"3":101,"-4":1},"top_logprobs":21,
        "stream_options":{"include_usage":true}})"),
                 true, 2048, errors);
    EXPECT_EQ(fields_of(errors),
              (std::vector<std::string>{"presence_penalty", "frequency_penalty", "logit_bias[\"-4\"]",
                                        "logit_bias[\"3\"]", "logit_bias[\"x\"]", "stream_options", "top_logprobs"}));
    errors.clear();
    parse_openai(json::parse(R"({"model":"m","prompt":"x","logprobs":6})"), false, 2048, errors);
    EXPECT_EQ(fields_of(errors), std::vector<std::string>{"logprobs"});
}

TEST(ServerRequests, ResponseFormatGrammarAndJsonSchema) {
    std::vector<FieldError> errors;
    const std::string head = R"({"model":"m","messages":[{"role":"user","content":"x"}],)";
    auto r = parse_openai(json::parse(head + R"("response_format":{"type":"json_object"}})"), true, 2048, errors);
    EXPECT_EQ(r.constraint.kind, ConstraintSpec::Kind::JsonSchema);
    EXPECT_EQ(json::parse(r.constraint.text), json::parse(R"({"type":"json_object"})"));
    r = parse_openai(json::parse(head + R"("response_format":{"type":"json_schema","json_schema":{"name":"n",
        "strict":true,"schema":{"type":"integer"}}}})"),
                     true, 2048, errors);
    EXPECT_EQ(r.constraint.kind, ConstraintSpec::Kind::JsonSchema);
    EXPECT_EQ(json::parse(r.constraint.text), json::parse(R"({"type":"integer"})"));
    EXPECT_EQ(r.constraint.param, "response_format");
    r = parse_openai(json::parse(head + R"("response_format":{"type":"text"}})"), true, 2048, errors);
    EXPECT_EQ(r.constraint.kind, ConstraintSpec::Kind::None);
    r = parse_openai(json::parse(R"({"model":"m","prompt":"x","grammar":"root ::= \"a\""})"), false, 2048, errors);
    EXPECT_EQ(r.constraint.kind, ConstraintSpec::Kind::Gbnf);
    EXPECT_EQ(r.constraint.text, "root ::= \"a\"");
    EXPECT_TRUE(errors.empty());

    parse_openai(json::parse(head + R"("grammar":"root ::= \"a\"","json_schema":{}})"), true, 2048, errors);
    EXPECT_EQ(fields_of(errors), std::vector<std::string>{"json_schema"});
    errors.clear();
    parse_openai(json::parse(head + R"("response_format":{"type":"xml"}})"), true, 2048, errors);
    EXPECT_EQ(fields_of(errors), std::vector<std::string>{"response_format.type"});
    errors.clear();
    parse_openai(json::parse(head + R"("response_format":{"type":"json_schema","json_schema":{"name":"n"}}})"), true,
                 2048, errors);
    EXPECT_EQ(fields_of(errors), std::vector<std::string>{"response_format.json_schema.schema"});
    errors.clear();
    // /execute takes grammar and json_schema too.
    auto e =
        parse_execute(json::parse(R"({"job_id":"j","prompt":"p","json_schema":{"type":"boolean"}})"), 2048, errors);
    EXPECT_TRUE(errors.empty());
    EXPECT_EQ(e.constraint.kind, ConstraintSpec::Kind::JsonSchema);
    EXPECT_EQ(e.constraint.param, "json_schema");
}

TEST(ServerRequests, ToolsToolChoiceAndToolMessages) {
    std::vector<FieldError> errors;
    auto r = parse_openai(json::parse(R"({"model":"m","tools":[{"type":"function","function":{"name":"f",
        "parameters":{"type":"object"}}}],"tool_choice":{"type":"function","function":{"name":"f"}},
        "messages":[{"role":"user","content":"x"},{"role":"assistant","content":null,"tool_calls":[{"id":"c1",
        "type":"function","function":{"name":"f","arguments":"{\"a\": 1}"}}]},
        {"role":"tool","tool_call_id":"c1","content":"42"}]})"),
                          true, 2048, errors);
    EXPECT_TRUE(errors.empty()) << errors.front().field << ": " << errors.front().message;
    EXPECT_EQ(r.tool_choice, "function");
    EXPECT_EQ(r.tool_choice_name, "f");
    ASSERT_EQ(r.tools.size(), 1u);
    ASSERT_EQ(r.messages.size(), 3u);
    // The arguments string becomes the JSON value the templates write with tojson.
    EXPECT_EQ(r.messages[1].extra["tool_calls"][0]["function"]["arguments"], nlohmann::ordered_json({{"a", 1}}));
    EXPECT_EQ(r.messages[1].extra["tool_calls"][0]["id"], "c1");
    EXPECT_EQ(r.messages[2].extra["tool_call_id"], "c1");
    // Without tools the choice is "none"; a choice naming no tool, a tool message without its id, calls on a user
    // message and arguments that are not JSON are errors.
    EXPECT_EQ(parse_openai(json::parse(R"({"model":"m","prompt":"x"})"), true, 2048, errors).tool_choice, "none");
    errors.clear();
    parse_openai(json::parse(R"({"model":"m","tools":[{"type":"function","function":{"name":"f"}}],
        "tool_choice":{"type":"function","function":{"name":"g"}},"messages":[{"role":"tool","content":"1"},
        {"role":"user","content":"x","tool_calls":[]},{"role":"assistant","tool_calls":[{"function":{"name":"f",
        "arguments":"{nope"}}]}]})"),
                 true, 2048, errors);
    EXPECT_EQ(fields_of(errors),
              (std::vector<std::string>{"messages[0].tool_call_id", "messages[1].tool_calls",
                                        "messages[2].tool_calls[0].function.arguments", "tool_choice"}));
    // parallel_tool_calls: false holds only where the reply is one call.
    errors.clear();
    const std::string head = R"({"model":"m","messages":[{"role":"user","content":"x"}],"tools":[{"type":"function",
        "function":{"name":"f"}}],"parallel_tool_calls":false,"tool_choice":)";
    parse_openai(json::parse(head + R"("required"})"), true, 2048, errors);
    EXPECT_TRUE(errors.empty());
    parse_openai(json::parse(head + R"("auto"})"), true, 2048, errors);
    EXPECT_EQ(fields_of(errors), std::vector<std::string>{"parallel_tool_calls"});
}

TEST(ServerTools, PlanAndForcedCallSchema) {
    std::vector<FieldError> errors;
    auto req = [&](const std::string& choice) {
        return parse_openai(json::parse(R"({"model":"m","messages":[{"role":"user","content":"x"}],"tools":[
            {"type":"function","function":{"name":"f","parameters":{"type":"object","properties":{"a":
            {"type":"integer"}}}}},{"type":"function","function":{"name":"g"}}],"tool_choice":)" +
                                        choice + "}"),
                            true, 2048, errors);
    };
    ToolPlan plan;
    OpenAiRequest r = req(R"("auto")");
    EXPECT_EQ(plan_tools(r, "{{ '<tool_call>' }}", plan), std::nullopt);
    EXPECT_EQ(plan.format, toolcall::Format::Hermes);
    EXPECT_EQ(r.constraint.kind, ConstraintSpec::Kind::None);
    auto bad = plan_tools(r, "{{ messages }}", plan);  // a template without a known tool-call format
    ASSERT_TRUE(bad);
    EXPECT_EQ(bad->field, "tools");
    r = req(R"("none")");
    EXPECT_EQ(plan_tools(r, "{{ messages }}", plan), std::nullopt);
    EXPECT_EQ(plan.format, toolcall::Format::None);

    r = req(R"({"type":"function","function":{"name":"f"}})");
    EXPECT_EQ(plan_tools(r, "[TOOL_CALLS]", plan), std::nullopt);
    EXPECT_TRUE(plan.short_ids);
    EXPECT_EQ(r.constraint.param, "tools");
    EXPECT_EQ(json::parse(r.constraint.text), json::parse(R"({"type":"object","properties":{"name":{"const":"f"},
        "arguments":{"type":"object","properties":{"a":{"type":"integer"}}}},"required":["name","arguments"],
        "additionalProperties":false})"));
    r = req(R"("required")");
    EXPECT_EQ(plan_tools(r, "", plan), std::nullopt);
    EXPECT_EQ(json::parse(r.constraint.text)["anyOf"].size(), 2u);
    // A parameter schema the compiler cannot take is named where the client wrote it.
    errors.clear();
    OpenAiRequest m = parse_openai(json::parse(R"({"model":"m","messages":[{"role":"user","content":"x"}],"tools":[
        {"type":"function","function":{"name":"f"}},{"type":"function","function":{"name":"g","parameters":
        {"type":"object","properties":{"n":{"type":"integer","minimum":1}}}}}],"tool_choice":"required"})"),
                                   true, 2048, errors);
    bad = plan_tools(m, "", plan);
    ASSERT_TRUE(bad);
    EXPECT_EQ(bad->field, "tools[1].function.parameters");
    EXPECT_NE(bad->message.find("minimum"), std::string::npos) << bad->message;
    r = req(R"("required","response_format":{"type":"json_object"})");
    bad = plan_tools(r, "", plan);
    ASSERT_TRUE(bad);
    EXPECT_EQ(bad->field, "tool_choice");
    EXPECT_TRUE(errors.empty());
}

TEST(ServerWire, WorkerEvents) {
    JobEvent ev;
    ev.kind = JobEvent::Kind::Token;
    ev.text = "h\xC3\xA9\n\"";
    ev.index = 3;
    EXPECT_EQ(worker_sse(ev, "j", "m"), "event: token\ndata: {\"i\":3,\"t\":\"h\xC3\xA9\\n\\\"\"}\n\n");
    ev.kind = JobEvent::Kind::Error;
    ev.error_code = JobErrorCode::VramOom;
    ev.message = "no room";
    EXPECT_EQ(worker_sse(ev, "j", "m"), "event: error\ndata: {\"code\":\"VRAM_OOM\",\"message\":\"no room\"}\n\n");
    ev.kind = JobEvent::Kind::End;
    ev.tokens_out = 5;
    ev.prompt_tokens = 2;
    ev.decode_time_ms = 1.5;
    ev.seed = 9;
    ev.stop_reason = engine::StopReason::StopString;
    const auto end = json::parse(worker_sse(ev, "j", "m").substr(std::string("event: end\ndata: ").size()));
    EXPECT_EQ(end, json::parse(R"({"tokens_out":5,"prompt_tokens":2,"decode_time_ms":1.5,"stop_reason":"stop",
                                   "seed":9})"));
}

TEST(ServerWire, OpenAiShapes) {
    OpenAiContext c{true, "chatcmpl-1", "m", 100};
    EXPECT_EQ(openai_chunk(c, "hi", true)["choices"][0]["delta"],
              json::parse(R"({"role":"assistant","content":"hi"})"));
    EXPECT_FALSE(openai_chunk(c, "hi", false)["choices"][0]["delta"].contains("role"));
    EXPECT_EQ(openai_final_chunk(c, engine::StopReason::MaxTokens)["choices"][0]["finish_reason"], "length");
    EXPECT_EQ(openai_final_chunk(c, engine::StopReason::EndOfGeneration)["choices"][0]["finish_reason"], "stop");
    auto u = openai_usage_chunk(c, 3, 4);
    EXPECT_TRUE(u["choices"].empty());
    EXPECT_EQ(u["usage"]["total_tokens"], 7);
    c.chat = false;
    auto r = openai_response(c, "txt", engine::StopReason::StopString, 3, 4);
    EXPECT_EQ(r["object"], "text_completion");
    EXPECT_EQ(r["choices"][0]["text"], "txt");
    // logprobs in both shapes; tool calls with their ids (and indexes when streamed).
    engine::TokenLogprobs t{{7, "ab", -0.5f}, {{7, "ab", -0.5f}, {9, "c", -1.5f}}};
    std::vector<engine::TokenLogprobs> items{t, t};
    size_t offset = 3;
    EXPECT_EQ(openai_logprobs(true, items, offset)["content"][1],
              json::parse(R"({"token":"ab","logprob":-0.5,"bytes":[97,98],"top_logprobs":[
                  {"token":"ab","logprob":-0.5,"bytes":[97,98]},{"token":"c","logprob":-1.5,"bytes":[99]}]})"));
    EXPECT_EQ(openai_logprobs(false, items, offset), json::parse(R"({"tokens":["ab","ab"],"token_logprobs":[-0.5,-0.5],
                  "top_logprobs":[{"ab":-0.5,"c":-1.5},{"ab":-0.5,"c":-1.5}],"text_offset":[3,5]})"));
    EXPECT_EQ(offset, 7u);
    std::vector<toolcall::ToolCall> calls{{"id1", "f", R"({"a":1})"}};
    EXPECT_EQ(openai_tool_calls(calls, false),
              json::parse(R"([{"id":"id1","type":"function","function":{"name":"f","arguments":"{\"a\":1}"}}])"));
    c.chat = true;
    auto tc = openai_tool_calls_chunk(c, calls, true);
    EXPECT_EQ(tc["choices"][0]["delta"]["role"], "assistant");
    EXPECT_EQ(tc["choices"][0]["delta"]["tool_calls"][0]["index"], 0);
    EXPECT_EQ(openai_error("bad", "invalid_request_error", "temperature"),
              json::parse(R"({"error":{"message":"bad","type":"invalid_request_error","param":"temperature",
                              "code":null}})"));
}

TEST(ServerMetrics, HistogramIsCumulativeAndTextIsComplete) {
    Metrics m("qwen");
    m.count_request(Outcome::Success);
    m.count_request(Outcome::Rejected);
    m.add_tokens(11);
    m.observe_inference_seconds(0.007);
    m.observe_inference_seconds(0.07);
    m.observe_inference_seconds(1e6);  // beyond the last bound: only +Inf
    m.set_queue_depth(2);
    m.set_vram_bytes(1234);
    const std::string t = m.render();
    for (const char* line :
         {"worker_requests_total{model=\"qwen\",outcome=\"success\"} 1\n",
          "worker_requests_total{model=\"qwen\",outcome=\"rejected\"} 1\n",
          "worker_requests_total{model=\"qwen\",outcome=\"cancelled\"} 0\n",
          "worker_generation_tokens_total{model=\"qwen\"} 11\n",
          "worker_inference_duration_seconds_bucket{model=\"qwen\",le=\"0.005\"} 0\n",
          "worker_inference_duration_seconds_bucket{model=\"qwen\",le=\"0.01\"} 1\n",
          "worker_inference_duration_seconds_bucket{model=\"qwen\",le=\"0.1\"} 2\n",
          "worker_inference_duration_seconds_bucket{model=\"qwen\",le=\"120\"} 2\n",
          "worker_inference_duration_seconds_bucket{model=\"qwen\",le=\"+Inf\"} 3\n",
          "worker_inference_duration_seconds_count{model=\"qwen\"} 3\n",
          "worker_time_to_first_token_seconds_count{model=\"qwen\"} 0\n", "worker_queue_depth{model=\"qwen\"} 2\n",
          "worker_vram_bytes{model=\"qwen\"} 1234\n", "# TYPE worker_inference_duration_seconds histogram\n",
          "# TYPE worker_uptime_seconds gauge\n", "# TYPE worker_num_requests_running gauge\n",
          "# TYPE worker_num_requests_waiting gauge\n", "# TYPE worker_kv_cache_usage_perc gauge\n"}) {
        EXPECT_NE(t.find(line), std::string::npos) << "missing: " << line << "\nin:\n" << t;
    }
}

// The batch gauges read the service's state as the snapshot holds it. Free pages are those no running request holds
// (total - used = 6), evictable prefix-cache pages included: not the block manager's pages_free (2, holding nothing).
TEST(ServerMetrics, BatchGaugesReadTheServiceStateAndCountUnheldPagesAsFree) {
    Metrics m("m");
    BatchState st;
    st.running = 3;
    st.waiting = 1;
    st.kv.pages_total = 10;
    st.kv.pages_used = 4;
    st.kv.pages_free = 2;
    st.kv.pages_cached = 5;
    st.kv.prefix_queried_tokens = 40;
    st.kv.prefix_hit_tokens = 10;
    st.kv.preemptions = 7;
    m.set_batch(BatchSnapshot{st, 4});
    const std::string t = m.render();
    for (const char* line :
         {"worker_num_requests_running{model=\"m\"} 3\n", "worker_num_requests_waiting{model=\"m\"} 1\n",
          "worker_parallel{model=\"m\"} 4\n", "worker_kv_pages_total{model=\"m\"} 10\n",
          "worker_kv_pages_used{model=\"m\"} 4\n", "worker_kv_pages_free{model=\"m\"} 6\n",
          "worker_kv_pages_cached{model=\"m\"} 5\n", "worker_kv_cache_usage_perc{model=\"m\"} 0.4\n",
          "worker_prefix_cache_queries_total{model=\"m\"} 40\n", "worker_prefix_cache_hits_total{model=\"m\"} 10\n",
          "worker_prefix_cache_hit_rate{model=\"m\"} 0.25\n", "worker_num_preemptions_total{model=\"m\"} 7\n"}) {
        EXPECT_NE(t.find(line), std::string::npos) << "missing: " << line << "\nin:\n" << t;
    }
}

TEST(ServerMetrics, EverySampleCarriesTheModelLabelAndNoneIsInMilliseconds) {
    // A hostile alias: the label value is escaped, never breaking the exposition format.
    Metrics m("a\"b\\c\nd");
    m.observe_ttft_seconds(0.5);
    const std::string t = m.render();
    const std::string label = "{model=\"a\\\"b\\\\c\\nd\"";
    size_t samples = 0;
    for (size_t at = 0; at < t.size();) {
        const size_t end = t.find('\n', at);
        ASSERT_NE(end, std::string::npos) << "the text ends with a newline";
        const std::string line = t.substr(at, end - at);
        at = end + 1;
        EXPECT_EQ(line.find("_ms"), std::string::npos) << line;
        if (line.starts_with("#")) continue;
        ++samples;
        const size_t brace = line.find('{');
        ASSERT_NE(brace, std::string::npos) << line;
        EXPECT_EQ(line.substr(brace, label.size()), label) << line;
    }
    EXPECT_GT(samples, 60u);
}

// A scripted service with a batch of `info_.parallel` jobs: each step (`step` long) every running job emits its next
// piece "t<i>" until max_tokens, honouring its cancel flag at each step like the real engine; `fail` makes the next
// prepared job fail at its first step with that error; a prompt "refuse" is refused by prepare().
class FakeService : public InferenceService {
public:
    ServiceInfo info_{"fake", "fake.gguf", "qwen2", "Q8_0", "bpe/qwen2", 100, 64, "cpu", 1};
    std::chrono::milliseconds step_time{1};
    mutable std::optional<ErrorCode> fail;  // read by prepare(), on the submitting thread
    std::atomic<int> started{0};
    std::atomic<int> widest_step{0};

    const ServiceInfo& info() const override { return info_; }
    std::vector<int32_t> prompt_tokens(const engine::GenerateRequest& r) const override {
        return std::vector<int32_t>(r.prompt.size(), 1);
    }
    std::string format_chat(std::span<const tokenizer::ChatMessage>) const override { return "chat"; }
    std::optional<std::string> residency_problem() const override { return std::nullopt; }
    backend::DeviceMemoryReport device_memory() const override { return {}; }

    struct Prepared final : PreparedJob {
        engine::GenerateRequest req;
        std::function<void(std::string_view)> on_text;
        std::optional<ErrorCode> fail;
    };
    std::unique_ptr<PreparedJob> prepare(const engine::GenerateRequest& req,
                                         std::function<void(std::string_view)> on_text) const override {
        if (req.prompt == "refuse") throw Error(ErrorCode::InvalidArgument, "scripted refusal: larger than the pool");
        auto p = std::make_unique<Prepared>();
        p->req = req;
        p->on_text = std::move(on_text);
        p->fail = std::exchange(fail, std::nullopt);
        return p;
    }
    void add(std::unique_ptr<PreparedJob> job, engine::RequestSink sink, const std::atomic<bool>* cancel) override {
        std::unique_ptr<Prepared> p(static_cast<Prepared*>(job.release()));
        waiting_.push_back(Live{std::move(p), std::move(sink), cancel});
    }
    engine::StepReport step() override {
        engine::StepReport rep;
        auto end = [](Live& l, engine::StopReason why) {
            engine::GenerateResult r;
            r.prompt_tokens.resize(l.p->req.prompt.size());
            r.seed = l.p->req.sampling.seed.value_or(77);
            r.tokens.resize(l.i);
            r.stop_reason = why;
            l.sink.on_end(std::move(r));
        };
        for (auto* list : {&running_, &waiting_}) {
            for (auto it = list->begin(); it != list->end();) {
                if (it->cancel->load()) {
                    end(*it, engine::StopReason::Cancelled);
                    it = list->erase(it);
                } else {
                    ++it;
                }
            }
        }
        while (!waiting_.empty() && running_.size() < info_.parallel) {
            running_.push_back(std::move(waiting_.front()));
            waiting_.pop_front();
            ++started;
            running_.back().sink.on_start();
        }
        if (running_.empty()) return rep;
        std::this_thread::sleep_for(step_time);
        rep.sequences = static_cast<uint32_t>(running_.size());
        widest_step = std::max<int>(widest_step, static_cast<int>(rep.sequences));
        for (auto it = running_.begin(); it != running_.end();) {
            if (it->p->fail) {
                it->sink.on_error(std::make_exception_ptr(Error(*it->p->fail, "scripted failure")));
                it = running_.erase(it);
                continue;
            }
            if (it->i < it->p->req.max_tokens) {
                std::string piece = "t";  // appended, not "t" + ...: GCC 12's false -Wrestrict on literal + string
                piece += std::to_string(it->i++);
                it->p->on_text(piece);
            }
            if (it->i == it->p->req.max_tokens) {
                end(*it, engine::StopReason::MaxTokens);
                it = running_.erase(it);
            } else {
                ++it;
            }
        }
        return rep;
    }
    BatchState batch_state() const override {
        BatchState b;
        b.running = static_cast<uint32_t>(running_.size());
        b.waiting = static_cast<uint32_t>(waiting_.size());
        return b;
    }

private:
    struct Live {
        std::unique_ptr<Prepared> p;
        engine::RequestSink sink;
        const std::atomic<bool>* cancel;
        uint32_t i = 0;
    };
    std::deque<Live> waiting_;
    std::deque<Live> running_;
};

engine::GenerateRequest req(uint32_t n) {
    engine::GenerateRequest r;
    r.prompt = "abc";
    r.max_tokens = n;
    return r;
}

std::vector<JobEvent> drain_events(Job& j) {
    std::vector<JobEvent> out;
    while (auto ev = j.pop(5s)) {
        out.push_back(*ev);
        if (ev->terminal()) break;
    }
    return out;
}

TEST(ServerScheduler, RunsInOrderAndEndsEachJobOnce) {
    FakeService svc;
    Metrics m("m");
    Scheduler s(svc, m, 4);
    auto a = s.submit("a", req(3)).job;
    auto b = s.submit("b", req(2)).job;
    ASSERT_TRUE(a && b);
    auto ea = drain_events(*a);
    auto eb = drain_events(*b);
    ASSERT_EQ(ea.size(), 5u);  // started, 3 tokens, end
    EXPECT_EQ(ea[0].kind, JobEvent::Kind::Started);
    EXPECT_EQ(ea[3].text, "t2");
    EXPECT_EQ(ea[3].index, 2u);
    EXPECT_EQ(ea[4].kind, JobEvent::Kind::End);
    EXPECT_EQ(ea[4].tokens_out, 3u);
    EXPECT_EQ(ea[4].prompt_tokens, 3u);
    EXPECT_EQ(eb.back().kind, JobEvent::Kind::End);
    // b started only after a ended.
    EXPECT_LE(ea[0].started_at_ms, eb[0].started_at_ms);
    EXPECT_FALSE(a->pop(10ms));  // nothing after the terminal event
    EXPECT_EQ(m.requests(Outcome::Success), 2u);
}

TEST(ServerScheduler, BoundedQueueDuplicatesAndDrain) {
    FakeService svc;
    svc.step_time = 20ms;
    Metrics m("m");
    Scheduler s(svc, m, 1);
    auto a = s.submit("a", req(1000)).job;
    while (svc.started == 0) std::this_thread::sleep_for(1ms);
    EXPECT_EQ(s.submit("a", req(1)).status, SubmitStatus::DuplicateId);
    auto b = s.submit("b", req(1)).job;
    ASSERT_TRUE(b);
    EXPECT_EQ(s.submit("c", req(1)).status, SubmitStatus::QueueFull);  // one running + one waiting
    EXPECT_EQ(s.queued(), 1u);

    // Cancelling the queued job removes it at once: its only event is the error.
    EXPECT_EQ(s.cancel("b", CancelReason::Request), CancelStatus::Queued);
    auto eb = drain_events(*b);
    ASSERT_EQ(eb.size(), 1u);
    EXPECT_EQ(eb[0].error_code, JobErrorCode::Cancelled);
    EXPECT_EQ(s.cancel("b", CancelReason::Request), CancelStatus::NotFound);

    s.begin_drain();
    EXPECT_EQ(s.submit("d", req(1)).status, SubmitStatus::Draining);
    EXPECT_FALSE(s.drain(50ms));  // the long job did not finish in time: cancelled
    auto ea = drain_events(*a);
    ASSERT_FALSE(ea.empty());
    EXPECT_EQ(ea.back().kind, JobEvent::Kind::Error);
    EXPECT_EQ(ea.back().error_code, JobErrorCode::Cancelled);
    EXPECT_NE(ea.back().message.find("shutting down"), std::string::npos);
    EXPECT_EQ(m.requests(Outcome::Cancelled), 2u);
}

TEST(ServerScheduler, ErrorsMapToEventCodesAndTheWorkerGoesOn) {
    FakeService svc;
    Metrics m("m");
    Scheduler s(svc, m, 4);
    const std::pair<ErrorCode, JobErrorCode> cases[] = {
        {ErrorCode::DeviceAlloc, JobErrorCode::VramOom},
        {ErrorCode::InsufficientVram, JobErrorCode::VramOom},
        {ErrorCode::ContextOverflow, JobErrorCode::ContextOverflow},
        {ErrorCode::Device, JobErrorCode::Internal},
    };
    int k = 0;
    for (auto [code, expected] : cases) {
        svc.fail = code;
        std::string id = "e";
        id += std::to_string(k++);
        auto j = s.submit(id, req(2)).job;
        auto ev = drain_events(*j);
        ASSERT_FALSE(ev.empty());
        EXPECT_EQ(ev.back().kind, JobEvent::Kind::Error);
        EXPECT_EQ(ev.back().error_code, expected) << error_code_name(code);
        EXPECT_EQ(ev.back().message, "scripted failure");
    }
    auto ok = s.submit("ok", req(2)).job;
    EXPECT_EQ(drain_events(*ok).back().kind, JobEvent::Kind::End);
    EXPECT_EQ(m.requests(Outcome::Error), 4u);
}

// An exchange that records what a handler sends: the one reply, or the stream's bytes and its end.
class RecordingExchange final : public Exchange {
public:
    void reply(HttpResponse response) override {
        std::lock_guard lock(mu_);
        replies.push_back(std::move(response));
        cv_.notify_all();
    }
    void begin_stream(HttpResponse) override {}
    void write(std::string bytes) override {
        std::lock_guard lock(mu_);
        stream += bytes;
    }
    void end_stream() override {
        std::lock_guard lock(mu_);
        ++ends;
        cv_.notify_all();
    }
    void on_disconnect(std::function<void()>) override {}
    // Waits until a reply or the stream's end is out (false after 5 s).
    bool wait_answered() {
        std::unique_lock lock(mu_);
        return cv_.wait_for(lock, 5s, [&] { return !replies.empty() || ends > 0; });
    }
    std::vector<HttpResponse> replies;
    std::string stream;
    int ends = 0;

private:
    std::mutex mu_;
    std::condition_variable cv_;
};

// OpenAI's n choices are jobs delivered to one exchange: collected, the answer comes once with every choice's text;
// streamed, each choice's events in order and the tail once after the last; a choice that fails ends the request at
// once (its error delivered) and cancels the choices still running.
TEST(ServerDelivery, ChoicesOfOneRequestShareOneExchange) {
    FakeService svc;
    svc.info_.parallel = 3;
    Metrics m("m");
    Scheduler s(svc, m, 8);
    auto submit = [&](const std::string& id, uint32_t n) { return s.submit(id, req(n)).job; };

    auto collected = std::make_shared<RecordingExchange>();
    std::vector<std::vector<std::string>> texts_seen;
    collect_jobs(collected, {submit("c0", 2), submit("c1", 3), submit("c2", 4)}, s,
                 [&](const std::vector<std::string>& texts, const std::vector<JobEvent>& ends) {
                     texts_seen.push_back(texts);
                     for (const auto& e : ends) EXPECT_EQ(e.kind, JobEvent::Kind::End);
                     return HttpResponse{};
                 });
    ASSERT_TRUE(collected->wait_answered());
    std::this_thread::sleep_for(20ms);  // nothing more may come
    ASSERT_EQ(texts_seen.size(), 1u);
    EXPECT_EQ(texts_seen[0], (std::vector<std::string>{"t0t1", "t0t1t2", "t0t1t2t3"}));
    EXPECT_EQ(collected->replies.size(), 1u);

    auto streamed = std::make_shared<RecordingExchange>();
    std::mutex order_mu;
    std::vector<std::string> per_choice(2);
    stream_jobs(
        streamed, {submit("s0", 3), submit("s1", 2)}, s, HttpResponse{},
        [&](size_t i, const JobEvent& ev) {
            std::lock_guard lock(order_mu);
            if (ev.kind == JobEvent::Kind::Token) per_choice[i] += ev.text;
            if (ev.kind == JobEvent::Kind::End) per_choice[i] += "|end";
            return ev.kind == JobEvent::Kind::End ? "end" + std::to_string(i) + ";" : std::string();
        },
        [](bool ok) { return ok ? std::string("tail") : std::string("failed"); });
    ASSERT_TRUE(streamed->wait_answered());
    std::this_thread::sleep_for(20ms);
    EXPECT_EQ(streamed->ends, 1);
    EXPECT_EQ(per_choice, (std::vector<std::string>{"t0t1t2|end", "t0t1|end"}));
    EXPECT_TRUE(streamed->stream == "end1;end0;tail" || streamed->stream == "end0;end1;tail") << streamed->stream;

    // Choice 1 fails at its first step; choice 0 (long) is cancelled by the failure, not run to its end.
    auto failing = std::make_shared<RecordingExchange>();
    auto long_job = submit("f0", 100000);
    svc.fail = ErrorCode::Device;
    auto failed_job = submit("f1", 5);
    std::vector<JobEvent> ends_seen;
    collect_jobs(failing, {long_job, failed_job}, s,
                 [&](const std::vector<std::string>&, const std::vector<JobEvent>& ends) {
                     ends_seen = ends;
                     return HttpResponse{};
                 });
    ASSERT_TRUE(failing->wait_answered());
    ASSERT_EQ(ends_seen.size(), 2u);
    EXPECT_EQ(ends_seen[1].kind, JobEvent::Kind::Error);
    EXPECT_EQ(ends_seen[1].message, "scripted failure");
    for (int k = 0; k < 500 && !long_job->finished(); ++k) std::this_thread::sleep_for(10ms);
    EXPECT_TRUE(long_job->finished()) << "the other choice still runs";
    EXPECT_EQ(long_job->cancel_reason(), CancelReason::Request);
}

TEST(ServerScheduler, RunsUpToParallelJobsInOneBatchAndQueuesBeyond) {
    FakeService svc;
    svc.info_.parallel = 4;
    svc.step_time = 5ms;
    Metrics m("m");
    Scheduler s(svc, m, 2);
    std::vector<std::shared_ptr<Job>> jobs;
    for (int i = 0; i < 6; ++i) {
        auto sub = s.submit("j" + std::to_string(i), req(20));
        ASSERT_EQ(sub.status, SubmitStatus::Accepted) << i;
        jobs.push_back(sub.job);
    }
    EXPECT_EQ(s.submit("j6", req(1)).status, SubmitStatus::QueueFull);  // 4 running + 2 waiting
    std::vector<std::vector<JobEvent>> ev;
    for (auto& j : jobs) ev.push_back(drain_events(*j));
    for (int i = 0; i < 6; ++i) {
        ASSERT_EQ(ev[i].size(), 22u) << i;
        EXPECT_EQ(ev[i].back().kind, JobEvent::Kind::End) << i;
    }
    EXPECT_EQ(svc.widest_step, 4);
    EXPECT_EQ(m.requests(Outcome::Success), 6u);
    EXPECT_NE(m.render().find("worker_batch_size_bucket{model=\"m\",le=\"4\"}"), std::string::npos);
}

TEST(ServerScheduler, ARequestTheServiceRefusesIsNeverQueued) {
    FakeService svc;
    Metrics m("m");
    Scheduler s(svc, m, 4);
    engine::GenerateRequest r = req(2);
    r.prompt = "refuse";
    const auto sub = s.submit("x", r);
    EXPECT_EQ(sub.status, SubmitStatus::Refused);
    EXPECT_EQ(sub.error, ErrorCode::InvalidArgument);
    EXPECT_NE(sub.message.find("larger than the pool"), std::string::npos);
    EXPECT_EQ(s.queued(), 0u);
    EXPECT_EQ(s.cancel("x", CancelReason::Request), CancelStatus::NotFound);
    EXPECT_EQ(svc.started, 0);
}

TEST(ServerResidency, ProbeRunsPeriodicallyAndReportsProblems) {
    std::atomic<bool> bad{false};
    ResidencyMonitor mon(
        [&]() -> std::optional<std::string> {
            if (bad) return "weights arena is host memory";
            return std::nullopt;
        },
        10ms);
    EXPECT_TRUE(mon.healthy());
    EXPECT_GE(mon.checks(), 1u);
    bad = true;
    for (int i = 0; i < 500 && mon.healthy(); ++i) std::this_thread::sleep_for(2ms);
    EXPECT_FALSE(mon.healthy());
    EXPECT_EQ(mon.problem(), "weights arena is host memory");
    bad = false;
    for (int i = 0; i < 500 && !mon.healthy(); ++i) std::this_thread::sleep_for(2ms);
    EXPECT_TRUE(mon.healthy());
}

}  // namespace
}  // namespace orcd::server

// /health's "loading" field while the model loads: the percentage never passes 100 and never goes back.
TEST(LoadState, PercentIsClampedAndNeverGoesBack) {
    orcd::server::LoadState s;
    EXPECT_EQ(s.to_json()["percent"], 0.0);
    s.set("read", 0.4251, 100, 1000);
    nlohmann::json j = s.to_json();
    EXPECT_EQ(j["stage"], "read");
    EXPECT_DOUBLE_EQ(j["percent"].get<double>(), 42.5);
    EXPECT_EQ(j["bytes_done"], 100);
    EXPECT_EQ(j["bytes_total"], 1000);
    s.set("upload", 0.2);  // a later stage reporting less: the percentage stays
    EXPECT_DOUBLE_EQ(s.to_json()["percent"].get<double>(), 42.5);
    EXPECT_EQ(s.to_json()["stage"], "upload");
    s.set("upload", 7.0);
    EXPECT_DOUBLE_EQ(s.to_json()["percent"].get<double>(), 100.0);
    s.set("init", std::nan(""));
    EXPECT_DOUBLE_EQ(s.to_json()["percent"].get<double>(), 100.0);
}
