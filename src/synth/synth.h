#pragma once
// Random-weight GGUF models with real shapes (`orcd synth`): how large models reach a machine with no network, and
// how every test gets a model whose contents it controls. Same options + seed -> byte-identical file.
#include <cstdint>
#include <filesystem>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "gguf/types.h"
#include "synth/presets.h"
#include "synth/type_rule.h"

namespace orcd::synth {

struct Options {
    std::string preset = "qwen2.5-tiny";
    FileType type = FileType::F32;
    std::filesystem::path vocab;      // vocab GGUF whose tokenizer.* keys are copied; empty = none
    std::optional<uint32_t> n_vocab;  // vocabulary size when no vocab file is given
    uint64_t seed = 1;
    std::optional<uint32_t> n_layer;         // override the preset's block count (e.g. a 2-layer Phi-3 shape)
    std::optional<uint32_t> context_length;  // override the preset's context length
    unsigned threads = 0;                    // 0 = all cores
    // Called after each tensor is generated, with the tensor bytes done so far and in all; from the writer's
    // threads, one call at a time. `orcd synth` draws its progress bar with it.
    std::function<void(uint64_t done, uint64_t total)> progress;
};

// One tensor the model will hold.
struct TensorPlan {
    std::string name;
    std::vector<uint64_t> shape;  // GGUF order
    Role role;
    uint32_t layer;  // block index, or UINT32_MAX for non-block tensors
    gguf::TensorType type;
};

struct Summary {
    std::filesystem::path path;
    uint64_t bytes = 0;
    size_t n_tensors = 0;
    double seconds = 0;
};

// The tensor list for a preset and file type (names, shapes, types) — what write_model() will write.
std::vector<TensorPlan> plan_tensors(const Preset& p, FileType type, uint32_t n_vocab);

Summary write_model(const Options& options, const std::filesystem::path& output);

}  // namespace orcd::synth
