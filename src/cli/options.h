#pragma once
// Option groups shared by the subcommands, so that every command spells a flag the same way (llama.cpp's names:
// -m/--model, -c/--ctx-size, -n/--n-predict, -t/--threads, -s/--seed, --temp, --top-k, --top-p, --min-p,
// --device cpu|cuda, --gpu N) and builds its backend the same way. Older spellings stay accepted for one release
// through add_deprecated_option(), which prints a note on stderr when one is used.
#include <CLI/CLI.hpp>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "backend/backend.h"
#include "cli/deprecated_group.h"
#include "engine/create_backend.h"
#include "engine/sampler.h"
#include "model/model.h"

namespace orcd::cli {

// "warning: OLD is deprecated and will be removed in the next release; use NEW" on stderr.
void warn_deprecated(std::string_view old_spelling, std::string_view new_spelling);

// An option in the deprecated group (deprecated_group.h: listed apart in --help, left out of `orcd reference flags`
// and of suggestions) that fills the same variable as its new spelling and
// warns when used; given together with `replacement` (the new spelling's option) it is an error. `old_name` is
// CLI11's name string ("--ctx", or "MODEL" for a positional). The check runs in the option's validator, which CLI11
// calls once the whole command line is read (CLI11's own excludes() would clutter the new option's help line).
template <class T>
CLI::Option* add_deprecated_option(CLI::App* cmd, const std::string& old_name, const std::string& new_spelling,
                                   T& target, const CLI::Option* replacement) {
    const std::string shown = old_name.starts_with('-') ? old_name : "the positional " + old_name;
    return cmd->add_option(old_name, target, "deprecated: use " + new_spelling)
        ->group(std::string(kDeprecatedGroup))
        ->each([shown, new_spelling, replacement](const std::string&) {
            if (replacement && replacement->count() > 0) throw CLI::ExcludesError(shown, new_spelling);
            warn_deprecated(shown, new_spelling);
        });
}

// -m/--model FILE.
CLI::Option* add_model_option(CLI::App* cmd, std::string& model, const std::string& help = "GGUF model file");
// -m/--model FILE, also accepted (deprecated) as a positional argument, as `load` and `inspect` once took it. Not
// marked required (either spelling will do): call require_model() in the command's callback.
void add_model_option_or_positional(CLI::App* cmd, std::string& model, const std::string& help = "GGUF model file");
void require_model(const std::string& model);
// -c/--ctx-size N (and the deprecated --ctx).
CLI::Option* add_ctx_option(CLI::App* cmd, uint32_t& ctx, const std::string& help);
// -t/--threads N.
CLI::Option* add_threads_option(CLI::App* cmd, unsigned& threads,
                                const std::string& help = "CPU threads (default: all cores)");

// --device cpu|cuda (default cuda, or $ORCD_DEVICE; `host`, load's old name for cpu, is deprecated) and --gpu N.
struct DeviceArgs {
    std::string device = "cuda";
    int gpu = 0;
    CLI::Option* gpu_option = nullptr;  // to tell "--gpu 0 given" from the default

    bool gpu_given() const { return gpu_option && gpu_option->count() > 0; }
    // Parses --device and checks --gpu against it (before anything is loaded).
    engine::Device parsed_device() const;
};
void add_device_options(CLI::App* cmd, DeviceArgs& args, const std::string& device_help = {});
// The same options onto a command's own variables; returns --gpu (count() > 0: given).
CLI::Option* add_device_options(CLI::App* cmd, std::string& device, int& gpu, const std::string& device_help = {});

// The device options plus -t/--threads, --activations, --weights, and the one way the commands that run a model
// (generate, perplexity, bench, chat) load it: open() then create(), each step with its progress bar
// (load_progress.h).
struct BackendArgs : DeviceArgs {
    std::string weights = "quantized";
    std::string activations = "int8";
    unsigned threads = 0;

    engine::BackendOptions backend_options() const;
    // Reads the file into the page cache behind the "read" bar, then model::open_model. Errors: open_model's.
    model::Model open(const std::string& path) const;
    // parsed_device() (call it first, before anything slow, to fail fast on a bad --device/--gpu), then the backend,
    // with the "upload" bar on CUDA. Errors: engine::create_backend's.
    std::unique_ptr<backend::Backend> create(model::Model model) const;
};
struct BackendHelp {
    std::string activations =
        "int8 (default: 8-bit activation blocks, fast) or f32 (quantized weights meet the f32 activation)";
};
void add_backend_options(CLI::App* cmd, BackendArgs& args, const BackendHelp& help = {});

// --temp, --top-k, --top-p, --min-p, --repeat-penalty, --repeat-last-n, -s/--seed.
struct SamplingArgs {
    engine::SamplingParams params;
    uint64_t seed = 0;
    CLI::Option* seed_option = nullptr;
    engine::SamplingParams resolved() const;  // params with the seed when one was given
};
void add_sampling_options(CLI::App* cmd, SamplingArgs& args);

// "123", "64M", "1.5G", "2GiB" -> bytes (K/M/G/T are binary multiples, as memory sizes are). Errors:
// InvalidArgument naming `option`.
uint64_t parse_bytes(const std::string& s, std::string_view option);

}  // namespace orcd::cli
