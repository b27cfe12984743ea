#pragma once
// The device the loader suite runs on: the host device in CI (test_loader), GPU 0 on the device machine
// (test_loader_gpu, label `gpu`). The suite is one source compiled into both; `released()` is how each proves that a
// failed load gave everything back: the host device's live-resource counters, or cudaMemGetInfo before and after.
#include <memory>
#include <string>

#include "device/device.h"
#include "device/host_device.h"

namespace orcd::testing {

struct DeviceUnderTest {
    std::shared_ptr<device::Device> device;  // null: skip (reason says why)
    std::string skip_reason;
    device::HostDevice* host = nullptr;  // set for the host device
};

// Defined once per executable (host_device_under_test.cpp / cuda_device_under_test.cpp).
DeviceUnderTest make_device_under_test();
bool device_is_cuda();

}  // namespace orcd::testing
