#pragma once
// A compiled Jinja template: the library's entry point. Parse once, render many times (each render is independent
// and may run on any thread). The text is untrusted: parsing and rendering are bounded (see RenderLimits) and every
// failure is an Error(ChatTemplate) naming the template and the line.
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

#include "template/ast.h"
#include "template/interpreter.h"

namespace orcd::tmpl {

inline constexpr size_t kMaxTemplateBytes = size_t{512} << 10;

class Template {
public:
    // `name` appears in error messages (a file name, "the model's chat template").
    Template(std::string_view source, std::string name);

    // Renders with `context`'s members as variables (a JSON object).
    std::string render(const nlohmann::ordered_json& context, const RenderOptions& options = {}) const;
    std::string render(const Dict& context, const RenderOptions& options = {}) const;

    const std::string& name() const { return name_; }

private:
    std::string name_;
    std::shared_ptr<const Body> body_;
};

// What transformers' apply_chat_template passes a chat template.
struct ChatInputs {
    nlohmann::ordered_json messages = nlohmann::ordered_json::array();
    nlohmann::ordered_json tools;  // null: none
    bool add_generation_prompt = true;
    std::string bos_token;
    std::string eos_token;
    nlohmann::ordered_json extra = nlohmann::ordered_json::object();  // more variables; they win over the above
};

// Renders as transformers does: variables messages, add_generation_prompt, bos_token, eos_token, tools and documents
// (none unless given), then `extra`'s members.
std::string render_chat(const Template& t, const ChatInputs& inputs, const RenderOptions& options = {});

}  // namespace orcd::tmpl
