#include "server/requests.h"

#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <iterator>
#include <limits>
#include <nlohmann/json.hpp>
#include <optional>

namespace orcd::server {

using json = nlohmann::json;

size_t utf8_length(std::string_view s) {
    size_t n = 0;
    for (unsigned char c : s) n += (c & 0xC0) != 0x80;
    return n;
}

std::string job_id_problem(std::string_view id) {
    if (id.empty()) return "expected a non-empty string, found an empty one";
    if (id.size() > kMaxJobIdBytes)
        return fmt::format("expected at most {} bytes, found {}", kMaxJobIdBytes, id.size());
    for (size_t i = 0; i < id.size(); ++i) {
        const char c = id[i];
        if (!std::isalnum(static_cast<unsigned char>(c)) && c != '.' && c != '_' && c != ':' && c != '-') {
            return fmt::format("expected only the characters A-Z a-z 0-9 . _ : -, found byte 0x{:02x} at {}",
                               static_cast<unsigned char>(c), i);
        }
    }
    return {};
}

namespace {

std::string type_of(const json& v) {
    if (v.is_number_unsigned() || v.is_number_integer()) return fmt::format("the integer {}", v.dump());
    if (v.is_number_float()) return fmt::format("the number {}", v.dump());
    if (v.is_string()) {
        std::string s = v.dump();
        if (s.size() > 40) s = s.substr(0, 37) + "...";
        return fmt::format("the string {}", s);
    }
    return std::string(v.type_name());
}

// Whether obj is an object whose member `key` is the string `expected`. json::value(key, default) would throw when the
// member is present with another type (a fuzzer found {"type": 2}), so every type test goes through here.
bool member_is(const json& obj, const char* key, std::string_view expected) {
    if (!obj.is_object()) return false;
    auto it = obj.find(key);
    return it != obj.end() && it->is_string() && it->get_ref<const std::string&>() == expected;
}

// Reads the fields of one JSON object, recording an error per bad field. Absent (or null) optional fields keep the
// caller's default.
class Fields {
public:
    Fields(const json& obj, std::vector<FieldError>& errors, std::string prefix = {})
        : obj_(obj), errors_(errors), prefix_(std::move(prefix)) {}

    const json* get(const char* name) const {
        auto it = obj_.find(name);
        if (it == obj_.end() || it->is_null()) return nullptr;
        return &*it;
    }
    void fail(const std::string& field, std::string message) {
        errors_.push_back({prefix_ + field, std::move(message)});
    }

    std::optional<std::string> string(const char* name, bool required) {
        const json* v = get(name);
        if (!v) {
            if (required) fail(name, "required: expected a string, found nothing");
            return std::nullopt;
        }
        if (!v->is_string()) {
            fail(name, fmt::format("expected a string, found {}", type_of(*v)));
            return std::nullopt;
        }
        return v->get<std::string>();
    }

    // A number in [lo, hi] (or (lo, hi] when lo_open).
    std::optional<double> number(const char* name, double lo, double hi, bool lo_open, const char* want) {
        const json* v = get(name);
        if (!v) return std::nullopt;
        if (!v->is_number()) {
            fail(name, fmt::format("expected {}, found {}", want, type_of(*v)));
            return std::nullopt;
        }
        const double d = v->get<double>();
        if (!std::isfinite(d) || (lo_open ? d <= lo : d < lo) || d > hi) {
            fail(name, fmt::format("expected {}, found {}", want, v->dump()));
            return std::nullopt;
        }
        return d;
    }

    // An integer in [lo, hi]. Floats with an integral value (2.0) are accepted, as JavaScript clients send them.
    std::optional<int64_t> integer(const char* name, int64_t lo, int64_t hi, const std::string& want) {
        const json* v = get(name);
        if (!v) return std::nullopt;
        std::optional<int64_t> value;
        if (v->is_number_integer() && !v->is_number_unsigned()) {
            value = v->get<int64_t>();
        } else if (v->is_number_unsigned()) {
            const uint64_t u = v->get<uint64_t>();
            if (u <= static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) value = static_cast<int64_t>(u);
        } else if (v->is_number_float()) {
            const double d = v->get<double>();
            if (std::isfinite(d) && std::floor(d) == d && std::fabs(d) < 9.0e15) value = static_cast<int64_t>(d);
        }
        if (!value || *value < lo || *value > hi) {
            fail(name, fmt::format("expected {}, found {}", want, v->is_number() ? v->dump() : type_of(*v)));
            return std::nullopt;
        }
        return value;
    }

    std::optional<uint64_t> uint64(const char* name) {
        const json* v = get(name);
        if (!v) return std::nullopt;
        if (v->is_number_unsigned()) return v->get<uint64_t>();
        if (v->is_number_integer() && v->get<int64_t>() >= 0) return static_cast<uint64_t>(v->get<int64_t>());
        fail(name,
             fmt::format("expected an unsigned 64-bit integer, found {}", v->is_number() ? v->dump() : type_of(*v)));
        return std::nullopt;
    }

    std::optional<bool> boolean(const char* name) {
        const json* v = get(name);
        if (!v) return std::nullopt;
        if (!v->is_boolean()) {
            fail(name, fmt::format("expected true or false, found {}", type_of(*v)));
            return std::nullopt;
        }
        return v->get<bool>();
    }

    // A list of stop strings; `allow_single` accepts one bare string (OpenAI).
    std::vector<std::string> stops(const char* name, bool allow_single) {
        std::vector<std::string> out;
        const json* v = get(name);
        if (!v) return out;
        if (allow_single && v->is_string()) {
            out.push_back(v->get<std::string>());
            return out;
        }
        if (!v->is_array()) {
            fail(name, fmt::format("expected an array of at most {} strings{}, found {}", kMaxStopStrings,
                                   allow_single ? " (or one string)" : "", type_of(*v)));
            return out;
        }
        if (v->size() > kMaxStopStrings) {
            fail(name, fmt::format("expected at most {} stop strings, found {}", kMaxStopStrings, v->size()));
            return out;
        }
        for (size_t i = 0; i < v->size(); ++i) {
            const json& s = (*v)[i];
            if (!s.is_string()) {
                fail(fmt::format("{}[{}]", name, i), fmt::format("expected a string, found {}", type_of(s)));
            } else {
                out.push_back(s.get<std::string>());
            }
        }
        return out;
    }

    // One error per key of the object outside `known`, the message listing what is expected.
    void refuse_unknown(std::initializer_list<std::string_view> known) {
        for (auto it = obj_.begin(); it != obj_.end(); ++it) {
            if (std::find(known.begin(), known.end(), it.key()) != known.end()) continue;
            std::string list;
            for (std::string_view k : known) list += (list.empty() ? "" : ", ") + std::string(k);
            fail(it.key(), fmt::format("unknown field: expected {}", list));
        }
    }

    std::vector<FieldError>& errors() { return errors_; }
    const std::string& prefix() const { return prefix_; }

private:
    const json& obj_;
    std::vector<FieldError>& errors_;
    std::string prefix_;
};

void check_prompt(Fields& f, const char* name, const std::string& prompt) {
    if (prompt.empty()) {
        f.fail(name, "expected a non-empty string, found an empty one");
    } else if (const size_t n = utf8_length(prompt); n > kMaxPromptChars) {
        f.fail(name, fmt::format("expected at most {} characters, found {}", kMaxPromptChars, n));
    }
}

// Sampling fields shared by /execute and the OpenAI endpoints (names as in /execute; OpenAI uses the same ones for
// temperature, top_p and seed and accepts the others as extensions).
void read_sampling(Fields& f, engine::SamplingParams& s) {
    if (auto v = f.number("temperature", 0.0, 2.0, false, "a number in [0, 2]")) s.temperature = static_cast<float>(*v);
    if (auto v = f.integer("top_k", 0, std::numeric_limits<int32_t>::max(), "an integer >= 0 (0 = off)")) {
        s.top_k = static_cast<int32_t>(*v);
    }
    if (auto v = f.number("top_p", 0.0, 1.0, false, "a number in [0, 1]")) {
        if (*v == 0.0) {
            // top_p = 0 keeps only the most likely token (OpenAI's reading); the sampler wants top_p > 0, and top-k 1
            // is the same cut.
            s.top_k = 1;
            s.top_p = 1.0f;
        } else {
            s.top_p = static_cast<float>(*v);
        }
    }
    if (auto v = f.number("min_p", 0.0, 1.0, false, "a number in [0, 1]")) s.min_p = static_cast<float>(*v);
    if (auto v = f.number("repetition_penalty", 0.0, 1.0e6, true, "a number > 0 (1 = off)")) {
        s.repeat_penalty = static_cast<float>(*v);
    }
    if (auto v = f.uint64("seed")) s.seed = *v;
}

// llama-server's "grammar" (GBNF text) and "json_schema" (a schema object), and OpenAI's response_format: at most
// one of them.
void read_constraint(Fields& f, ConstraintSpec& out) {
    auto set = [&](ConstraintSpec::Kind kind, std::string text, const char* param) {
        if (out.kind != ConstraintSpec::Kind::None) {
            f.fail(param, fmt::format("expected at most one of grammar, json_schema and response_format, found {} "
                                      "and {}",
                                      out.param, param));
            return;
        }
        out = {kind, std::move(text), param};
    };
    if (auto g = f.string("grammar", false)) {
        if (g->empty()) {
            f.fail("grammar", "expected GBNF text, found an empty string");
        } else {
            set(ConstraintSpec::Kind::Gbnf, std::move(*g), "grammar");
        }
    }
    if (const json* js = f.get("json_schema")) {
        if (!js->is_object() && !js->is_boolean()) {
            f.fail("json_schema", fmt::format("expected a JSON Schema object, found {}", type_of(*js)));
        } else {
            set(ConstraintSpec::Kind::JsonSchema, js->dump(), "json_schema");
        }
    }
    const json* rf = f.get("response_format");
    if (!rf) return;
    if (!rf->is_object() || !rf->contains("type") || !(*rf)["type"].is_string()) {
        f.fail("response_format", fmt::format("expected an object with a type (text, json_object or json_schema), "
                                              "found {}",
                                              type_of(*rf)));
        return;
    }
    const std::string type = (*rf)["type"].get<std::string>();
    for (auto it = rf->begin(); it != rf->end(); ++it) {
        if (it.key() != "type" && !(type == "json_schema" && it.key() == "json_schema")) {
            f.fail("response_format." + it.key(), fmt::format("unknown field for type {}", type));
        }
    }
    if (type == "text") return;
    if (type == "json_object")
        return set(ConstraintSpec::Kind::JsonSchema, R"({"type":"json_object"})", "response_format");
    if (type != "json_schema") {
        f.fail("response_format.type", fmt::format("expected text, json_object or json_schema, found \"{}\"", type));
        return;
    }
    const json* js = rf->contains("json_schema") ? &(*rf)["json_schema"] : nullptr;
    if (!js || !js->is_object()) {
        f.fail("response_format.json_schema",
               fmt::format("expected an object {{\"name\", \"schema\", \"strict\"}}, found {}",
                           js ? type_of(*js) : "nothing"));
        return;
    }
    Fields jf(*js, f.errors(), f.prefix() + "response_format.json_schema.");
    jf.refuse_unknown({"name", "description", "schema", "strict"});
    if (auto name = jf.string("name", true)) (void)name;
    (void)jf.string("description", false);
    (void)jf.boolean("strict");  // the output always follows the schema: strict or not
    const json* schema = jf.get("schema");
    if (!schema || !(schema->is_object() || schema->is_boolean())) {
        jf.fail("schema",
                fmt::format("expected a JSON Schema object, found {}", schema ? type_of(*schema) : "nothing"));
        return;
    }
    set(ConstraintSpec::Kind::JsonSchema, schema->dump(), "response_format");
}

// OpenAI's logit_bias: {"token id": bias in [-100, 100]}. Ids are checked against the vocabulary later (the request
// layer does not know it).
void read_logit_bias(Fields& f, engine::SamplingParams& s) {
    const json* lb = f.get("logit_bias");
    if (!lb) return;
    if (!lb->is_object()) {
        f.fail("logit_bias", fmt::format("expected an object mapping token ids to biases, found {}", type_of(*lb)));
        return;
    }
    if (lb->size() > kMaxLogitBias) {
        f.fail("logit_bias", fmt::format("expected at most {} entries, found {}", kMaxLogitBias, lb->size()));
        return;
    }
    for (auto it = lb->begin(); it != lb->end(); ++it) {
        const std::string at = fmt::format("logit_bias[\"{}\"]", it.key());
        int64_t id = -1;
        const std::string& k = it.key();
        if (!k.empty() && k.size() <= 10 &&
            std::all_of(k.begin(), k.end(), [](char c) { return c >= '0' && c <= '9'; })) {
            id = std::stoll(k);
        }
        if (id < 0 || id > std::numeric_limits<int32_t>::max()) {
            f.fail(at, "expected a token id (a decimal integer >= 0) as the key");
            continue;
        }
        const json& v = it.value();
        if (!v.is_number() || !std::isfinite(v.get<double>()) || v.get<double>() < -100 || v.get<double>() > 100) {
            f.fail(at,
                   fmt::format("expected a number in [-100, 100], found {}", v.is_number() ? v.dump() : type_of(v)));
            continue;
        }
        s.logit_bias.emplace_back(static_cast<engine::TokenId>(id), v.get<float>());
    }
}

void read_penalties(Fields& f, engine::SamplingParams& s) {
    if (auto v = f.number("presence_penalty", -2.0, 2.0, false, "a number in [-2, 2]")) {
        s.presence_penalty = static_cast<float>(*v);
    }
    if (auto v = f.number("frequency_penalty", -2.0, 2.0, false, "a number in [-2, 2]")) {
        s.frequency_penalty = static_cast<float>(*v);
    }
    read_logit_bias(f, s);
}

// An assistant message's tool_calls, as templates read them: arguments as a JSON value (OpenAI sends a string of
// JSON; the templates write `arguments | tojson`).
nlohmann::ordered_json read_tool_calls(Fields& mf, const json& calls) {
    nlohmann::ordered_json out = nlohmann::ordered_json::array();
    if (!calls.is_array()) {
        mf.fail("tool_calls", fmt::format("expected an array of tool calls, found {}", type_of(calls)));
        return out;
    }
    for (size_t i = 0; i < calls.size(); ++i) {
        const json& c = calls[i];
        const std::string at = fmt::format("tool_calls[{}]", i);
        if (!c.is_object() || !c.contains("function") || !c["function"].is_object() ||
            !c["function"].contains("name") || !c["function"]["name"].is_string()) {
            mf.fail(at, "expected {\"id\", \"type\": \"function\", \"function\": {\"name\", \"arguments\"}}");
            continue;
        }
        const json& fn = c["function"];
        nlohmann::ordered_json args = nlohmann::ordered_json::object();
        if (fn.contains("arguments") && fn["arguments"].is_string()) {
            try {
                args = nlohmann::ordered_json::parse(fn["arguments"].get<std::string>());
            } catch (const nlohmann::json::exception&) {
                mf.fail(at + ".function.arguments", "expected a string of JSON, found text that does not parse");
            }
        } else if (fn.contains("arguments") && fn["arguments"].is_object()) {
            args = nlohmann::ordered_json::parse(fn["arguments"].dump());
        } else if (fn.contains("arguments")) {
            mf.fail(at + ".function.arguments",
                    fmt::format("expected a string of JSON, found {}", type_of(fn["arguments"])));
        }
        nlohmann::ordered_json call = {{"type", "function"},
                                       {"function", {{"name", fn["name"]}, {"arguments", std::move(args)}}}};
        if (c.contains("id") && c["id"].is_string()) call["id"] = c["id"];
        out.push_back(std::move(call));
    }
    return out;
}

// tools: [{"type": "function", "function": {"name", "description"?, "parameters"?}}].
void read_tools(Fields& f, OpenAiRequest& r) {
    const json* tools = f.get("tools");
    if (tools) {
        if (!tools->is_array()) {
            f.fail("tools", fmt::format("expected an array of tools, found {}", type_of(*tools)));
        } else if (!tools->empty()) {
            r.tools = nlohmann::ordered_json::array();
            for (size_t i = 0; i < tools->size(); ++i) {
                const json& t = (*tools)[i];
                const std::string at = fmt::format("tools[{}]", i);
                if (!member_is(t, "type", "function") || !t.contains("function") || !t["function"].is_object() ||
                    !t["function"].contains("name") || !t["function"]["name"].is_string()) {
                    f.fail(at,
                           "expected {\"type\": \"function\", \"function\": {\"name\", \"description\", "
                           "\"parameters\"}}");
                    continue;
                }
                if (t["function"].contains("parameters") && !t["function"]["parameters"].is_object()) {
                    f.fail(at + ".function.parameters", "expected a JSON Schema object");
                    continue;
                }
                r.tools.push_back(nlohmann::ordered_json::parse(t.dump()));
            }
        }
    }
    const json* choice = f.get("tool_choice");
    if (!choice) {
        r.tool_choice = r.tools.is_null() ? "none" : "auto";
        return;
    }
    if (choice->is_string()) {
        const std::string c = choice->get<std::string>();
        if (c != "none" && c != "auto" && c != "required") {
            f.fail("tool_choice", fmt::format("expected none, auto, required or a named function, found \"{}\"", c));
        }
        r.tool_choice = c;
    } else if (member_is(*choice, "type", "function") && choice->contains("function") &&
               (*choice)["function"].is_object() && (*choice)["function"].contains("name") &&
               (*choice)["function"]["name"].is_string()) {
        r.tool_choice = "function";
        r.tool_choice_name = (*choice)["function"]["name"].get<std::string>();
        bool found = false;
        for (const auto& t : r.tools.is_null() ? nlohmann::ordered_json::array() : r.tools) {
            found = found || t["function"]["name"] == r.tool_choice_name;
        }
        if (!found) {
            f.fail("tool_choice", fmt::format("the function \"{}\" is not among the tools", r.tool_choice_name));
        }
    } else {
        f.fail("tool_choice", fmt::format("expected none, auto, required or {{\"type\": \"function\", \"function\": "
                                          "{{\"name\"}}}}, found {}",
                                          type_of(*choice)));
    }
    if (r.tool_choice != "none" && r.tools.is_null()) {
        f.fail("tool_choice", "a tool choice other than none needs tools");
    }
}

}  // namespace

ExecuteRequest parse_execute(const json& body, uint32_t context_length, std::vector<FieldError>& errors) {
    ExecuteRequest r;
    if (!body.is_object()) {
        errors.push_back({"(body)", fmt::format("expected a JSON object, found {}", type_of(body))});
        return r;
    }
    static constexpr const char* kKnown[] = {"job_id",  "prompt",     "max_tokens", "temperature",        "top_p",
                                             "top_k",   "min_p",      "stop",       "repetition_penalty", "seed",
                                             "grammar", "json_schema"};
    // Unknown fields are refused: a misspelt "temprature" silently ignored would change results unnoticed.
    for (auto it = body.begin(); it != body.end(); ++it) {
        if (std::find(std::begin(kKnown), std::end(kKnown), it.key()) == std::end(kKnown)) {
            errors.push_back({it.key(), "unknown field"});
        }
    }
    Fields f(body, errors);
    if (auto id = f.string("job_id", true)) {
        if (std::string why = job_id_problem(*id); !why.empty()) {
            f.fail("job_id", std::move(why));
        } else {
            r.job_id = std::move(*id);
        }
    }
    if (auto p = f.string("prompt", true)) {
        check_prompt(f, "prompt", *p);
        r.generate.prompt = std::move(*p);
    }
    r.generate.max_tokens = std::min<uint32_t>(128, context_length);
    if (auto v = f.integer("max_tokens", 1, context_length,
                           fmt::format("an integer in [1, {}] (the context length)", context_length))) {
        r.generate.max_tokens = static_cast<uint32_t>(*v);
    }
    read_sampling(f, r.generate.sampling);
    r.generate.stop = f.stops("stop", false);
    read_constraint(f, r.constraint);
    return r;
}

std::span<const std::string_view> openai_supported_fields(bool chat) {
    // OpenAI's fields the worker implements on both endpoints, then the extensions it shares with llama-server (top_k,
    // min_p, repetition_penalty, grammar, json_schema); each endpoint adds its own.
    static constexpr std::string_view kBoth[] = {"model",
                                                 "max_tokens",
                                                 "temperature",
                                                 "top_p",
                                                 "seed",
                                                 "stop",
                                                 "stream",
                                                 "stream_options",
                                                 "n",
                                                 "presence_penalty",
                                                 "frequency_penalty",
                                                 "logit_bias",
                                                 "logprobs",
                                                 "user",
                                                 "response_format",
                                                 "top_k",
                                                 "min_p",
                                                 "repetition_penalty",
                                                 "grammar",
                                                 "json_schema"};
    static constexpr std::string_view kChatOnly[] = {"messages", "max_completion_tokens", "top_logprobs",
                                                     "tools",    "tool_choice",           "parallel_tool_calls"};
    static constexpr std::string_view kCompletionsOnly[] = {"prompt", "best_of", "echo"};
    auto with_both = [](std::span<const std::string_view> own) {
        std::vector<std::string_view> v(std::begin(kBoth), std::end(kBoth));
        v.insert(v.end(), own.begin(), own.end());
        return v;
    };
    static const std::vector<std::string_view> kChat = with_both(kChatOnly);
    static const std::vector<std::string_view> kCompletions = with_both(kCompletionsOnly);
    if (chat) return kChat;
    return kCompletions;
}

namespace {

void read_messages(Fields& f, const json& msgs, std::vector<tokenizer::ChatMessage>& out) {
    std::vector<FieldError>& errors = f.errors();
    size_t total_chars = 0;
    for (size_t i = 0; i < msgs.size(); ++i) {
        const json& m = msgs[i];
        const std::string at = fmt::format("messages[{}]", i);
        if (!m.is_object()) {
            f.fail(at, fmt::format("expected an object with role and content, found {}", type_of(m)));
            continue;
        }
        tokenizer::ChatMessage cm;
        Fields mf(m, errors, at + ".");
        mf.refuse_unknown({"role", "content", "name", "tool_calls", "tool_call_id", "refusal"});
        if (auto role = mf.string("role", true)) {
            if (*role != "system" && *role != "user" && *role != "assistant" && *role != "tool" &&
                *role != "developer") {
                mf.fail("role",
                        fmt::format("expected system, developer, user, assistant or tool, found \"{}\"", *role));
            }
            // "developer" is OpenAI's newer name for the system role.
            cm.role = *role == "developer" ? "system" : std::move(*role);
        }
        nlohmann::ordered_json extra = nlohmann::ordered_json::object();
        if (auto name = mf.string("name", false)) extra["name"] = *name;
        if (const json* calls = mf.get("tool_calls")) {
            if (cm.role != "assistant") mf.fail("tool_calls", "only assistant messages carry tool calls");
            extra["tool_calls"] = read_tool_calls(mf, *calls);
        }
        if (auto id = mf.string("tool_call_id", cm.role == "tool")) extra["tool_call_id"] = *id;
        const json* content = mf.get("content");
        if (content && content->is_string()) {
            cm.content = content->get<std::string>();
        } else if (content && content->is_array()) {
            // Content parts: only text can be served by a text model.
            for (size_t k = 0; k < content->size(); ++k) {
                const json& part = (*content)[k];
                if (member_is(part, "type", "text") && part.contains("text") && part["text"].is_string()) {
                    cm.content += part["text"].get<std::string>();
                } else {
                    mf.fail(fmt::format("content[{}]", k),
                            fmt::format("expected a text part {{\"type\": \"text\", \"text\": ...}}, found {}",
                                        type_of(part)));
                }
            }
        } else if (!(content == nullptr && cm.role == "assistant")) {
            mf.fail("content", fmt::format("expected a string or an array of text parts, found {}",
                                           content ? type_of(*content) : "nothing"));
        }
        if (!extra.empty()) cm.extra = std::move(extra);
        total_chars += utf8_length(cm.content);
        out.push_back(std::move(cm));
    }
    if (total_chars > kMaxPromptChars) {
        f.fail("messages",
               fmt::format("expected at most {} characters of content in all, found {}", kMaxPromptChars, total_chars));
    }
}

}  // namespace

OpenAiRequest parse_openai(const json& body, bool chat, uint32_t context_length, std::vector<FieldError>& errors) {
    OpenAiRequest r;
    r.chat = chat;
    if (!body.is_object()) {
        errors.push_back({"(body)", fmt::format("expected a JSON object, found {}", type_of(body))});
        return r;
    }
    const auto supported = openai_supported_fields(chat);
    for (auto it = body.begin(); it != body.end(); ++it) {
        if (std::find(supported.begin(), supported.end(), it.key()) == supported.end()) {
            r.unsupported.push_back(it.key());
        }
    }
    Fields f(body, errors);
    if (auto m = f.string("model", true)) r.model = std::move(*m);

    if (chat) {
        const json* msgs = f.get("messages");
        if (!msgs || !msgs->is_array() || msgs->empty()) {
            f.fail("messages", fmt::format("expected a non-empty array of messages, found {}",
                                           msgs ? (msgs->is_array() ? "an empty array" : type_of(*msgs)) : "nothing"));
        } else {
            read_messages(f, *msgs, r.messages);
        }
    } else {
        const json* p = f.get("prompt");
        if (p && p->is_array() && p->size() == 1 && (*p)[0].is_string()) p = &(*p)[0];
        if (!p || !p->is_string()) {
            f.fail("prompt",
                   fmt::format("expected a string (or an array of one string), found {}", p ? type_of(*p) : "nothing"));
        } else {
            r.prompt = p->get<std::string>();
            check_prompt(f, "prompt", r.prompt);
            r.generate.prompt = r.prompt;
        }
    }

    // OpenAI's defaults: 16 tokens for completions, as much as fits for chat (capped here at the context).
    r.generate.max_tokens = chat ? context_length : std::min<uint32_t>(16, context_length);
    const std::string want_tokens = fmt::format("an integer in [1, {}] (the context length)", context_length);
    if (auto v = f.integer("max_tokens", 1, context_length, want_tokens))
        r.generate.max_tokens = static_cast<uint32_t>(*v);
    if (chat) {
        if (auto v = f.integer("max_completion_tokens", 1, context_length, want_tokens)) {
            r.generate.max_tokens = static_cast<uint32_t>(*v);
        }
    }
    // OpenAI's sampling has no top-k or min-p: off unless the request asks (extension fields); temperature 1.
    engine::SamplingParams& s = r.generate.sampling;
    s.temperature = 1.0f;
    s.top_p = 1.0f;
    s.top_k = 0;
    s.min_p = 0.0f;
    read_sampling(f, s);
    read_penalties(f, s);
    r.generate.stop = f.stops("stop", true);
    if (auto v = f.boolean("stream")) r.stream = *v;
    if (const json* so = f.get("stream_options")) {
        if (!so->is_object()) {
            f.fail("stream_options", fmt::format("expected an object, found {}", type_of(*so)));
        } else {
            Fields sf(*so, errors, "stream_options.");
            sf.refuse_unknown({"include_usage"});
            if (auto v = sf.boolean("include_usage")) r.include_usage = *v;
            if (!r.stream) f.fail("stream_options", "expected only with stream: true");
        }
    }
    if (auto n =
            f.integer("n", 1, kMaxChoices, fmt::format("an integer in [1, {}] (choices per request)", kMaxChoices))) {
        r.n = static_cast<uint32_t>(*n);
    }
    if (auto u = f.string("user", false)) r.user = std::move(*u);
    if (chat) {
        if (auto v = f.boolean("logprobs")) r.logprobs = *v;
        if (auto v = f.integer("top_logprobs", 0, engine::kMaxTopLogprobs,
                               fmt::format("an integer in [0, {}]", engine::kMaxTopLogprobs))) {
            if (!r.logprobs) f.fail("top_logprobs", "expected only with logprobs: true");
            r.top_logprobs = static_cast<uint32_t>(*v);
        }
        read_tools(f, r);
        // The parsers return every call the model writes; one call only is what a forced call gives.
        if (auto v = f.boolean("parallel_tool_calls");
            v && !*v && r.tool_choice != "required" && r.tool_choice != "function" && r.tool_choice != "none") {
            f.fail("parallel_tool_calls",
                   "false is supported only with tool_choice \"required\" or a named "
                   "function (which produce one call): expected true");
        }
    } else {
        if (auto n = f.integer("best_of", 1, 1, "1 (best_of > 1 is not supported)")) (void)n;
        if (auto v = f.boolean("echo"); v && *v) f.fail("echo", "echo is not supported: expected false");
        // The legacy form: logprobs N asks for the N most likely tokens at each position (OpenAI allows up to 5).
        if (auto v = f.integer("logprobs", 0, 5, "an integer in [0, 5]")) {
            r.logprobs = true;
            r.top_logprobs = static_cast<uint32_t>(*v);
        }
    }
    read_constraint(f, r.constraint);
    return r;
}

}  // namespace orcd::server
