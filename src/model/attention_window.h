#pragma once
// The sliding-window convention, stated once for every backend (the CPU reference, the CUDA decode and prefill
// kernels; this header has no dependencies so that device code includes it too):
//
//   a query at position p attends the key at position j  <=>  j <= p (causal) and, with a window w > 0, p - j < w,
//
// i.e. the w positions p - w + 1 .. p, itself included; w = 0 means no window. This is how Hugging Face's Phi-3
// applies its config's sliding_window, and what llama.cpp reads from <arch>.attention.sliding_window.
#include <cstdint>

#if defined(__CUDACC__)
#define ORCD_HOST_DEVICE __host__ __device__
#else
#define ORCD_HOST_DEVICE
#endif

namespace orcd::model {

ORCD_HOST_DEVICE constexpr bool attends(int64_t query_pos, int64_t key_pos, uint32_t window) {
    return key_pos <= query_pos && (window == 0 || query_pos - key_pos < static_cast<int64_t>(window));
}

// The first key position a query at `query_pos` attends.
ORCD_HOST_DEVICE constexpr int64_t first_attended(int64_t query_pos, uint32_t window) {
    return window == 0 || query_pos < static_cast<int64_t>(window) ? 0 : query_pos - window + 1;
}

}  // namespace orcd::model
