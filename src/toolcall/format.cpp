#include "toolcall/toolcall.h"

namespace orcd::toolcall {

std::string_view format_name(Format f) {
    switch (f) {
        case Format::None: return "none";
        case Format::Hermes: return "hermes";
        case Format::Llama3: return "llama3";
        case Format::Mistral: return "mistral";
    }
    return "none";
}

Format detect_format(std::string_view t) {
    // The template writes the calls of earlier turns the way the model was trained to write them.
    if (t.find("<tool_call>") != std::string_view::npos) return Format::Hermes;
    if (t.find("[TOOL_CALLS]") != std::string_view::npos) return Format::Mistral;
    if (t.find("<|python_tag|>") != std::string_view::npos) return Format::Llama3;
    // Llama 3.2/3.3 templates without built-in tools still describe the JSON call format to the model.
    if (t.find("<|start_header_id|>") != std::string_view::npos && t.find("\"parameters\"") != std::string_view::npos) {
        return Format::Llama3;
    }
    return Format::None;
}

bool needs_special_tokens(Format f) { return f == Format::Llama3 || f == Format::Mistral; }

}  // namespace orcd::toolcall
