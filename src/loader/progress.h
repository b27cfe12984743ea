#pragma once
// Progress of a load, reported through a callback: once per completed chunk, once per completed layer, and once at
// the end. Callbacks run on the loading thread; a slow callback slows the load, so keep them short.
#include <cstdint>
#include <functional>
#include <string_view>

namespace orcd::loader {

struct Progress {
    enum class Kind : uint8_t { Chunk, Layer, Done };
    Kind kind = Kind::Chunk;
    uint64_t bytes_done = 0;   // arena bytes whose copy has completed on the device
    uint64_t bytes_total = 0;  // the plan's weight_bytes
    uint64_t chunk = 0;        // chunks completed so far
    uint64_t n_chunks = 0;
    std::string_view tensor;  // the tensor at the end of the completed range (or of the completed layer)
    int32_t layer = -1;       // its block (-1: outside the blocks)
    uint32_t n_layers = 0;
    double elapsed_s = 0.0;  // since the transfer started
};

using ProgressFn = std::function<void(const Progress&)>;

}  // namespace orcd::loader
