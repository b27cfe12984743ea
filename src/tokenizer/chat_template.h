#pragma once
// Chat formatting: messages -> the prompt text a chat model was trained on. Instead of a Jinja interpreter, each
// supported format is written out in C++ and recognised from the text of tokenizer.chat_template; the output is
// checked against jinja2's rendering of the real templates (tests/tokenizer/fixtures/chat_templates.json).
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace orcd::tokenizer {

class Tokenizer;

struct ChatMessage {
    std::string role;  // "system", "user", "assistant" or "tool" (Qwen2.5)
    std::string content;
};

enum class ChatFormat {
    Qwen25,  // ChatML with Qwen2.5's default system prompt; tool responses as <tool_response> blocks
    Phi3,    // Phi-3-mini: <s><|user|>\n..<|end|>\n<|assistant|>\n; system messages dropped, always ends ready to answer
    Phi35,   // Phi-3.5-mini: like Phi-3 with <|system|> turns, an optional generation prompt, eos otherwise
};

class ChatTemplate {
public:
    // Recognises the format from a template's text. Throws Error(ChatTemplate) when it is not one of the supported
    // formats (the message quotes the template's start and lists the names --chat-template accepts).
    static ChatTemplate detect(std::string_view template_text, std::string bos_text, std::string eos_text);
    // A format by name: "qwen2.5" (alias "chatml-qwen"), "phi-3", "phi-3.5". Throws Error(ChatTemplate) otherwise.
    static ChatTemplate named(std::string_view name, std::string bos_text, std::string eos_text);
    // The tokenizer's model: `name_override` when not empty, else its tokenizer.chat_template. Throws
    // Error(ChatTemplate) when the model has no template and no override is given.
    static ChatTemplate for_tokenizer(const Tokenizer& tokenizer, std::string_view name_override = {});
    static std::span<const std::string_view> supported_names();

    // Formats the conversation. Throws Error(ChatTemplate) for an empty conversation.
    std::string apply(std::span<const ChatMessage> messages, bool add_generation_prompt) const;

    ChatFormat format() const { return format_; }
    std::string_view name() const;

private:
    ChatTemplate(ChatFormat f, std::string bos, std::string eos)
        : format_(f), bos_(std::move(bos)), eos_(std::move(eos)) {}

    ChatFormat format_;
    std::string bos_;  // text of the bos / eos tokens, as the templates write them
    std::string eos_;
};

}  // namespace orcd::tokenizer
