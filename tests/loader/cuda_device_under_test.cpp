#include "device_under_test.h"

#include "device/cuda_device.h"

namespace orcd::testing {

DeviceUnderTest make_device_under_test() {
    DeviceUnderTest d;
    if (device::cuda_device_count() == 0) {
        d.skip_reason = device::cuda_unavailable_reason();
        return d;
    }
    d.device = device::open_cuda_device(0);
    return d;
}

bool device_is_cuda() { return true; }

}  // namespace orcd::testing
