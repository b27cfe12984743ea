#include "cli/options.h"

#include <fmt/format.h>

#include "cli/load_progress.h"
#include "common/error.h"

namespace orcd::cli {

uint64_t parse_bytes(const std::string& s, std::string_view option) {
    size_t pos = 0;
    double v = 0;
    try {
        v = std::stod(s, &pos);
    } catch (...) {
        throw Error(ErrorCode::InvalidArgument, fmt::format("{} '{}': expected a number of bytes", option, s));
    }
    std::string unit = s.substr(pos);
    if (!unit.empty() && (unit.back() == 'B' || unit.back() == 'b')) unit.pop_back();
    if (unit.size() == 2 && (unit[1] == 'i' || unit[1] == 'I')) unit.pop_back();
    double mul = 1;
    if (unit == "K" || unit == "k")
        mul = 1024.0;
    else if (unit == "M" || unit == "m")
        mul = 1024.0 * 1024;
    else if (unit == "G" || unit == "g")
        mul = 1024.0 * 1024 * 1024;
    else if (unit == "T" || unit == "t")
        mul = 1024.0 * 1024 * 1024 * 1024;
    else if (!unit.empty()) {
        throw Error(ErrorCode::InvalidArgument,
                    fmt::format("{} '{}': unknown unit '{}' (use K, M, G, T)", option, s, s.substr(pos)));
    }
    if (v < 0) throw Error(ErrorCode::InvalidArgument, fmt::format("{} '{}' is negative", option, s));
    return static_cast<uint64_t>(v * mul);
}

void warn_deprecated(std::string_view old_spelling, std::string_view new_spelling) {
    fmt::print(stderr, "warning: {} is deprecated and will be removed in the next release; use {}\n", old_spelling,
               new_spelling);
}

CLI::Option* add_model_option(CLI::App* cmd, std::string& model, const std::string& help) {
    return cmd->add_option("-m,--model", model, help);
}

void add_model_option_or_positional(CLI::App* cmd, std::string& model, const std::string& help) {
    add_deprecated_option(cmd, "MODEL", "-m/--model MODEL", model, add_model_option(cmd, model, help));
}

void require_model(const std::string& model) {
    if (model.empty()) throw CLI::RequiredError("-m/--model MODEL");
}

CLI::Option* add_ctx_option(CLI::App* cmd, uint32_t& ctx, const std::string& help) {
    auto* opt = cmd->add_option("-c,--ctx-size", ctx, help);
    add_deprecated_option(cmd, "--ctx", "-c/--ctx-size", ctx, opt);
    return opt;
}

CLI::Option* add_threads_option(CLI::App* cmd, unsigned& threads, const std::string& help) {
    return cmd->add_option("-t,--threads", threads, help);
}

void add_device_options(CLI::App* cmd, DeviceArgs& a, const std::string& device_help) {
    a.gpu_option = add_device_options(cmd, a.device, a.gpu, device_help);
}

CLI::Option* add_device_options(CLI::App* cmd, std::string& device, int& gpu, const std::string& device_help) {
    cmd->add_option("--device", device,
                    device_help.empty() ? "cpu or cuda (default cuda, or $ORCD_DEVICE)" : device_help)
        ->envname("ORCD_DEVICE")
        ->transform([](std::string v) {
            if (v == "host") {
                warn_deprecated("--device host", "--device cpu");
                return std::string("cpu");
            }
            return v;
        });
    return cmd->add_option("--gpu", gpu, "GPU index (with --device cuda; default 0)");
}

engine::Device DeviceArgs::parsed_device() const {
    const engine::Device d = engine::parse_device(device);
    engine::check_gpu_option(d, gpu, gpu_given());
    return d;
}

void add_backend_options(CLI::App* cmd, BackendArgs& a, const BackendHelp& help) {
    add_device_options(cmd, a);
    add_threads_option(cmd, a.threads);
    cmd->add_option("--activations", a.activations, help.activations)->check(CLI::IsMember({"int8", "f32"}));
    cmd->add_option("--weights", a.weights,
                    "quantized, or f16: dequantize every matrix to FP16 at load (CUDA only; default quantized)");
}

engine::BackendOptions BackendArgs::backend_options() const {
    engine::BackendOptions o;
    o.n_threads = threads;
    o.gpu = gpu;
    o.activations = engine::parse_activations(activations);
    o.weights = engine::parse_weights(weights);
    return o;
}

model::Model BackendArgs::open(const std::string& path) const {
    LoadProgress(false).read_file(path);
    return model::open_model(path);
}

std::unique_ptr<backend::Backend> BackendArgs::create(model::Model model) const {
    const engine::Device device = parsed_device();
    const LoadProgress progress(device == engine::Device::Cuda);
    engine::BackendOptions options = backend_options();
    options.load_progress = progress.upload_callback();
    return engine::create_backend(device, std::move(model), options);
}

void add_sampling_options(CLI::App* cmd, SamplingArgs& a) {
    engine::SamplingParams& p = a.params;
    cmd->add_option("--temp", p.temperature, "Temperature; 0 = greedy (default 0.8)");
    cmd->add_option("--top-k", p.top_k, "Top-k; 0 = off (default 40)");
    cmd->add_option("--top-p", p.top_p, "Top-p; 1 = off (default 0.95)");
    cmd->add_option("--min-p", p.min_p, "Min-p; 0 = off (default 0.05)");
    cmd->add_option("--repeat-penalty", p.repeat_penalty, "Repetition penalty; 1 = off (default 1)");
    cmd->add_option("--repeat-last-n", p.repeat_last_n, "Tokens the penalty looks back over; -1 = all (default 64)");
    a.seed_option = cmd->add_option("-s,--seed", a.seed, "Sampling seed (default: drawn and reported)");
}

engine::SamplingParams SamplingArgs::resolved() const {
    engine::SamplingParams p = params;
    if (seed_option && seed_option->count() > 0) p.seed = seed;
    return p;
}

}  // namespace orcd::cli
