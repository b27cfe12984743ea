#include "tokenizer/chat_template.h"

#include <array>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "common/error.h"
#include "tokenizer/tokenizer.h"

namespace orcd::tokenizer {

namespace {

constexpr std::array<std::string_view, 3> kNames = {"qwen2.5", "phi-3", "phi-3.5"};
constexpr std::string_view kQwenDefaultSystem = "You are Qwen, created by Alibaba Cloud. You are a helpful assistant.";

Error unsupported(std::string_view what) {
    return Error(ErrorCode::ChatTemplate, fmt::format("{}; supported chat templates: {} (choose one with "
                                                      "--chat-template NAME)",
                                                      what, fmt::join(kNames, ", ")));
}

bool contains(std::string_view hay, std::string_view needle) { return hay.find(needle) != std::string_view::npos; }

// Qwen2.5-Instruct's template without tools: the system turn (given or default), then each user / assistant / later
// system turn as <|im_start|>role\n...<|im_end|>\n, consecutive tool messages grouped into one user turn.
std::string apply_qwen(std::span<const ChatMessage> msgs, bool add_generation_prompt) {
    std::string out;
    if (msgs[0].role == "system") {
        out += "<|im_start|>system\n" + msgs[0].content + "<|im_end|>\n";
    } else {
        out += fmt::format("<|im_start|>system\n{}<|im_end|>\n", kQwenDefaultSystem);
    }
    for (size_t i = 0; i < msgs.size(); ++i) {
        const ChatMessage& m = msgs[i];
        if (m.role == "user" || (m.role == "system" && i != 0) || m.role == "assistant") {
            out += "<|im_start|>" + m.role + "\n" + m.content + "<|im_end|>\n";
        } else if (m.role == "tool") {
            if (i == 0 || msgs[i - 1].role != "tool") out += "<|im_start|>user";
            out += "\n<tool_response>\n" + m.content + "\n</tool_response>";
            if (i + 1 == msgs.size() || msgs[i + 1].role != "tool") out += "<|im_end|>\n";
        }
        // Other roles are not written, as in the template.
    }
    if (add_generation_prompt) out += "<|im_start|>assistant\n";
    return out;
}

// Phi-3-mini-4k-instruct: bos, then user turns each followed by the assistant tag; add_generation_prompt is not used
// by this template (every user turn already ends with "<|assistant|>\n").
std::string apply_phi3(std::span<const ChatMessage> msgs, const std::string& bos) {
    std::string out = bos;
    for (const ChatMessage& m : msgs) {
        if (m.role == "user") {
            out += "<|user|>\n" + m.content + "<|end|>\n<|assistant|>\n";
        } else if (m.role == "assistant") {
            out += m.content + "<|end|>\n";
        }
    }
    return out;
}

// Phi-3.5-mini-instruct: every turn tagged (empty system messages dropped); the generation prompt, or eos.
std::string apply_phi35(std::span<const ChatMessage> msgs, bool add_generation_prompt, const std::string& eos) {
    std::string out;
    for (const ChatMessage& m : msgs) {
        if (m.role == "system" && !m.content.empty()) {
            out += "<|system|>\n" + m.content + "<|end|>\n";
        } else if (m.role == "user") {
            out += "<|user|>\n" + m.content + "<|end|>\n";
        } else if (m.role == "assistant") {
            out += "<|assistant|>\n" + m.content + "<|end|>\n";
        }
    }
    out += add_generation_prompt ? std::string("<|assistant|>\n") : eos;
    return out;
}

}  // namespace

std::span<const std::string_view> ChatTemplate::supported_names() { return kNames; }

ChatTemplate ChatTemplate::detect(std::string_view text, std::string bos_text, std::string eos_text) {
    // The markers each format writes; the Qwen default system prompt distinguishes Qwen2.5's ChatML from others
    // (whose default behaviour we could not reproduce without knowing it).
    if (contains(text, "<|im_start|>") && contains(text, "<|im_end|>") && contains(text, kQwenDefaultSystem)) {
        return ChatTemplate(ChatFormat::Qwen25, std::move(bos_text), std::move(eos_text));
    }
    if (contains(text, "<|user|>") && contains(text, "<|end|>") && contains(text, "<|assistant|>")) {
        const ChatFormat f = contains(text, "<|system|>") ? ChatFormat::Phi35 : ChatFormat::Phi3;
        return ChatTemplate(f, std::move(bos_text), std::move(eos_text));
    }
    std::string head(text.substr(0, 80));
    for (char& c : head) c = (c == '\n' || c == '\r') ? ' ' : c;
    throw unsupported(fmt::format("unrecognised chat template (it starts '{}{}')", head,
                                  text.size() > 80 ? "..." : ""));
}

ChatTemplate ChatTemplate::named(std::string_view name, std::string bos_text, std::string eos_text) {
    if (name == "qwen2.5" || name == "chatml-qwen") {
        return ChatTemplate(ChatFormat::Qwen25, std::move(bos_text), std::move(eos_text));
    }
    if (name == "phi-3") return ChatTemplate(ChatFormat::Phi3, std::move(bos_text), std::move(eos_text));
    if (name == "phi-3.5") return ChatTemplate(ChatFormat::Phi35, std::move(bos_text), std::move(eos_text));
    throw unsupported(fmt::format("unknown chat template name '{}'", name));
}

ChatTemplate ChatTemplate::for_tokenizer(const Tokenizer& tokenizer, std::string_view name_override) {
    const Vocab& v = tokenizer.vocab();
    std::string bos = v.valid(v.bos) ? std::string(v.text(v.bos)) : std::string();
    std::string eos = v.valid(v.eos) ? std::string(v.text(v.eos)) : std::string();
    if (!name_override.empty()) return named(name_override, std::move(bos), std::move(eos));
    if (v.chat_template().empty()) {
        throw unsupported("the model has no tokenizer.chat_template");
    }
    return detect(v.chat_template(), std::move(bos), std::move(eos));
}

std::string_view ChatTemplate::name() const {
    switch (format_) {
        case ChatFormat::Qwen25:
            return kNames[0];
        case ChatFormat::Phi3:
            return kNames[1];
        case ChatFormat::Phi35:
            return kNames[2];
    }
    return "?";
}

std::string ChatTemplate::apply(std::span<const ChatMessage> messages, bool add_generation_prompt) const {
    if (messages.empty()) {
        throw Error(ErrorCode::ChatTemplate, "chat template: the conversation is empty, expected at least one "
                                             "message");
    }
    switch (format_) {
        case ChatFormat::Qwen25:
            return apply_qwen(messages, add_generation_prompt);
        case ChatFormat::Phi3:
            return apply_phi3(messages, bos_);
        case ChatFormat::Phi35:
            return apply_phi35(messages, add_generation_prompt, eos_);
    }
    throw Error(ErrorCode::Internal, "chat template: unknown format");
}

}  // namespace orcd::tokenizer
