#pragma once
// The CUDA implementation of Device. In a build without CUDA these functions exist and report NoDevice, so callers
// (CLI, C API) need no #ifdefs.
#include <memory>

#include "device/device.h"

namespace orcd::device {

// Number of CUDA devices visible (0 when there is no driver, no GPU, or the build has no CUDA).
int cuda_device_count();
// A short reason when cuda_device_count() is 0, for SKIP lines and error messages; empty when a device is present.
// No GPU or no driver reads "no NVIDIA GPU or driver was found (cudaGetDeviceCount: <the runtime's words>)" (the
// runtime's own "CUDA driver version is insufficient" misleads); a build without CUDA says so.
std::string cuda_unavailable_reason();

struct CudaDeviceOptions {
    // Pinned staging from anonymous memory on transparent huge pages, populated and then cudaHostRegister'ed, rather
    // than cudaHostAlloc: pinning 2 MiB pages costs a fraction of pinning 4 KiB ones (cudaHostAlloc took ~0.2 s per
    // 256 MiB on the H100 machine, docs/PERF.md). Falls back to cudaHostAlloc whenever a step fails.
    bool huge_page_staging = true;
};

// Opens GPU `index` (sets it current for the loader's calls). Errors: NoDevice (no GPU, index out of range, build
// without CUDA — the message lists what is present), Device (other runtime failures).
std::shared_ptr<Device> open_cuda_device(int index, const CudaDeviceOptions& options = {});

}  // namespace orcd::device
