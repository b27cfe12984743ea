// `orcd template`: renders a chat template for a conversation, as Hugging Face transformers' apply_chat_template
// does, and prints the prompt exactly (no newline added). The interface the template conformance tests drive:
//   orcd template (--chat-template-file FILE | -m MODEL) --messages MESSAGES.json [--tools TOOLS.json]
//                 [--no-generation-prompt] [--bos-token S] [--eos-token S] [--kwargs JSON] [--date YYYY-MM-DD]
// With -m the model's tokenizer.chat_template, BOS and EOS are used (--bos-token/--eos-token still override).
#include <cstdio>
#include <fstream>
#include <iterator>
#include <memory>
#include <optional>
#include <string>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "cli/commands.h"
#include "common/error.h"
#include "gguf/file.h"
#include "template/template.h"
#include "tokenizer/tokenizer.h"

namespace orcd::cli {

namespace {

struct TemplateOptions {
    std::string template_file;
    std::string model;
    std::string messages_file;
    std::string tools_file;
    bool no_generation_prompt = false;
    std::optional<std::string> bos;
    std::optional<std::string> eos;
    std::string kwargs;
    std::string date;
};

std::string read_file(const std::string& path, std::string_view what) {
    std::ifstream in(path, std::ios::binary);
    if (!in) throw Error(ErrorCode::FileNotFound, fmt::format("template: cannot open {} '{}'", what, path));
    return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

nlohmann::ordered_json parse_json(const std::string& text, std::string_view what) {
    try {
        return nlohmann::ordered_json::parse(text);
    } catch (const nlohmann::json::parse_error& e) {
        throw Error(ErrorCode::InvalidArgument, fmt::format("template: {} is not valid JSON: {}", what, e.what()));
    }
}

void run(const TemplateOptions& o) {
    std::string source, name, bos, eos;
    if (!o.model.empty()) {
        const gguf::File file = gguf::File::open(o.model);
        const tokenizer::Tokenizer tok = tokenizer::Tokenizer::from_gguf(file);
        const auto& v = tok.vocab();
        if (v.chat_template().empty())
            throw Error(
                ErrorCode::ChatTemplate,
                fmt::format("template: {} has no tokenizer.chat_template; pass --chat-template-file FILE", o.model));
        source = v.chat_template();
        name = o.model + " (tokenizer.chat_template)";
        if (v.valid(v.bos)) bos = std::string(v.text(v.bos));
        if (v.valid(v.eos)) eos = std::string(v.text(v.eos));
    } else {
        source = read_file(o.template_file, "template file");
        name = o.template_file;
    }
    if (o.bos) bos = *o.bos;
    if (o.eos) eos = *o.eos;

    tmpl::ChatInputs in;
    in.messages = parse_json(read_file(o.messages_file, "messages file"), o.messages_file);
    if (!in.messages.is_array())
        throw Error(ErrorCode::InvalidArgument,
                    fmt::format("template: {} must hold a JSON array of messages", o.messages_file));
    if (!o.tools_file.empty()) {
        in.tools = parse_json(read_file(o.tools_file, "tools file"), o.tools_file);
        if (!in.tools.is_array() && !in.tools.is_null())
            throw Error(ErrorCode::InvalidArgument,
                        fmt::format("template: {} must hold a JSON array of tools", o.tools_file));
    }
    if (!o.kwargs.empty()) {
        in.extra = parse_json(o.kwargs, "--kwargs");
        if (!in.extra.is_object()) throw Error(ErrorCode::InvalidArgument, "template: --kwargs must be a JSON object");
    }
    in.add_generation_prompt = !o.no_generation_prompt;
    in.bos_token = bos;
    in.eos_token = eos;

    tmpl::RenderOptions ro;
    ro.date = o.date;
    const tmpl::Template t(source, name);
    const std::string out = tmpl::render_chat(t, in, ro);
    std::fwrite(out.data(), 1, out.size(), stdout);
    std::fflush(stdout);
}

}  // namespace

void add_template(CLI::App& app) {
    auto o = std::make_shared<TemplateOptions>();
    CLI::App* cmd = app.add_subcommand("template", "Render a chat template for a conversation (as transformers does)");
    auto* file = cmd->add_option("--chat-template-file", o->template_file, "Jinja chat template file");
    auto* model = cmd->add_option("-m,--model", o->model, "GGUF file: use its chat template, BOS and EOS");
    file->excludes(model);
    cmd->add_option("--messages", o->messages_file, "JSON file with the array of messages")->required();
    cmd->add_option("--tools", o->tools_file, "JSON file with the array of tool definitions");
    cmd->add_flag("--no-generation-prompt", o->no_generation_prompt, "add_generation_prompt = false");
    cmd->add_option("--bos-token", o->bos, "Text of the BOS token");
    cmd->add_option("--eos-token", o->eos, "Text of the EOS token");
    cmd->add_option("--kwargs", o->kwargs, "JSON object whose members become template variables");
    cmd->add_option("--date", o->date, "The day strftime_now reports (YYYY-MM-DD, at 00:00:00)");
    cmd->callback([o] {
        if (o->template_file.empty() && o->model.empty())
            throw Error(ErrorCode::InvalidArgument, "template: pass --chat-template-file FILE or -m MODEL");
        run(*o);
    });
}

}  // namespace orcd::cli
