#pragma once
// Typed launch wrapper for the device checksum (checksum.h's algorithm), implemented in checksum_kernel.cu.
#include <cuda_runtime_api.h>

#include <cstdint>

namespace orcd::device {

struct ChecksumJob {
    const unsigned char* ptr;  // device bytes
    unsigned long long bytes;
};

// Computes one checksum per job into out[i] (device memory, zeroed by the wrapper) on `stream`. Returns the launch
// error (cudaSuccess or the code of the failed call); the caller checks it.
cudaError_t launch_checksums(const ChecksumJob* jobs_device, unsigned n_jobs, unsigned long long* out_device,
                             unsigned long long max_bytes, cudaStream_t stream);

}  // namespace orcd::device
