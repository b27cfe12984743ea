#include <nlohmann/json.hpp>
#include <optional>

#include "toolcall/toolcall.h"

namespace orcd::toolcall {

namespace {

using json = nlohmann::ordered_json;

constexpr std::string_view kHermesOpen = "<tool_call>";
constexpr std::string_view kHermesClose = "</tool_call>";
constexpr std::string_view kPythonTag = "<|python_tag|>";
constexpr std::string_view kMistralCalls = "[TOOL_CALLS]";
constexpr std::string_view kMistralArgs = "[ARGS]";

bool is_space(char c) { return c == ' ' || c == '\n' || c == '\t' || c == '\r'; }

std::string_view trim(std::string_view s) {
    while (!s.empty() && is_space(s.front())) s.remove_prefix(1);
    while (!s.empty() && is_space(s.back())) s.remove_suffix(1);
    return s;
}

// The length of the JSON object or array at the start of `s` (brackets matched outside strings), or npos when it
// does not close.
size_t json_value_length(std::string_view s) {
    if (s.empty() || (s[0] != '{' && s[0] != '[')) return std::string_view::npos;
    int depth = 0;
    bool in_string = false;
    for (size_t i = 0; i < s.size(); ++i) {
        const char c = s[i];
        if (in_string) {
            if (c == '\\') {
                ++i;
            } else if (c == '"') {
                in_string = false;
            }
        } else if (c == '"') {
            in_string = true;
        } else if (c == '{' || c == '[') {
            ++depth;
        } else if (c == '}' || c == ']') {
            if (--depth == 0) return i + 1;
        }
    }
    return std::string_view::npos;
}

std::optional<json> parse_json(std::string_view s) {
    json j = json::parse(s, nullptr, /*allow_exceptions=*/false);
    if (j.is_discarded()) return std::nullopt;
    return j;
}

// Arguments as OpenAI's text: an object as compact JSON; a string holding a JSON object as that object.
std::optional<std::string> arguments_text(const json& args) {
    if (args.is_object()) return args.dump();
    if (args.is_string()) {
        if (auto inner = parse_json(args.get<std::string>()); inner && inner->is_object()) return inner->dump();
    }
    return std::nullopt;
}

// {"name": ..., "arguments"|"parameters": {...}[, "id": ...]} -> a call.
std::optional<ToolCall> call_from_object(const json& j) {
    if (!j.is_object() || !j.contains("name") || !j["name"].is_string() || j["name"].get<std::string>().empty()) {
        return std::nullopt;
    }
    ToolCall c;
    c.name = j["name"].get<std::string>();
    const char* key = j.contains("arguments") ? "arguments" : j.contains("parameters") ? "parameters" : nullptr;
    if (key) {
        auto args = arguments_text(j[key]);
        if (!args) return std::nullopt;
        c.arguments = std::move(*args);
    } else {
        c.arguments = "{}";
    }
    if (j.contains("id") && j["id"].is_string()) c.id = j["id"].get<std::string>();
    return c;
}

std::optional<ToolCall> call_from_text(std::string_view s) {
    auto j = parse_json(trim(s));
    if (!j) return std::nullopt;
    return call_from_object(*j);
}

Parsed parse_hermes(std::string_view text) {
    Parsed out;
    size_t pos = 0;
    while (pos <= text.size()) {
        const size_t open = text.find(kHermesOpen, pos);
        if (open == std::string_view::npos) {
            out.content += text.substr(pos);
            break;
        }
        out.content += text.substr(pos, open - pos);
        const size_t body = open + kHermesOpen.size();
        const size_t close = text.find(kHermesClose, body);
        const size_t end = close == std::string_view::npos ? text.size() : close + kHermesClose.size();
        // An unclosed block (the reply ran out of tokens) still counts when its JSON is complete.
        const std::string_view inner =
            text.substr(body, (close == std::string_view::npos ? text.size() : close) - body);
        if (auto call = call_from_text(inner)) {
            out.calls.push_back(std::move(*call));
        } else {
            out.content += text.substr(open, end - open);
        }
        pos = end;
    }
    return out;
}

// A ";"- or whitespace-separated run of call objects filling all of `s`; nullopt when anything else is there.
std::optional<std::vector<ToolCall>> call_sequence(std::string_view s) {
    std::vector<ToolCall> calls;
    size_t i = 0;
    while (true) {
        while (i < s.size() && (is_space(s[i]) || s[i] == ';')) ++i;
        if (i == s.size()) break;
        const size_t n = json_value_length(s.substr(i));
        if (n == std::string_view::npos) return std::nullopt;
        auto call = call_from_text(s.substr(i, n));
        if (!call) return std::nullopt;
        calls.push_back(std::move(*call));
        i += n;
    }
    if (calls.empty()) return std::nullopt;
    return calls;
}

Parsed parse_llama3(std::string_view text) {
    const size_t tag = text.find(kPythonTag);
    const std::string_view before = tag == std::string_view::npos ? std::string_view{} : text.substr(0, tag);
    const std::string_view rest = tag == std::string_view::npos ? text : text.substr(tag + kPythonTag.size());
    if (tag == std::string_view::npos && !trim(text).starts_with("{")) return {std::string(text), {}};
    auto calls = call_sequence(rest);
    if (!calls) return {std::string(text), {}};
    return {std::string(trim(before)), std::move(*calls)};
}

Parsed parse_mistral(std::string_view text) {
    const size_t tag = text.find(kMistralCalls);
    if (tag == std::string_view::npos) return {std::string(text), {}};
    Parsed out{std::string(trim(text.substr(0, tag))), {}};
    std::string_view rest = text.substr(tag + kMistralCalls.size());
    auto fail = [&] { return Parsed{std::string(text), {}}; };
    while (true) {
        rest = trim(rest);
        if (rest.starts_with("[")) {
            // v0.3: a JSON array of calls.
            const size_t n = json_value_length(rest);
            if (n == std::string_view::npos) return fail();
            auto arr = parse_json(rest.substr(0, n));
            if (!arr || !arr->is_array() || arr->empty()) return fail();
            for (const auto& el : *arr) {
                auto call = call_from_object(el);
                if (!call) return fail();
                out.calls.push_back(std::move(*call));
            }
            rest.remove_prefix(n);
        } else {
            // v0.7+: NAME[ARGS]{...}
            const size_t args = rest.find(kMistralArgs);
            if (args == std::string_view::npos) return fail();
            const std::string_view name = trim(rest.substr(0, args));
            std::string_view obj = trim(rest.substr(args + kMistralArgs.size()));
            const size_t n = json_value_length(obj);
            if (name.empty() || n == std::string_view::npos) return fail();
            auto a = parse_json(obj.substr(0, n));
            if (!a || !a->is_object()) return fail();
            out.calls.push_back({"", std::string(name), a->dump()});
            rest = obj.substr(n);
        }
        rest = trim(rest);
        if (rest.empty()) break;
        if (!rest.starts_with(kMistralCalls)) return fail();
        rest.remove_prefix(kMistralCalls.size());
    }
    return out;
}

}  // namespace

Parsed parse(Format f, std::string_view text) {
    Parsed p;
    switch (f) {
        case Format::None: return {std::string(text), {}};
        case Format::Hermes: p = parse_hermes(text); break;
        case Format::Llama3: p = parse_llama3(text); break;
        case Format::Mistral: p = parse_mistral(text); break;
    }
    // The whitespace around calls is the format's, not the content's; a reply without calls is left as it is.
    if (!p.calls.empty()) p.content = std::string(trim(p.content));
    return p;
}

}  // namespace orcd::toolcall
