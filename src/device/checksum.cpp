#include "device/checksum.h"

#include <cstring>

namespace orcd::device {

uint64_t checksum_bytes(std::span<const std::byte> bytes) {
    const uint64_t n_full = bytes.size() / 8;
    uint64_t sum = 0;
    for (uint64_t w = 0; w < n_full; ++w) {
        uint64_t v;
        std::memcpy(&v, bytes.data() + w * 8, 8);  // x86-64 and the GPU are little-endian
        sum += checksum_mix(v, w);
    }
    if (const uint64_t tail = bytes.size() % 8) {
        uint64_t v = 0;
        std::memcpy(&v, bytes.data() + n_full * 8, tail);
        sum += checksum_mix(v, n_full);
    }
    return sum;
}

}  // namespace orcd::device
