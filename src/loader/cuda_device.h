#pragma once
// The CUDA implementation of Device. In a build without CUDA these functions exist and report NoDevice, so callers
// (CLI, C API) need no #ifdefs.
#include <memory>

#include "loader/device.h"

namespace orcd::loader {

// Number of CUDA devices visible (0 when there is no driver, no GPU, or the build has no CUDA).
int cuda_device_count();
// A short reason when cuda_device_count() is 0 ("no CUDA device: cudaGetDeviceCount: no CUDA-capable device is
// detected"), for SKIP lines and error messages; empty when a device is present.
std::string cuda_unavailable_reason();

// Opens GPU `index` (sets it current for the loader's calls). Errors: NoDevice (no GPU, index out of range, build
// without CUDA — the message lists what is present), Device (other runtime failures).
std::shared_ptr<Device> open_cuda_device(int index);

}  // namespace orcd::loader
