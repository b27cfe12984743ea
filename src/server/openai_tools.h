#pragma once
// Tool calling on /v1/chat/completions: which parser reads the model's reply, and for tool_choice "required" or a
// named function, the grammar constraint that makes the reply a call (a JSON Schema of {"name", "arguments"} over the
// allowed tools, whose arguments follow each tool's parameter schema).
#include <optional>
#include <string>
#include <string_view>

#include "server/requests.h"
#include "toolcall/toolcall.h"

namespace orcd::server {

struct ToolPlan {
    toolcall::Format format = toolcall::Format::None;  // None: the reply is content only
    // Mistral's templates accept only 9-character alphanumeric call ids (and raise on others in the next turn).
    bool short_ids = false;
};

// Works out the plan for `r` given the chat template's text; for a forced call sets r.constraint. A request the
// worker cannot honour gives a FieldError (param + message) instead.
std::optional<FieldError> plan_tools(OpenAiRequest& r, std::string_view template_text, ToolPlan& plan);

// The JSON Schema of one call to any of `tools` (or only to `only_name` when not empty).
nlohmann::ordered_json forced_call_schema(const nlohmann::ordered_json& tools, const std::string& only_name);

}  // namespace orcd::server
