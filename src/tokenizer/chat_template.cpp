#include "tokenizer/chat_template.h"

#include <fstream>
#include <iterator>

#include <fmt/format.h>

#include "common/error.h"
#include "template/template.h"
#include "tokenizer/tokenizer.h"

namespace orcd::tokenizer {

ChatTemplate ChatTemplate::from_text(std::string_view template_text, std::string bos_text, std::string eos_text,
                                     std::string name) {
    auto t = std::make_shared<const tmpl::Template>(template_text, name);
    return ChatTemplate(std::move(t), std::move(bos_text), std::move(eos_text), std::move(name));
}

ChatTemplate ChatTemplate::for_tokenizer(const Tokenizer& tokenizer, std::string_view template_file) {
    const Vocab& v = tokenizer.vocab();
    std::string bos = v.valid(v.bos) ? std::string(v.text(v.bos)) : std::string();
    std::string eos = v.valid(v.eos) ? std::string(v.text(v.eos)) : std::string();
    if (!template_file.empty()) {
        std::ifstream in{std::string(template_file), std::ios::binary};
        if (!in)
            throw Error(ErrorCode::FileNotFound, fmt::format("--chat-template-file: cannot open '{}'", template_file));
        const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
        return from_text(text, std::move(bos), std::move(eos), std::string(template_file));
    }
    if (v.chat_template().empty()) {
        throw Error(ErrorCode::ChatTemplate,
                    "the model has no tokenizer.chat_template; give one with "
                    "--chat-template-file FILE (a Jinja chat template)");
    }
    return from_text(v.chat_template(), std::move(bos), std::move(eos), "the model's tokenizer.chat_template");
}

std::string ChatTemplate::apply(std::span<const ChatMessage> messages, bool add_generation_prompt,
                                const nlohmann::ordered_json& tools) const {
    if (messages.empty()) {
        throw Error(ErrorCode::ChatTemplate,
                    "chat template: the conversation is empty, expected at least one "
                    "message");
    }
    tmpl::ChatInputs in;
    for (const ChatMessage& m : messages) {
        nlohmann::ordered_json j = {{"role", m.role}, {"content", m.content}};
        if (m.extra.is_object())
            for (const auto& [k, val] : m.extra.items()) j[k] = val;
        in.messages.push_back(std::move(j));
    }
    in.tools = tools;
    in.add_generation_prompt = add_generation_prompt;
    in.bos_token = bos_;
    in.eos_token = eos_;
    return tmpl::render_chat(*template_, in);
}

}  // namespace orcd::tokenizer
