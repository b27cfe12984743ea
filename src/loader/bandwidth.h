#pragma once
// Host-to-device bandwidth as this process sees it: the ceiling the loader's transfer is measured against
// (`orcd load --bench-h2d`, and `orcd bench --h2d` when that command exists).
#include <cstdint>
#include <string>

#include "loader/device.h"

namespace orcd::loader {

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

}  // namespace orcd::loader
