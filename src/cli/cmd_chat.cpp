// `orcd chat`: an interactive conversation through the model's chat template, as `llama-cli -cnv` and `ollama run`
// offer. Each answer streams as it is generated; Ctrl-C stops the answer (a second one exits), Ctrl-D leaves. The
// whole conversation is rendered and prefilled again for every answer (prefill is fast; the cache is not reused).
#include <fmt/format.h>

#include <algorithm>
#include <cstdio>
#include <memory>
#include <string_view>

#include "cli/chat_session.h"
#include "cli/commands.h"
#include "cli/interrupt.h"
#include "cli/line_reader.h"
#include "cli/options.h"
#include "common/error.h"
#include "engine/generator.h"
#include "model/model.h"
#include "tokenizer/chat_template.h"
#include "tokenizer/tokenizer.h"

namespace orcd::cli {
namespace {

constexpr std::string_view kHelp =
    "commands:\n"
    "  /reset          forget the conversation (the system message stays)\n"
    "  /system TEXT    set the system message (empty: none) and start over\n"
    "  /save FILE      write the conversation to FILE (JSON)\n"
    "  /load FILE      continue a conversation written by /save\n"
    "  /help           this list\n"
    "  /exit, Ctrl-D   leave\n"
    "Ctrl-C stops the answer being written; a second Ctrl-C exits.\n";

struct ChatArgs {
    std::string model, system, chat_template_file;
    uint32_t ctx = 0;
    uint32_t n_predict = 1024;
    BackendArgs backend;
    SamplingArgs sampling;
};

// The prompt text of the conversation, ready for the tokenizer (which adds the vocabulary's BOS itself: a template
// that writes BOS, as Phi-3's does, would otherwise start the prompt with two).
std::string render(const tokenizer::ChatTemplate& tmpl, const tokenizer::Tokenizer& tok, const ChatSession& chat) {
    std::string text = tmpl.apply(chat.messages(), /*add_generation_prompt=*/true);
    const tokenizer::Vocab& v = tok.vocab();
    if (v.add_bos && v.valid(v.bos)) {
        const std::string_view bos = v.text(v.bos);
        if (!bos.empty() && std::string_view(text).starts_with(bos)) text.erase(0, bos.size());
    }
    return text;
}

// Splits "/cmd rest" into its command and argument.
std::pair<std::string_view, std::string> split_command(std::string_view line) {
    const size_t sp = line.find(' ');
    if (sp == std::string_view::npos) return {line, {}};
    std::string rest(line.substr(sp + 1));
    while (!rest.empty() && rest.back() == ' ') rest.pop_back();
    return {line.substr(0, sp), rest};
}

void run_chat(const ChatArgs& a) {
    // Everything is checked before the (possibly long) load.
    const engine::Device device = a.backend.parsed_device();
    fmt::print(stderr, "loading {} on {} ...\n", a.model, engine::device_name(device));
    model::Model m = a.backend.open(a.model);
    const tokenizer::Tokenizer tok = tokenizer::Tokenizer::from_gguf(*m.file);
    const tokenizer::ChatTemplate tmpl = tokenizer::ChatTemplate::for_tokenizer(tok, a.chat_template_file);
    const uint32_t n_ctx = a.ctx ? a.ctx : std::min<uint32_t>(m.config.context_length, 4096);
    auto backend = a.backend.create(std::move(m));
    auto seq = backend->new_sequence({.n_ctx = n_ctx});
    const engine::Generator gen(*backend, tok);

    ChatSession chat;
    chat.set_system(a.system);
    LineReader reader("orcd");
    InterruptGuard interrupts;
    reader.watch_interrupts(interrupts.wake_fd());
    fmt::print(stderr, "ready: {} tokens of context. Type a message; /help for commands, Ctrl-D to leave.\n", n_ctx);

    for (;;) {
        const ReadResult in = reader.read("> ");
        if (in.status == ReadStatus::EndOfInput) break;
        if (in.status == ReadStatus::Interrupted) {
            interrupts.take_press();
            continue;
        }
        interrupts.take_press();
        const std::string& line = in.line;
        if (line.empty()) continue;
        reader.remember(line);
        if (line.front() == '/') {
            const auto [cmd, arg] = split_command(line);
            try {
                if (cmd == "/exit" || cmd == "/quit") break;
                if (cmd == "/help") {
                    fmt::print("{}", kHelp);
                } else if (cmd == "/reset") {
                    chat.reset();
                    fmt::print("(conversation cleared)\n");
                } else if (cmd == "/system") {
                    chat.set_system(arg);
                    chat.reset();
                    std::fputs(arg.empty() ? "(no system message; conversation cleared)\n"
                                           : "(system message set; conversation cleared)\n",
                               stdout);
                } else if (cmd == "/save" || cmd == "/load") {
                    if (arg.empty()) throw Error(ErrorCode::InvalidArgument, fmt::format("{} needs a file name", cmd));
                    if (cmd == "/save") {
                        chat.save(arg);
                        fmt::print("(saved {} messages to {})\n", chat.turns().size(), arg);
                    } else {
                        chat = ChatSession::load(arg);
                        fmt::print("(loaded {} messages from {})\n", chat.turns().size(), arg);
                    }
                } else {
                    fmt::print("unknown command {}; /help lists them\n", cmd);
                }
            } catch (const Error& e) {
                fmt::print("error: {}\n", e.what());
            }
            continue;
        }

        chat.add("user", line);
        engine::GenerateRequest req;
        req.sampling = a.sampling.resolved();
        try {
            req.prompt = render(tmpl, tok, chat);
            const size_t n_prompt = gen.prompt_tokens(req).size();
            if (n_prompt + 1 > n_ctx) {
                chat.drop_last();
                fmt::print(
                    "the conversation ({} tokens) fills the context of {} tokens: /reset, or start with a "
                    "larger -c\n",
                    n_prompt, n_ctx);
                continue;
            }
            req.max_tokens = static_cast<uint32_t>(std::min<size_t>(a.n_predict, n_ctx - n_prompt));
        } catch (const Error& e) {
            chat.drop_last();
            fmt::print("error: {}\n", e.what());
            continue;
        }
        interrupts.begin_work();
        engine::GenerateResult r;
        try {
            r = gen.generate(
                *seq, req,
                [](std::string_view s) {
                    std::fwrite(s.data(), 1, s.size(), stdout);
                    std::fflush(stdout);
                },
                &interrupts.cancel_flag());
        } catch (const Error& e) {
            interrupts.end_work();
            chat.drop_last();
            fmt::print("\nerror: {}\n", e.what());
            continue;
        }
        interrupts.end_work();
        chat.add("assistant", r.text);
        const bool stopped = r.stop_reason == engine::StopReason::Cancelled;
        fmt::print("\n");
        fmt::print(stderr, "[{}{} tokens, {:.1f} tok/s, prompt {} tokens]\n", stopped ? "stopped after " : "",
                   r.tokens.size(), r.timings.decode_tokens_per_s(r.tokens.size()), r.prompt_tokens.size());
    }
}

}  // namespace

void add_chat(CLI::App& app) {
    auto* cmd = app.add_subcommand("chat", "Chat with a model interactively, through its chat template");
    auto a = std::make_shared<ChatArgs>();
    add_model_option(cmd, a->model)->required();
    cmd->add_option("--system", a->system, "System message (default: none; the template's own default applies)");
    cmd->add_option("-n,--n-predict", a->n_predict, "Most tokens per answer (default 1024)");
    add_ctx_option(cmd, a->ctx, "Context size (default: min(model context, 4096))");
    cmd->add_option("--chat-template-file", a->chat_template_file,
                    "A Jinja chat template to use instead of the model's own");
    add_backend_options(cmd, a->backend);
    add_sampling_options(cmd, a->sampling);
    cmd->callback([a] { run_chat(*a); });
}

}  // namespace orcd::cli
