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
#include "common/error.h"
#include "engine/create_backend.h"
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
        std::string model, prompt, system, device = "cuda", weights = "quantized", activations = "int8";
        std::string grammar_file, json_schema;
        uint32_t schema_max_string = 0;
        engine::GenerateRequest req;
        uint64_t seed = 0;
        uint32_t ctx = 0;
        unsigned threads = 0;
        int gpu = 0;
        bool json = false;
    };
    auto a = std::make_shared<Args>();
    cmd->add_option("-m,--model", a->model, "GGUF model file")->required();
    cmd->add_option("-p,--prompt", a->prompt, "Prompt text")->required();
    cmd->add_option("-n,--n-predict", a->req.max_tokens, "Tokens to generate (default 128)");
    cmd->add_option("--temp", a->req.sampling.temperature, "Temperature; 0 = greedy (default 0.8)");
    cmd->add_option("--top-k", a->req.sampling.top_k, "Top-k; 0 = off (default 40)");
    cmd->add_option("--top-p", a->req.sampling.top_p, "Top-p; 1 = off (default 0.95)");
    cmd->add_option("--min-p", a->req.sampling.min_p, "Min-p; 0 = off (default 0.05)");
    cmd->add_option("--repeat-penalty", a->req.sampling.repeat_penalty, "Repetition penalty; 1 = off (default 1)");
    cmd->add_option("--repeat-last-n", a->req.sampling.repeat_last_n,
                    "Tokens the penalty looks back over; -1 = all (default 64)");
    auto* seed_opt = cmd->add_option("-s,--seed", a->seed, "Sampling seed (default: drawn and reported)");
    cmd->add_flag("--chat", a->req.chat, "Format the prompt as a user turn with the model's chat template");
    cmd->add_option("--system", a->system, "System message (with --chat)");
    cmd->add_option("--chat-template-file", a->req.chat_template_file,
                    "Jinja chat template file to use instead of the model's tokenizer.chat_template (with --chat)");
    cmd->add_option("--stop", a->req.stop, "Stop string (repeatable); matched across tokens, not printed");
    cmd->add_option("-c,--ctx-size", a->ctx, "Context size (default: min(model context, 4096))");
    cmd->add_option("--device", a->device, "cpu or cuda (default cuda, or $ORCD_DEVICE)")->envname("ORCD_DEVICE");
    cmd->add_option("--weights", a->weights,
                    "quantized, or f16: dequantize every matrix to FP16 at load (CUDA only; default quantized)");
    cmd->add_option("-t,--threads", a->threads, "CPU threads (default: all cores)");
    auto* gpu_opt = cmd->add_option("--gpu", a->gpu, "GPU index (with --device cuda; default 0)");
    cmd->add_option("--activations", a->activations,
                    "int8 (default: 8-bit activation blocks, fast) or f32 (quantized weights meet the f32 activation)")
        ->check(CLI::IsMember({"int8", "f32"}));
    cmd->add_flag("--json", a->json, "Print one JSON document instead of streaming");
    auto* grammar_opt = cmd->add_option("--grammar-file", a->grammar_file, "Constrain the output to a GBNF grammar");
    cmd->add_option("--json-schema", a->json_schema,
                    "Constrain the output to a JSON Schema: the schema text, or @FILE")
        ->excludes(grammar_opt);
    cmd->add_option("--schema-max-string", a->schema_max_string,
                    "With --json-schema: at most N characters in strings without maxLength (default 0: unbounded)");
    cmd->callback([a, seed_opt, gpu_opt] {
        const engine::Device device = engine::parse_device(a->device);
        engine::check_gpu_option(device, a->gpu, gpu_opt->count() > 0);
        const engine::WeightsMode weights = engine::parse_weights(a->weights);
        model::Model m = model::open_model(a->model);
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
        auto backend = engine::create_backend(device, std::move(m),
                                              {.n_threads = a->threads,
                                               .gpu = a->gpu,
                                               .activations = engine::parse_activations(a->activations),
                                               .weights = weights});
        auto seq = backend->new_sequence({.n_ctx = n_ctx});
        engine::GenerateRequest req = a->req;
        req.prompt = a->prompt;
        req.system = a->system;
        req.constraint = constraint;
        if (*seed_opt) req.sampling.seed = a->seed;
        const engine::Generator gen(*backend, tok);
        std::function<void(std::string_view)> stream;
        if (!a->json) {
            stream = [](std::string_view s) {
                std::fwrite(s.data(), 1, s.size(), stdout);
                std::fflush(stdout);
            };
        }
        const engine::GenerateResult r = gen.generate(*seq, req, stream);
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
