#include "device/device.h"

#include <algorithm>

namespace orcd::device {

void AllocationLedger::add(const std::string& label, uint64_t bytes) {
    std::lock_guard lock(mu_);
    for (auto& [l, b] : by_label_) {
        if (l == label) {
            b += bytes;
            return;
        }
    }
    by_label_.emplace_back(label, bytes);
}

void AllocationLedger::remove(const std::string& label, uint64_t bytes) {
    std::lock_guard lock(mu_);
    for (auto& [l, b] : by_label_) {
        if (l == label) {
            b -= std::min(b, bytes);
            return;
        }
    }
}

uint64_t AllocationLedger::live_bytes(std::string_view label_prefix) const {
    std::lock_guard lock(mu_);
    uint64_t sum = 0;
    for (const auto& [l, b] : by_label_) {
        if (std::string_view(l).starts_with(label_prefix)) sum += b;
    }
    return sum;
}

DeviceMemory::~DeviceMemory() {
    if (ledger_) ledger_->remove(label_, size_);
}

std::unique_ptr<DeviceMemory> Device::allocate(uint64_t bytes, std::string_view what) {
    std::unique_ptr<DeviceMemory> m = allocate_memory(bytes, what);
    m->label_ = std::string(what);
    m->ledger_ = ledger_;
    ledger_->add(m->label_, m->size());
    return m;
}

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

}  // namespace orcd::device
