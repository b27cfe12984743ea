#include "template/template.h"

#include <fmt/format.h>

#include "common/error.h"
#include "template/lexer.h"
#include "template/parser.h"

namespace orcd::tmpl {

Template::Template(std::string_view source, std::string name) : name_(std::move(name)) {
    if (source.size() > kMaxTemplateBytes)
        throw Error(ErrorCode::ChatTemplate, fmt::format("template {}: {} bytes is larger than the limit of {} bytes",
                                                         name_, source.size(), kMaxTemplateBytes));
    const std::vector<Token> tokens = tokenize(source, name_, LexerOptions{});
    body_ = std::make_shared<const Body>(parse(tokens, name_));
}

std::string Template::render(const Dict& context, const RenderOptions& options) const {
    Interpreter in(name_, options);
    return in.render(*body_, context);
}

std::string Template::render(const nlohmann::ordered_json& context, const RenderOptions& options) const {
    if (!context.is_object())
        throw Error(ErrorCode::InvalidArgument, fmt::format("template {}: the context must be a JSON object", name_));
    const Value v = Value::from_json(context);
    return render(v.dict(), options);
}

std::string render_chat(const Template& t, const ChatInputs& inputs, const RenderOptions& options) {
    Dict ctx;
    ctx.set("messages", Value::from_json(inputs.messages));
    ctx.set("add_generation_prompt", Value(inputs.add_generation_prompt));
    ctx.set("bos_token", Value(inputs.bos_token));
    ctx.set("eos_token", Value(inputs.eos_token));
    ctx.set("tools", inputs.tools.is_null() ? Value::none() : Value::from_json(inputs.tools));
    ctx.set("documents", Value::none());
    if (inputs.extra.is_object())
        for (const auto& [k, v] : inputs.extra.items()) ctx.set(k, Value::from_json(v));
    return t.render(ctx, options);
}

}  // namespace orcd::tmpl
