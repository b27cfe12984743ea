#pragma once
// Tiny synthetic models for engine tests, written once per test process into a temporary directory with the
// project's synth writer (random weights, real tensor names and metadata of each architecture).
#include <filesystem>
#include <map>
#include <string>
#include <unistd.h>

#include "shared_files.h"
#include "synth/synth.h"

namespace orcd::test {

inline std::filesystem::path tiny_model(const std::string& preset, synth::FileType type, uint64_t seed = 1,
                                        const std::string& vocab_file = "") {
    static std::map<std::string, std::filesystem::path> cache;
    const std::string key =
        preset + "/" + std::string(synth::file_type_name(type)) + "/" + std::to_string(seed) + "/" + vocab_file;
    if (auto it = cache.find(key); it != cache.end()) return it->second;
    const auto dir = std::filesystem::temp_directory_path() / ("orcd-engine-test-" + std::to_string(getpid()));
    std::filesystem::create_directories(dir);
    const auto path = dir / (preset + "-" + std::string(synth::file_type_name(type)) + "-" + std::to_string(seed) +
                             (vocab_file.empty() ? "" : "-vocab") + ".gguf");
    synth::Options o;
    o.preset = preset;
    o.type = type;
    o.seed = seed;
    if (vocab_file.empty()) {
        o.n_vocab = 512;
    } else {
        o.vocab = shared_path("models/vocab") / vocab_file;  // callers skip first without it (ORCD_SKIP_WITHOUT_SHARED)
    }
    synth::write_model(o, path);
    cache[key] = path;
    return path;
}

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
