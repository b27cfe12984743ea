#include "cli/chat_session.h"

#include <fmt/format.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "common/error.h"

namespace orcd::cli {

std::vector<tokenizer::ChatMessage> ChatSession::messages() const {
    std::vector<tokenizer::ChatMessage> out;
    if (!system_.empty()) out.push_back({"system", system_});
    out.insert(out.end(), turns_.begin(), turns_.end());
    return out;
}

void ChatSession::save(const std::filesystem::path& path) const {
    nlohmann::ordered_json j;
    j["format"] = "orcd-chat";
    j["version"] = 1;
    j["system"] = system_;
    j["messages"] = nlohmann::ordered_json::array();
    for (const auto& m : turns_) j["messages"].push_back({{"role", m.role}, {"content", m.content}});
    std::ofstream f(path, std::ios::binary | std::ios::trunc);
    if (!f) throw Error(ErrorCode::Io, fmt::format("cannot write the conversation to {}", path.string()));
    f << j.dump(2, ' ', false, nlohmann::json::error_handler_t::replace) << '\n';
    if (!f.flush()) throw Error(ErrorCode::Io, fmt::format("writing the conversation to {} failed", path.string()));
}

ChatSession ChatSession::load(const std::filesystem::path& path) {
    std::ifstream f(path, std::ios::binary);
    if (!f) throw Error(ErrorCode::Io, fmt::format("cannot read a conversation from {}", path.string()));
    std::stringstream text;
    text << f.rdbuf();
    const auto bad = [&](const std::string& what) {
        return Error(ErrorCode::InvalidArgument,
                     fmt::format("{}: not a conversation saved by /save: {}", path.string(), what));
    };
    const nlohmann::json j = nlohmann::json::parse(text.str(), nullptr, /*allow_exceptions=*/false);
    if (j.is_discarded()) throw bad("not valid JSON");
    if (!j.is_object() || !j.contains("format") || j["format"] != "orcd-chat")
        throw bad("expected an object with \"format\": \"orcd-chat\"");
    if (!j.contains("version") || j["version"] != 1) throw bad("expected \"version\": 1");
    ChatSession s;
    if (j.contains("system")) {
        if (!j["system"].is_string()) throw bad("\"system\" must be a string");
        s.system_ = j["system"].get<std::string>();
    }
    if (!j.contains("messages") || !j["messages"].is_array()) throw bad("expected a \"messages\" array");
    size_t i = 0;
    for (const auto& m : j["messages"]) {
        if (!m.is_object() || !m.contains("role") || !m["role"].is_string() || !m.contains("content") ||
            !m["content"].is_string()) {
            throw bad(fmt::format("messages[{}]: expected {{\"role\": string, \"content\": string}}", i));
        }
        const std::string role = m["role"].get<std::string>();
        if (role != "user" && role != "assistant") {
            throw bad(fmt::format("messages[{}]: role \"{}\", expected \"user\" or \"assistant\"", i, role));
        }
        s.turns_.push_back({role, m["content"].get<std::string>()});
        ++i;
    }
    return s;
}

}  // namespace orcd::cli
