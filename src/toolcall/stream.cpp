#include <algorithm>

#include "toolcall/toolcall.h"

namespace orcd::toolcall {

namespace {

std::string_view marker(Format f) {
    switch (f) {
        case Format::Hermes: return "<tool_call>";
        case Format::Llama3: return "<|python_tag|>";
        case Format::Mistral: return "[TOOL_CALLS]";
        case Format::None: break;
    }
    return {};
}

bool blank(std::string_view s) {
    return std::all_of(s.begin(), s.end(), [](char c) { return c == ' ' || c == '\n' || c == '\t' || c == '\r'; });
}

}  // namespace

std::string StreamSplitter::push(std::string_view text) {
    if (format_ == Format::None) return std::string(text);
    held_.append(text);
    if (in_call_) return {};
    // Llama 3.x writes a bare JSON call as the whole reply: a reply that starts with "{" is held to the end.
    if (format_ == Format::Llama3 && !emitted_) {
        const size_t first = held_.find_first_not_of(" \n\t\r");
        if (first == std::string::npos) return {};
        if (held_[first] == '{') {
            in_call_ = true;
            return {};
        }
    }
    const std::string_view m = marker(format_);
    std::string out;
    if (const size_t at = held_.find(m); at != std::string::npos) {
        in_call_ = true;
        out = held_.substr(0, at);
        held_.erase(0, at);
    } else {
        // Keep the longest suffix that could be the start of the marker.
        size_t keep = 0;
        for (size_t len = std::min(m.size() - 1, held_.size()); len > 0; --len) {
            if (held_.compare(held_.size() - len, len, m, 0, len) == 0) {
                keep = len;
                break;
            }
        }
        out = held_.substr(0, held_.size() - keep);
        held_.erase(0, held_.size() - keep);
    }
    if (!blank(out)) emitted_ = true;
    return out;
}

Parsed StreamSplitter::finish() {
    Parsed p = parse(format_, held_);
    held_.clear();
    return p;
}

}  // namespace orcd::toolcall
