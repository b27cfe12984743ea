// Built instead of cuda_device.cpp when ORCD_CUDA is off: the same functions, reporting that there is no device.
#include "device/cuda_device.h"

#include "common/error.h"

namespace orcd::device {

int cuda_device_count() { return 0; }

std::string cuda_unavailable_reason() {
    return "CUDA was not compiled into this build (configured with ORCD_CUDA=OFF)";
}

std::shared_ptr<Device> open_cuda_device(int index, const CudaDeviceOptions&) {
    throw Error(ErrorCode::NoDevice,
                "cannot open GPU " + std::to_string(index) + ": " + cuda_unavailable_reason() + "; use --device cpu");
}

}  // namespace orcd::device
