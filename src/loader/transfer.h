#pragma once
// Moves the weights from the mapped file into the device arena through pinned staging buffers: the arena is cut into
// chunk-sized windows; window k is gathered from the mapping into staging buffer k mod B (by a few threads, since a
// single memcpy from page-cache-backed memory is slower than the DMA) and queued as one copy on a stream, followed by
// an event; before buffer k mod B is reused its event is waited on. With B >= 2 buffers the gathering of window k+1
// overlaps the DMA of window k. Pages of the mapping that have been gathered are dropped (MADV_DONTNEED).
#include <atomic>
#include <cstdint>

#include "gguf/file.h"
#include "loader/device.h"
#include "loader/plan.h"
#include "loader/progress.h"
#include "model/weights.h"

namespace orcd::loader {

inline constexpr uint64_t kDefaultChunkBytes = 256ull << 20;
inline constexpr uint64_t kMinChunkBytes = 4096;  // the CLI's floor is 1 MiB; tests go lower to cut small models

struct TransferOptions {
    uint64_t chunk_bytes = kDefaultChunkBytes;
    uint32_t n_buffers = 2;     // staging buffers in flight (>= 2 for overlap; fewer are used when there are fewer chunks)
    uint32_t copy_threads = 0;  // threads gathering a chunk; 0 = min(16, hardware threads)
    bool release_pages = true;  // MADV_DONTNEED the mapping behind the transfer
};

struct TransferStats {
    uint64_t bytes = 0;          // arena bytes copied
    double seconds = 0.0;        // first gather to last copy completed
    double gather_seconds = 0.0; // time spent gathering into staging buffers (readahead hints included)
    double wait_seconds = 0.0;   // time spent waiting for a staging buffer's copy to complete
    double setup_seconds = 0.0;  // first pinned buffer, stream and events (the others are pinned in the background)
    uint64_t chunks = 0;
    uint64_t staging_bytes = 0;  // size of the (largest) staging buffer: min(chunk, model)
    uint32_t n_buffers = 0;
    uint32_t copy_threads = 0;
    double gbps() const { return seconds > 0 ? static_cast<double>(bytes) / seconds / 1e9 : 0.0; }
};

// Errors: InvalidArgument (chunk below kMinChunkBytes, n_buffers 0, arena smaller than the plan), DeviceAlloc (pinned
// memory), Transfer (a copy failed), Cancelled (the flag was set; checked before every chunk), Device (other runtime
// failures). On any error every staging resource is released before the function returns; the arena is the
// caller's and holds partial data.
TransferStats transfer_weights(Device& device, const model::ModelWeights& weights, const Plan& plan,
                               DeviceMemory& arena, const gguf::File* file, const TransferOptions& options,
                               const ProgressFn& progress, const std::atomic<bool>* cancel);

}  // namespace orcd::loader
