#pragma once
// Copy bandwidths as this process sees them: host-to-device, the ceiling the loader's transfer is measured against
// (`orcd load --bench-h2d`); device-to-device and host memcpy, the ceilings `orcd bench` sets decode's effective
// bandwidth against.
#include <cstdint>
#include <string>

#include "device/device.h"

namespace orcd::device {

struct H2dBandwidth {
    double pinned_gbps = 0.0;    // best of `reps` copies from one pinned buffer
    double pageable_gbps = 0.0;  // best of `reps` copies from ordinary (pageable) memory; 0 when not measured
    uint64_t bytes = 0;
    int reps = 0;
};

// Copies `bytes` to one device allocation `reps` times (after one warm-up copy) from pinned memory, and, when
// `pageable` is set, from pageable memory. Errors: those of Device (allocation, transfer).
H2dBandwidth measure_h2d_bandwidth(Device& device, uint64_t bytes = 256ull << 20, int reps = 5, bool pageable = true);

// The pinned figure alone, for `orcd bench`.
double measure_pinned_h2d_gbps(Device& device, uint64_t bytes = 256ull << 20, int reps = 5);

// The cost of DMA straight out of existing host memory (a file mapping): cudaHostRegister it, copy it to the device
// once, unregister. Decides whether registering the page cache could replace the staging copy. A refused
// registration is reported in `error`, not thrown.
struct RegisteredCopy {
    uint64_t bytes = 0;
    double register_s = 0.0, copy_s = 0.0, unregister_s = 0.0;
    std::string error;
};
RegisteredCopy measure_registered_copy(Device& device, const std::byte* host, uint64_t bytes);
// Device-to-device copy bandwidth: best of `reps` timed rounds (after one warm-up round) of `copies_per_rep`
// back-to-back copies of `bytes` between two allocations. Counted as read + write traffic (2 x bytes per copy), as
// NVIDIA's bandwidthTest does, so it compares with a kernel's bytes read + written per second. Errors: those of Device
// (allocation of 2 x bytes, transfer); InvalidArgument for zero bytes, reps or copies.
double measure_d2d_gbps(Device& device, uint64_t bytes = 256ull << 20, int reps = 5, int copies_per_rep = 4);

// The same figure for host memory (std::memcpy between two buffers, 2 x bytes of traffic per copy), for the CPU
// backend. Errors: InvalidArgument for zero bytes or reps.
double measure_memcpy_gbps(uint64_t bytes = 256ull << 20, int reps = 5);

}  // namespace orcd::device
