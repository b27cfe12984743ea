// `orcd generate`: one prompt -> streamed text, then prompt/generated token counts, prefill and decode tokens/s and
// time to first token (or one JSON document with --json).
#include <fmt/format.h>

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <sstream>
#include <memory>
#include <nlohmann/json.hpp>

#include "cli/commands.h"
#include "cli/interrupt.h"
#include "cli/options.h"
#include "common/error.h"
#include "engine/grammar_constraint.h"
#include "engine/generator.h"
#include "model/model.h"
#include "tokenizer/tokenizer.h"

namespace orcd::cli {

namespace {

std::string read_text_file(const std::string& path, std::string_view what) {
    std::ifstream in(path, std::ios::binary);
    if (!in) throw Error(ErrorCode::FileNotFound, fmt::format("cannot open {} '{}'", what, path));
    std::ostringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

}  // namespace

void add_generate(CLI::App& app) {
    auto* cmd = app.add_subcommand("generate", "Generate text from a prompt");
    struct Args {
        std::string model, prompt, system;
        std::string grammar_file, json_schema;
        uint32_t schema_max_string = 0;
        engine::GenerateRequest req;
        BackendArgs backend;
        SamplingArgs sampling;
        uint32_t ctx = 0;
        bool json = false;
    };
    auto a = std::make_shared<Args>();
    add_model_option(cmd, a->model)->required();
    cmd->add_option("-p,--prompt", a->prompt, "Prompt text")->required();
    cmd->add_option("-n,--n-predict", a->req.max_tokens, "Tokens to generate (default 128)");
    add_sampling_options(cmd, a->sampling);
    cmd->add_flag("--chat", a->req.chat, "Format the prompt as a user turn with the model's chat template");
    cmd->add_option("--system", a->system, "System message (with --chat)");
    cmd->add_option("--chat-template-file", a->req.chat_template_file,
                    "Jinja chat template file to use instead of the model's tokenizer.chat_template (with --chat)");
    cmd->add_option("--stop", a->req.stop, "Stop string (repeatable); matched across tokens, not printed");
    add_ctx_option(cmd, a->ctx, "Context size (default: min(model context, 4096))");
    add_backend_options(cmd, a->backend);
    cmd->add_flag("--json", a->json, "Print one JSON document instead of streaming");
    auto* grammar_opt = cmd->add_option("--grammar-file", a->grammar_file, "Constrain the output to a GBNF grammar");
    cmd->add_option("--json-schema", a->json_schema, "Constrain the output to a JSON Schema: the schema text, or @FILE")
        ->excludes(grammar_opt);
    cmd->add_option("--schema-max-string", a->schema_max_string,
                    "With --json-schema: at most N characters in strings without maxLength (default 0: unbounded)");
    cmd->callback([a] {
        // Ctrl-C stops the generation cleanly (the result so far is reported; a press during the load or the prefill
        // stops before the first token); a second press exits at once, even in the middle of a long prefill.
        InterruptGuard interrupts(/*announce=*/true);
        interrupts.begin_work();
        const engine::Device device = a->backend.parsed_device();
        model::Model m = a->backend.open(a->model);
        const tokenizer::Tokenizer tok = tokenizer::Tokenizer::from_gguf(*m.file);
        // The grammar is compiled before the weights load, so a bad grammar or schema fails fast. Its token masks
        // are worked out as generation reaches each grammar state (cached for the rest of the run).
        std::shared_ptr<grammar::TokenMasker> constraint;
        if (!a->grammar_file.empty()) {
            constraint = engine::constraint_from_gbnf(read_text_file(a->grammar_file, "grammar file"),
                                                      engine::grammar_vocabulary(tok));
        } else if (!a->json_schema.empty()) {
            const std::string schema = a->json_schema[0] == '@'
                                           ? read_text_file(a->json_schema.substr(1), "JSON schema file")
                                           : a->json_schema;
            constraint = engine::constraint_from_json_schema(schema, engine::grammar_vocabulary(tok),
                                                             {.max_string_chars = a->schema_max_string});
        }
        const uint32_t n_ctx = a->ctx ? a->ctx : std::min<uint32_t>(m.config.context_length, 4096);
        auto backend = a->backend.create(std::move(m));
        auto seq = backend->new_sequence({.n_ctx = n_ctx});
        engine::GenerateRequest req = a->req;
        req.prompt = a->prompt;
        req.system = a->system;
        req.constraint = constraint;
        req.sampling = a->sampling.resolved();
        const engine::Generator gen(*backend, tok);
        std::function<void(std::string_view)> stream;
        if (!a->json) {
            stream = [](std::string_view s) {
                std::fwrite(s.data(), 1, s.size(), stdout);
                std::fflush(stdout);
            };
        }
        const engine::GenerateResult r = gen.generate(*seq, req, stream, &interrupts.cancel_flag());
        interrupts.end_work();
        const engine::Timings& t = r.timings;
        if (a->json) {
            nlohmann::json j;
            j["model"] = a->model;
            j["device"] = engine::device_name(device);
            j["prompt_tokens"] = r.prompt_tokens;
            j["tokens"] = r.tokens;
            j["text"] = r.text;
            j["seed"] = r.seed;
            j["stop_reason"] = engine::stop_reason_name(r.stop_reason);
            if (constraint) j["grammar_complete"] = r.grammar_complete;
            j["timings"] = {{"n_prompt_tokens", r.prompt_tokens.size()},
                            {"n_generated_tokens", r.tokens.size()},
                            {"prefill_s", t.prefill_s},
                            {"decode_s", t.decode_s},
                            {"ttft_s", t.ttft_s},
                            {"prefill_tokens_per_s", t.prefill_tokens_per_s(r.prompt_tokens.size())},
                            {"decode_tokens_per_s", t.decode_tokens_per_s(r.tokens.size())}};
            fmt::print("{}\n", j.dump(2, ' ', false, nlohmann::json::error_handler_t::replace));
            return;
        }
        fmt::print("\n");
        fmt::print(stderr,
                   "\n[{}] prompt tokens: {}, generated tokens: {} ({}), seed: {}\n"
                   "prefill: {:.1f} tok/s, decode: {:.1f} tok/s, time to first token: {:.1f} ms\n",
                   engine::device_name(device), r.prompt_tokens.size(), r.tokens.size(),
                   engine::stop_reason_name(r.stop_reason), r.seed, t.prefill_tokens_per_s(r.prompt_tokens.size()),
                   t.decode_tokens_per_s(r.tokens.size()), t.ttft_s * 1e3);
    });
}

}  // namespace orcd::cli
