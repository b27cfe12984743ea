#pragma once
// Chooses the backend for `--device cpu|cuda`. There is no silent fallback: asking for CUDA where there is none is an
// error that names `--device cpu`.
#include <memory>
#include <string_view>

#include "backend/backend.h"
#include "model/model.h"

namespace orcd::engine {

enum class Device { Cpu, Cuda };

// "cpu" | "cuda"; throws Error(InvalidArgument) otherwise.
Device parse_device(std::string_view name);
std::string_view device_name(Device d);

// How the CUDA backend holds the weight matrices: the file's quantized bytes, or (for comparison) an f16 copy
// dequantized once at load. The CPU backend has only the quantized mode.
enum class WeightsMode { Quantized, F16 };

// "quantized" | "f16"; throws Error(InvalidArgument) otherwise.
WeightsMode parse_weights(std::string_view name);

// How quantized weights meet the activation, on either backend (cpu::Activations, cuda::Activations: the same
// definition). Int8 (default): the activation is quantized to 8-bit blocks of 32 and the dot products run in
// integers; F32: the dequantized weights meet the f32 activation (f32 rounding only; slower on the CPU, the exact
// reference `orcd perplexity --activations f32` compares against). The CUDA backend's batched prefill multiplies f16
// activations on tensor cores in either mode; the mode governs its decode matvecs.
enum class Activations { Int8, F32 };

// "int8" | "f32"; throws Error(InvalidArgument) otherwise.
Activations parse_activations(std::string_view name);

struct BackendOptions {
    unsigned n_threads = 0;  // CPU threads (0 = all cores)
    int gpu = 0;             // CUDA device ordinal (--gpu; ignored by the CPU backend)
    Activations activations = Activations::Int8;
    WeightsMode weights = WeightsMode::Quantized;  // f16: CUDA only (InvalidArgument on the CPU)
};

// Checks a command line's --gpu against its --device before anything is loaded. Errors: InvalidArgument for an
// index < 0, or an index given (`given`) with --device cpu.
void check_gpu_option(Device device, int gpu, bool given);

// Errors: NoDevice when CUDA is asked for and this build has no CUDA backend, the machine has no GPU or no GPU
// `options.gpu`; the backend's own load errors (UnsupportedTensorType, ...).
std::unique_ptr<backend::Backend> create_backend(Device device, model::Model model, const BackendOptions& options);

}  // namespace orcd::engine
