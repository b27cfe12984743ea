#include "device_under_test.h"

#include "loader/cuda_device.h"

namespace orcd::testing {

DeviceUnderTest make_device_under_test() {
    DeviceUnderTest d;
    if (loader::cuda_device_count() == 0) {
        d.skip_reason = loader::cuda_unavailable_reason();
        return d;
    }
    d.device = loader::open_cuda_device(0);
    return d;
}

bool device_is_cuda() { return true; }

}  // namespace orcd::testing
