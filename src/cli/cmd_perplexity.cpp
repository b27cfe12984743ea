// `orcd perplexity`: perplexity of a text file as llama-perplexity computes it (windows of --ctx-size tokens, the
// second half of each scored, PPL with its standard error), or with --json the teacher-forced NLL of every position of
// the file scored as one sequence.
#include <fmt/format.h>

#include <fstream>
#include <memory>
#include <optional>
#include <nlohmann/json.hpp>
#include <sstream>

#include "cli/commands.h"
#include "cli/interrupt.h"
#include "cli/options.h"
#include "common/error.h"
#include "engine/perplexity.h"
#include "model/model.h"
#include "tokenizer/tokenizer.h"

namespace orcd::cli {

void add_perplexity(CLI::App& app) {
    auto* cmd = app.add_subcommand("perplexity",
                                   "Perplexity of a text file over --ctx-size windows (llama-perplexity's method), or "
                                   "per-token NLL with --json");
    struct Args {
        std::string model, file, kv_type = "f16";
        BackendArgs backend;
        uint32_t ctx = 0;
        bool json = false;
    };
    auto a = std::make_shared<Args>();
    add_model_option(cmd, a->model)->required();
    cmd->add_option("-f,--file", a->file, "Text file (at least two windows long; with --json: must fit the context)")
        ->required();
    add_ctx_option(cmd, a->ctx,
                   "Window size: the text is cut into windows of N tokens, the second half of each scored (default "
                   "512); with --json the context of the one sequence (default: the model's)");
    add_backend_options(cmd, a->backend,
                        {.activations = "int8 (default: 8-bit activation blocks, fast) or f32 (exact; the reference "
                                        "for comparing backends)"});
    cmd->add_option("--kv-type", a->kv_type, "KV cache type: f16 (default; the CUDA backend's only one) or f32 (CPU)")
        ->check(CLI::IsMember({"f16", "f32"}));
    cmd->add_flag("--json", a->json, "Print tokens, per-position NLL and argmax, mean NLL and perplexity as JSON");
    cmd->callback([a] {
        // Ctrl-C stops after the window being scored (the estimate so far is printed); a second press exits at once.
        InterruptGuard interrupts(/*announce=*/true);
        interrupts.begin_work();
        const engine::Device device = a->backend.parsed_device();
        if (device != engine::Device::Cpu && a->kv_type != "f16") {
            throw Error(ErrorCode::InvalidArgument,
                        "--kv-type f32 applies to --device cpu only (the CUDA backend keeps the KV cache in f16)");
        }
        std::ifstream in(a->file, std::ios::binary);
        if (!in) throw Error(ErrorCode::FileNotFound, fmt::format("cannot open text file '{}'", a->file));
        std::stringstream ss;
        ss << in.rdbuf();
        model::Model m = a->backend.open(a->model);
        const tokenizer::Tokenizer tok = tokenizer::Tokenizer::from_gguf(*m.file);
        // BOS/EOS as the model's metadata says; special-token text in the file stays plain text.
        const auto tokens = tok.encode(ss.str(), /*add_special=*/true, /*parse_special=*/false);
        const tokenizer::Vocab& vocab = tok.vocab();
        const std::optional<backend::TokenId> bos = vocab.add_bos && vocab.bos != tokenizer::kNoToken
                                                        ? std::optional<backend::TokenId>(vocab.bos)
                                                        : std::nullopt;
        const uint32_t n_ctx = a->ctx ? a->ctx : a->json ? m.config.context_length : 512;
        if (a->json && tokens.size() > n_ctx) {
            throw Error(ErrorCode::ContextOverflow,
                        fmt::format("'{}' is {} tokens, more than the context of {}: with --json it is scored as one "
                                    "sequence",
                                    a->file, tokens.size(), n_ctx));
        }
        if (!a->json && tokens.size() < 2ull * n_ctx) {
            throw Error(ErrorCode::InvalidArgument,
                        fmt::format("'{}' is {} tokens; windows of --ctx-size {} need at least {} (two windows): use a "
                                    "longer text or a smaller --ctx-size",
                                    a->file, tokens.size(), n_ctx, 2ull * n_ctx));
        }
        auto backend = a->backend.create(std::move(m));
        const auto kv_type = a->kv_type == "f32" ? backend::KvCacheType::F32 : backend::KvCacheType::F16;
        if (!a->json) {
            auto seq = backend->new_sequence({.n_ctx = n_ctx, .kv_type = kv_type});
            struct Stopped {
                size_t chunk, n_chunks;
                double ppl;
            };
            engine::ChunkedPerplexity r;
            try {
                r = engine::score_chunks(*seq, tokens, n_ctx, bos, [&interrupts](size_t c, size_t n, double ppl) {
                    fmt::print(stderr, "[{}/{}] PPL so far {:.4f}\n", c, n, ppl);
                    if (interrupts.cancel_flag().load() && c < n) throw Stopped{c, n, ppl};
                });
            } catch (const Stopped& s) {
                interrupts.end_work();
                fmt::print("interrupted after window {} of {}: PPL so far {:.4f} (no final estimate)\n", s.chunk,
                           s.n_chunks, s.ppl);
                throw CLI::RuntimeError(130);
            }
            interrupts.end_work();
            fmt::print("[{}] {} tokens, {} windows of {}, {} scored, {:.2f} s ({:.1f} tok/s)\n",
                       engine::device_name(device), tokens.size(), r.n_chunks, n_ctx, r.scored, r.seconds,
                       static_cast<double>(r.n_chunks * n_ctx) / r.seconds);
            fmt::print("Final estimate: PPL = {:.4f} +/- {:.5f}\n", r.ppl, r.ppl_error);
            return;
        }
        // The cache only needs the text's length.
        auto seq = backend->new_sequence({.n_ctx = static_cast<uint32_t>(tokens.size()), .kv_type = kv_type});
        const engine::PerplexityResult r = engine::score_tokens(*seq, tokens);
        {
            nlohmann::json j;
            j["tokens"] = tokens;
            j["nll"] = r.nll;
            j["argmax"] = r.argmax;
            j["nll_mean"] = r.nll_mean;
            j["ppl"] = r.ppl;
            fmt::print("{}\n", j.dump());
        }
    });
}

}  // namespace orcd::cli
