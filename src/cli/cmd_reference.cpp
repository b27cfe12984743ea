// `orcd reference models|vram|flags`: the tables docs/GUIDE.md carries, printed from the code itself (the architecture
// registry, the tensor types the backends accept, the synth presets' real shapes, every subcommand's options), so that
// the guide cannot drift: tests/docs compares the guide's generated sections with this output.
#include <fmt/format.h>

#include <string>

#include "cli/commands.h"
#include "cli/deprecated_group.h"
#include "gguf/types.h"
#include "model/arch.h"
#include "synth/presets.h"

namespace orcd::cli {
namespace {

void print_models() {
    fmt::print("| architecture (`general.architecture`) | RoPE | tensors per layer |\n| --- | --- | --- |\n");
    for (const model::ArchDescription& a : model::architectures()) {
        size_t per_layer = 0;
        for (const model::TensorSpec& t : a.tensors) per_layer += t.per_layer() ? 1 : 0;
        fmt::print("| `{}` | {} | {} names (alternatives included) |\n", a.name, model::rope_layout_name(a.rope_layout),
                   per_layer);
    }
    std::string types;
    for (gguf::TensorType t : model::accepted_types(model::TypeClass::Matrix)) {
        types += fmt::format("{}`{}`", types.empty() ? "" : ", ", gguf::type_name(t));
    }
    fmt::print("\nWeight matrices may have any of these tensor types, on both backends: {}.\n", types);
}

void print_vram() {
    fmt::print(
        "| model shape (synth preset) | architecture | layers | KV heads × head dim | KV cache per token (f16) | "
        "at 4,096 tokens |\n| --- | --- | ---: | ---: | ---: | ---: |\n");
    for (const synth::Preset& p : synth::presets()) {
        if (p.name.find("tiny") != std::string::npos) continue;
        const uint64_t per_token = 2ull * p.n_layer * p.n_head_kv * p.head_dim() * 2;  // K and V, 2 bytes each
        fmt::print("| {} | {} | {} | {} × {} | {} B | {:.1f} MiB |\n", p.model_name, p.architecture, p.n_layer,
                   p.n_head_kv, p.head_dim(), per_token, per_token * 4096.0 / (1 << 20));
    }
}

void print_flags(const CLI::App& root) {
    for (const CLI::App* sub : root.get_subcommands([](const CLI::App*) { return true; })) {
        if (sub->get_name() == "reference") continue;
        fmt::print("### `orcd {}`\n{}\n\n| flag | meaning |\n| --- | --- |\n", sub->get_name(), sub->get_description());
        for (const CLI::Option* o : sub->get_options()) {
            if (o->get_name() == "--help" || o->get_name() == "-h,--help") continue;
            if (is_deprecated(*o)) continue;  // a spelling that is going away (options.h): not to be taught
            std::string desc = o->get_description();
            for (char& c : desc) {
                if (c == '|') c = '/';
                if (c == '\n') c = ' ';
            }
            if (!o->get_default_str().empty()) desc += fmt::format(" (default {})", o->get_default_str());
            std::string name = o->get_name(false, true);
            fmt::print("| `{}` | {} |\n", name, desc);
        }
        fmt::print("\n");
    }
}

}  // namespace

void add_reference(CLI::App& app) {
    auto* cmd =
        app.add_subcommand("reference", "Print the guide's reference tables from the code (models, vram, flags)");
    auto section = std::make_shared<std::string>();
    cmd->add_option("section", *section, "models | vram | flags")
        ->required()
        ->check(CLI::IsMember({"models", "vram", "flags"}));
    cmd->callback([section, &app] {
        if (*section == "models")
            print_models();
        else if (*section == "vram")
            print_vram();
        else
            print_flags(app);
    });
}

}  // namespace orcd::cli
