// `orcd synth`: write a random-weight GGUF with a preset's real shapes (see src/synth/).
#include <fmt/format.h>
#include <algorithm>
#include <memory>

#include "cli/commands.h"
#include "cli/options.h"
#include "cli/progress.h"
#include "synth/synth.h"

namespace orcd::cli {

void add_synth(CLI::App& app) {
    auto* cmd = app.add_subcommand("synth", "Write a random-weight GGUF model with a preset's real shapes");
    struct Args {
        synth::Options options;
        std::string type = "F32";
        std::string output;
        uint32_t n_layer = 0, n_vocab = 0, ctx = 0;
        std::string vocab;
    };
    auto a = std::make_shared<Args>();
    cmd->add_option("--preset", a->options.preset, "Architecture preset: " + synth::preset_names())->required();
    cmd->add_option("--type", a->type, "F32, F16, BF16, Q8_0 or Q4_K_M (llama.cpp's rule)");
    cmd->add_option("--vocab", a->vocab, "Vocab GGUF whose tokenizer is copied (e.g. ../shared/models/vocab/...)");
    cmd->add_option("--n-vocab", a->n_vocab, "Vocabulary size when no --vocab is given (no tokenizer written)");
    cmd->add_option("-s,--seed", a->options.seed, "Seed; the same seed gives a byte-identical file");
    cmd->add_option("--layers", a->n_layer, "Override the preset's block count");
    add_ctx_option(cmd, a->ctx, "Override the preset's context length");
    add_threads_option(cmd, a->options.threads, "Threads (default: all cores)");
    cmd->add_option("-o,--output", a->output, "Output GGUF path")->required();
    cmd->callback([a] {
        synth::Options o = a->options;
        o.type = synth::parse_file_type(a->type);
        o.vocab = a->vocab;
        if (a->n_vocab) o.n_vocab = a->n_vocab;
        if (a->n_layer) o.n_layer = a->n_layer;
        if (a->ctx) o.context_length = a->ctx;
        ProgressBar bar("synth");
        o.progress = [&bar](uint64_t done, uint64_t total) {
            bar.update(done, total,
                       fmt::format("{:.1f} / {:.1f} MiB", std::min(done, total) / 1048576.0, total / 1048576.0));
        };
        const synth::Summary s = synth::write_model(o, a->output);
        bar.finish();
        fmt::print("wrote {}: {} tensors, {} bytes ({:.1f} MiB) in {:.2f} s\n", s.path.string(), s.n_tensors, s.bytes,
                   static_cast<double>(s.bytes) / (1 << 20), s.seconds);
    });
}

}  // namespace orcd::cli
