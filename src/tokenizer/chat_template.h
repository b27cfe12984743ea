#pragma once
// Chat formatting: messages -> the prompt text a chat model was trained on, by rendering the model's own Jinja chat
// template (tokenizer.chat_template) with the template engine (src/template), as Hugging Face transformers does. A
// template file can replace the model's (--chat-template-file); a model without one is an error, never a guess.
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

namespace orcd::tmpl {
class Template;
}

namespace orcd::tokenizer {

class Tokenizer;

struct ChatMessage {
    std::string role;  // "system", "user", "assistant", "tool", ...
    std::string content;
    // More members of the message as the template sees them (tool_calls, name, tool_call_id, ...); an object or null.
    nlohmann::ordered_json extra = nullptr;
};

class ChatTemplate {
public:
    // A template from its Jinja text. `name` appears in errors. Throws Error(ChatTemplate) for a syntax error.
    static ChatTemplate from_text(std::string_view template_text, std::string bos_text, std::string eos_text,
                                  std::string name = "the chat template");
    // The tokenizer's model: the template in `template_file` when not empty, else its tokenizer.chat_template. Throws
    // Error(ChatTemplate) when the model has no template and no file is given (naming --chat-template-file), and
    // Error(FileNotFound) for a file that cannot be read.
    static ChatTemplate for_tokenizer(const Tokenizer& tokenizer, std::string_view template_file = {});

    // Renders the conversation (tools: a JSON array, or null). Throws Error(ChatTemplate) for an empty conversation
    // or when the template raises (e.g. roles that do not alternate).
    std::string apply(std::span<const ChatMessage> messages, bool add_generation_prompt,
                      const nlohmann::ordered_json& tools = nullptr) const;

    const std::string& name() const { return name_; }

private:
    ChatTemplate(std::shared_ptr<const tmpl::Template> t, std::string bos, std::string eos, std::string name)
        : template_(std::move(t)), bos_(std::move(bos)), eos_(std::move(eos)), name_(std::move(name)) {}

    std::shared_ptr<const tmpl::Template> template_;
    std::string bos_;  // text of the bos / eos tokens, as the templates write them
    std::string eos_;
    std::string name_;
};

}  // namespace orcd::tokenizer
