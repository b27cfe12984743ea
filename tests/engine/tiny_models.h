#pragma once
// Tiny synthetic models for engine tests, written once per test process into a temporary directory with the
// project's synth writer (random weights, real tensor names and metadata of each architecture).
#include <cctype>
#include <filesystem>
#include <map>
#include <string>
#include <tuple>
#include <vector>
#include <unistd.h>

#include "shared_files.h"
#include "synth/synth.h"

namespace orcd::test {

// Writes `o` once per test process under `name` (the cache key too) in the temporary directory.
inline std::filesystem::path synth_once(const synth::Options& o, const std::string& name) {
    static std::map<std::string, std::filesystem::path> cache;
    if (auto it = cache.find(name); it != cache.end()) return it->second;
    const auto dir = std::filesystem::temp_directory_path() / ("orcd-engine-test-" + std::to_string(getpid()));
    std::filesystem::create_directories(dir);
    const auto path = dir / (name + ".gguf");
    synth::write_model(o, path);
    cache[name] = path;
    return path;
}

inline std::filesystem::path tiny_model(const std::string& preset, synth::FileType type, uint64_t seed = 1,
                                        const std::string& vocab_file = "") {
    synth::Options o;
    o.preset = preset;
    o.type = type;
    o.seed = seed;
    if (vocab_file.empty()) {
        o.n_vocab = 512;
    } else {
        o.vocab = shared_path("models/vocab") / vocab_file;  // callers skip first without it (ORCD_SKIP_WITHOUT_SHARED)
    }
    return synth_once(o, preset + "-" + std::string(synth::file_type_name(type)) + "-" + std::to_string(seed) +
                             (vocab_file.empty() ? "" : "-vocab"));
}

// A real model's shapes (a preset such as "qwen2.5-0.5b") cut to its first n_layer layers, with a 512-token
// vocabulary: the real matrices' shapes at a fraction of the file.
inline std::filesystem::path layer_cut_model(const std::string& preset, synth::FileType type, uint32_t n_layer) {
    synth::Options o;
    o.preset = preset;
    o.type = type;
    o.n_vocab = 512;
    o.n_layer = n_layer;
    return synth_once(
        o, preset + "-" + std::string(synth::file_type_name(type)) + "-" + std::to_string(n_layer) + "-layers");
}

// A test-case name for a model of `preset` in `type`, cut to n_layer layers (0: whole): letters, digits and '_'.
inline std::string model_case_name(const std::string& preset, synth::FileType type, uint32_t n_layer) {
    std::string n = preset + "_" + std::string(synth::file_type_name(type)) +
                    (n_layer ? "_" + std::to_string(n_layer) + "_layers" : "");
    for (char& c : n) {
        if (!std::isalnum(static_cast<unsigned char>(c))) c = '_';
    }
    return n;
}

// A model case of a parameterized test: preset, file type, layers kept (0: the preset whole).
using ModelCase = std::tuple<std::string, synth::FileType, uint32_t>;

// The name generator of a suite over ModelCase (gtest's TestParamInfo<ModelCase>).
inline constexpr auto model_case_param_name = [](const auto& info) { return std::apply(model_case_name, info.param); };

// The real models' shapes at a fraction of their files: Qwen2.5-0.5B and Phi-3-mini in Q4_K_M, cut to 2 layers.
inline const std::vector<ModelCase> kRealShapeCuts = {{"qwen2.5-0.5b", synth::FileType::Q4_K_M, 2u},
                                                      {"phi3-mini-4k", synth::FileType::Q4_K_M, 2u}};

// Removes the directory at exit.
struct TinyModelCleanup {
    ~TinyModelCleanup() {
        std::error_code ec;
        std::filesystem::remove_all(
            std::filesystem::temp_directory_path() / ("orcd-engine-test-" + std::to_string(getpid())), ec);
    }
};
inline TinyModelCleanup tiny_model_cleanup;

}  // namespace orcd::test
