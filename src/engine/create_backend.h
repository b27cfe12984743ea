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

// How quantized weights meet the activation, on either backend (cpu::Activations, cuda::Activations: the same
// definition). Int8 (default): the activation is quantized to 8-bit blocks of 32 and the dot products run in
// integers; F32: the dequantized weights meet the f32 activation (f32 rounding only; slower on the CPU, the exact
// reference `orcd perplexity --activations f32` compares against).
enum class Activations { Int8, F32 };

// "int8" | "f32"; throws Error(InvalidArgument) otherwise.
Activations parse_activations(std::string_view name);

struct BackendOptions {
    unsigned n_threads = 0;  // CPU threads (0 = all cores)
    Activations activations = Activations::Int8;
};

// Errors: NoDevice when CUDA is asked for and this build has no CUDA backend or the machine has no GPU; the
// backend's own load errors (UnsupportedTensorType, ...).
std::unique_ptr<backend::Backend> create_backend(Device device, model::Model model, const BackendOptions& options);

}  // namespace orcd::engine
