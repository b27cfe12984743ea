#pragma once
// Option groups shared by the subcommands, so that every command spells a flag the same way (llama.cpp's names where
// one exists) and builds its backend the same way.
#include <CLI/CLI.hpp>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "backend/backend.h"
#include "engine/create_backend.h"
#include "engine/sampler.h"
#include "model/model.h"

namespace orcd::cli {

// --device, --gpu, -t/--threads, --activations, --weights.
struct BackendArgs {
    std::string device = "cuda";
    std::string weights = "quantized";
    std::string activations = "int8";
    unsigned threads = 0;
    int gpu = 0;
    CLI::Option* gpu_option = nullptr;  // to tell "--gpu 0 given" from the default

    // Parses the strings and checks --gpu against --device (before anything is loaded).
    engine::Device parsed_device() const;
    engine::BackendOptions backend_options() const;
    std::unique_ptr<backend::Backend> create(model::Model model) const;
};
void add_backend_options(CLI::App* cmd, BackendArgs& args);

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
