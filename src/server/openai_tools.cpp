#include "server/openai_tools.h"

#include <fmt/format.h>

#include "common/error.h"
#include "grammar/json_schema.h"

namespace orcd::server {

using ojson = nlohmann::ordered_json;

ojson forced_call_schema(const ojson& tools, const std::string& only_name) {
    ojson any = ojson::array();
    for (const auto& t : tools) {
        const ojson& fn = t["function"];
        const std::string name = fn["name"].get<std::string>();
        if (!only_name.empty() && name != only_name) continue;
        ojson params = fn.contains("parameters") ? fn["parameters"] : ojson{{"type", "object"}};
        any.push_back({{"type", "object"},
                       {"properties", {{"name", {{"const", name}}}, {"arguments", std::move(params)}}},
                       {"required", {"name", "arguments"}},
                       {"additionalProperties", false}});
    }
    if (any.size() == 1) return any[0];
    return {{"anyOf", std::move(any)}};
}

std::optional<FieldError> plan_tools(OpenAiRequest& r, std::string_view template_text, ToolPlan& plan) {
    plan = {};
    if (r.tools.is_null() || r.tool_choice == "none") return std::nullopt;
    const toolcall::Format native = toolcall::detect_format(template_text);
    plan.short_ids = native == toolcall::Format::Mistral;
    if (r.tool_choice == "auto") {
        plan.format = native;
        if (plan.format == toolcall::Format::None) {
            return FieldError{"tools",
                              "the chat template writes tool calls in no format this worker parses (Hermes/"
                              "Qwen <tool_call>, Llama 3.x JSON or <|python_tag|>, Mistral [TOOL_CALLS]): "
                              "give a template that does with --chat-template-file, or tool_choice: "
                              "\"required\""};
        }
        return std::nullopt;
    }
    // "required" or a named function: the reply is constrained to one call, written as a bare JSON object (which
    // the Llama 3.x reader takes as it is), whatever the template's own format.
    if (r.constraint.kind != ConstraintSpec::Kind::None) {
        return FieldError{"tool_choice", fmt::format("a forced tool call (tool_choice \"{}\") cannot be combined with "
                                                     "{}",
                                                     r.tool_choice, r.constraint.param)};
    }
    // Each tool's parameters on their own first, so that an unsupported keyword is named where the client wrote it.
    for (size_t i = 0; i < r.tools.size(); ++i) {
        const ojson& fn = r.tools[i]["function"];
        if (!fn.contains("parameters")) continue;
        if (!r.tool_choice_name.empty() && fn["name"] != r.tool_choice_name) continue;
        try {
            (void)grammar::json_schema_to_gbnf(fn["parameters"].dump());
        } catch (const Error& e) {
            return FieldError{fmt::format("tools[{}].function.parameters", i), e.what()};
        }
    }
    r.constraint = {ConstraintSpec::Kind::JsonSchema, forced_call_schema(r.tools, r.tool_choice_name).dump(), "tools"};
    plan.format = toolcall::Format::Llama3;
    return std::nullopt;
}

}  // namespace orcd::server
