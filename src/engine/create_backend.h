#pragma once
// Chooses the backend for `--device cpu|cuda`. There is no silent fallback: asking for CUDA where there is none is an
// error that names `--device cpu`.
#include <memory>
#include <string_view>

#include "backend/backend.h"
#include "loader/progress.h"
#include "model/model.h"

namespace orcd::engine {

enum class Device { Cpu, Cuda };

// "cpu" | "cuda"; throws Error(InvalidArgument) otherwise.
Device parse_device(std::string_view name);
std::string_view device_name(Device d);

// How the weight matrices are held (backend.h); --weights.
using backend::WeightsMode;

// "quantized" | "f16"; throws Error(InvalidArgument) otherwise.
WeightsMode parse_weights(std::string_view name);

// How quantized weights meet the activation on either backend (backend.h); --activations. F32 is the exact reference
// `orcd perplexity --activations f32` compares against.
using backend::Activations;

// "int8" | "f32"; throws Error(InvalidArgument) otherwise.
Activations parse_activations(std::string_view name);

struct BackendOptions {
    unsigned n_threads = 0;  // CPU threads (0 = all cores)
    int gpu = 0;             // CUDA device ordinal (--gpu; ignored by the CPU backend)
    Activations activations = Activations::Int8;
    WeightsMode weights = WeightsMode::Quantized;  // f16: CUDA only (InvalidArgument on the CPU)
    // The weights' upload to the GPU, chunk by chunk and layer by layer (loader/progress.h); the CPU backend, which
    // reads the file's mapping in place, has no upload and never calls it.
    loader::ProgressFn load_progress;
};

// Checks a command line's --gpu against its --device before anything is loaded. Errors: InvalidArgument for an
// index < 0, or an index given (`given`) with --device cpu.
void check_gpu_option(Device device, int gpu, bool given);

// Errors: NoDevice when CUDA is asked for and this build has no CUDA backend, the machine has no GPU or no GPU
// `options.gpu`; the backend's own load errors (UnsupportedTensorType, ...).
std::unique_ptr<backend::Backend> create_backend(Device device, model::Model model, const BackendOptions& options);

}  // namespace orcd::engine
