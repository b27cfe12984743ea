#include "loader/device.h"

namespace orcd::loader {

bool Device::fault_alloc() {
    std::lock_guard lock(fault_mu_);
    ++n_allocs_;
    return faults_.fail_alloc_at != 0 && n_allocs_ == faults_.fail_alloc_at;
}

bool Device::fault_pinned_alloc() {
    std::lock_guard lock(fault_mu_);
    ++n_pinned_allocs_;
    return faults_.fail_pinned_alloc_at != 0 && n_pinned_allocs_ == faults_.fail_pinned_alloc_at;
}

bool Device::fault_register() {
    std::lock_guard lock(fault_mu_);
    ++n_registers_;
    return faults_.fail_register_at != 0 && n_registers_ == faults_.fail_register_at;
}

CopyFault Device::fault_copy(uint64_t n) {
    std::lock_guard lock(fault_mu_);
    CopyFault f;
    f.first_byte = copied_bytes_;
    const uint64_t end = copied_bytes_ + n;
    if (faults_.fail_transfer_at_byte && *faults_.fail_transfer_at_byte >= copied_bytes_ &&
        *faults_.fail_transfer_at_byte < end) {
        f.fail = true;
        return f;  // a refused copy moves nothing
    }
    if (faults_.corrupt_byte && *faults_.corrupt_byte >= copied_bytes_ && *faults_.corrupt_byte < end) {
        f.corrupt_at = *faults_.corrupt_byte - copied_bytes_;
    }
    copied_bytes_ = end;
    return f;
}

}  // namespace orcd::loader
