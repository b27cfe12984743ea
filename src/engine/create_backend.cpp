#include "engine/create_backend.h"

#include <fmt/format.h>

#include "backend/cpu/cpu_backend.h"
#include "common/error.h"
#ifdef ORCD_ENGINE_HAS_CUDA
#include "backend/cuda/cuda_backend.h"
#include "device/cuda_device.h"
#endif

namespace orcd::engine {

Device parse_device(std::string_view name) {
    if (name == "cpu") return Device::Cpu;
    if (name == "cuda") return Device::Cuda;
    throw Error(ErrorCode::InvalidArgument, fmt::format("unknown device '{}': expected cpu or cuda", name));
}

std::string_view device_name(Device d) { return d == Device::Cpu ? "cpu" : "cuda"; }

void check_gpu_option(Device device, int gpu, bool given) {
    if (gpu < 0) throw Error(ErrorCode::InvalidArgument, fmt::format("--gpu {}: expected a GPU index >= 0", gpu));
    if (given && device != Device::Cuda) {
        throw Error(
            ErrorCode::InvalidArgument,
            fmt::format("--gpu {}: a GPU index applies to --device cuda, not --device {}", gpu, device_name(device)));
    }
}

WeightsMode parse_weights(std::string_view name) {
    if (name == "quantized") return WeightsMode::Quantized;
    if (name == "f16") return WeightsMode::F16;
    throw Error(ErrorCode::InvalidArgument, fmt::format("unknown weights mode '{}': expected quantized or f16", name));
}

Activations parse_activations(std::string_view name) {
    if (name == "int8") return Activations::Int8;
    if (name == "f32") return Activations::F32;
    throw Error(ErrorCode::InvalidArgument, fmt::format("unknown activations '{}': expected int8 or f32", name));
}

std::unique_ptr<backend::Backend> create_backend(Device device, model::Model model, const BackendOptions& options) {
    if (device == Device::Cpu) {
        if (options.weights != WeightsMode::Quantized) {
            throw Error(ErrorCode::InvalidArgument,
                        "--weights f16 is a CUDA backend mode; the CPU backend runs the file's weights (use "
                        "--weights quantized, or --device cuda)");
        }
        backend::cpu::CpuOptions o;
        o.n_threads = options.n_threads;
        o.activations = options.activations;
        return backend::cpu::make_cpu_backend(std::move(model), o);
    }
#ifdef ORCD_ENGINE_HAS_CUDA
    if (device::cuda_device_count() == 0) {
        throw Error(ErrorCode::NoDevice, fmt::format("--device cuda: {}; run on the CPU with --device cpu",
                                                     device::cuda_unavailable_reason()));
    }
    backend::cuda::CudaOptions o;
    o.gpu = options.gpu;
    o.weights = options.weights;
    o.activations = options.activations;
    return backend::cuda::make_cuda_backend(std::move(model), o, options.load_progress);
#else
    throw Error(ErrorCode::NoDevice,
                "no CUDA backend in this build (built without CUDA); run on the CPU with --device cpu");
#endif
}

}  // namespace orcd::engine
