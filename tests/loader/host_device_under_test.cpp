#include "device_under_test.h"

namespace orcd::testing {

DeviceUnderTest make_device_under_test() {
    device::HostDeviceOptions o;
    o.capacity = 1ull << 30;
    o.name = "host-test";
    o.copy_delay_us = 20;  // copies complete late, so a buffer reused too early would be caught
    auto dev = std::make_shared<device::HostDevice>(o);
    DeviceUnderTest d;
    d.host = dev.get();
    d.device = std::move(dev);
    return d;
}

bool device_is_cuda() { return false; }

}  // namespace orcd::testing
