#pragma once
// The transfer checksum: the bytes are read as little-endian 64-bit words (the last one zero-padded), each word is
// mixed with its index, and the mixed words are summed modulo 2^64. Summation is associative and commutative, so a GPU
// can reduce in any order (integer atomics included) and still produce exactly the host's value; mixing with the index
// makes moved or swapped words (a chunk-boundary bug) change the sum.
#include <cstddef>
#include <cstdint>
#include <span>

#if defined(__CUDACC__)
#define ORCD_HD __host__ __device__ __forceinline__
#else
#define ORCD_HD inline
#endif

namespace orcd::device {

ORCD_HD uint64_t checksum_mix(uint64_t word, uint64_t index) {
    // splitmix64's finaliser over the word keyed by its position (the odd multiplier makes index -> key a bijection).
    uint64_t z = word ^ (index * 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

// Host implementation (the reference the device kernel must equal).
uint64_t checksum_bytes(std::span<const std::byte> bytes);

}  // namespace orcd::device
