#pragma once
// The conversation of `orcd chat`: the system message, the turns so far, and their file form for /save and /load.
#include <filesystem>
#include <string>
#include <vector>

#include "tokenizer/chat_template.h"

namespace orcd::cli {

class ChatSession {
public:
    // The messages to render: the system message (when not empty) followed by the turns.
    std::vector<tokenizer::ChatMessage> messages() const;
    const std::vector<tokenizer::ChatMessage>& turns() const { return turns_; }
    const std::string& system() const { return system_; }

    void set_system(std::string text) { system_ = std::move(text); }
    void add(std::string role, std::string content) { turns_.push_back({std::move(role), std::move(content)}); }
    void drop_last() {
        if (!turns_.empty()) turns_.pop_back();
    }
    void reset() { turns_.clear(); }  // the system message stays

    // JSON: {"format": "orcd-chat", "version": 1, "system": "...", "messages": [{"role", "content"}, ...]}.
    // Errors: Io (the path), InvalidArgument (what is wrong in the file, with the message index).
    void save(const std::filesystem::path& path) const;
    static ChatSession load(const std::filesystem::path& path);

private:
    std::string system_;
    std::vector<tokenizer::ChatMessage> turns_;
};

}  // namespace orcd::cli
