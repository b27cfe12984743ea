#pragma once
// Moves the weights from the mapped file into the device arena through pinned staging buffers: the arena is cut into
// chunk-sized windows; window k is gathered from the file into staging buffer k mod B (by a few threads, since a
// single copy out of the page cache is slower than the DMA) and queued as one copy on a stream, followed by an event;
// before buffer k mod B is reused its event is waited on. With B >= 2 buffers the gathering of window k+1 overlaps
// the DMA of window k. Pages of the mapping behind the transfer are dropped (MADV_DONTNEED).
//
// The gather copies out of the mapping by default. GatherSource::Read uses pread() on the file instead, which maps
// nothing into this process (no page faults, no page-table entries to tear down); it was expected to lift the gather
// past the ~36-40 GB/s it reaches on the H100 machine, and measured the same (HANDOFF of the loader branch, 2026-11-23:
// the copy itself is the limit, not the faults), so it stays an option. Its descriptor is opened by path and used
// only when it shows the mapped file's size and header bytes; otherwise (a File parsed from memory, a file replaced
// or removed since it was mapped) the gather copies from the mapping.
#include <atomic>
#include <cstdint>
#include <string>
#include <string_view>

#include "gguf/file.h"
#include "device/device.h"
#include "loader/plan.h"
#include "loader/progress.h"
#include "model/weights.h"

namespace orcd::loader {

inline constexpr uint64_t kDefaultChunkBytes = 256ull << 20;
inline constexpr uint64_t kMinChunkBytes = 4096;  // the CLI's floor is 1 MiB; tests go lower to cut small models

enum class GatherSource : uint8_t {
    Mapping,  // memcpy from the mapped file
    Read,     // pread from the file (falls back to Mapping when the file cannot be matched with the mapping)
};
std::string_view gather_source_name(GatherSource s);  // "mapping" | "read"

struct TransferOptions {
    uint64_t chunk_bytes = kDefaultChunkBytes;
    uint32_t n_buffers = 2;  // staging buffers in flight (>= 2 for overlap; fewer are used when there are fewer chunks)
    uint32_t copy_threads = 0;  // threads gathering a chunk; 0 = min(16, hardware threads)
    bool release_pages = true;  // MADV_DONTNEED the mapping behind the transfer
    GatherSource gather = GatherSource::Mapping;
    // No staging: register the mapping's tensor data for DMA (cudaHostRegister, read-only) and copy from it in
    // place. Falls back to staging when the registration is refused (TransferStats::direct_note says why). Off by
    // default: on the H100 machine registering page-cache pages ran at ~1.5 GB/s (32 MiB in 0.022 s), 25x slower
    // than the gather it would replace, and the whole 374 MiB Qwen range did not finish in 150 s.
    bool direct = false;
    // Gather from the mapping with non-temporal (streaming) stores: the staging buffer's lines are not read before
    // being overwritten, a third less memory traffic for a copy that is memory-bound. On the H100 machine (warm cache,
    // 256 MiB chunks) Phi-3-mini went from 34.1 to 37.1 GB/s and Qwen2.5-0.5B from 23.4 to 26.4 GB/s: the default.
    bool streaming_stores = true;
    // Each chunk is gathered and queued for DMA in slices of this many bytes (0: the whole chunk at once). Slicing
    // lets the DMA of a chunk start before the chunk is fully gathered, so the first chunk's gather and the last
    // chunk's DMA stop being exposed (they dominate when a model is only a few chunks, e.g. Qwen 0.5B = 2 x 256 MiB).
    // Progress, buffers and events stay per chunk. Measured slower on the H100 machine (32 MiB slices: Phi-3 34.1 ->
    // 18.3 GB/s with 256 MiB chunks; Qwen about equal), so off by default; kept for hosts with a faster gather.
    uint64_t dma_slice_bytes = 0;
};

struct TransferStats {
    uint64_t bytes = 0;           // arena bytes copied
    double seconds = 0.0;         // first gather to last copy completed
    double gather_seconds = 0.0;  // time spent gathering into staging buffers (readahead hints included)
    double wait_seconds = 0.0;    // time spent waiting for a staging buffer's copy to complete
    double setup_seconds = 0.0;   // first pinned buffer, stream and events (the others are pinned in the background)
    uint64_t chunks = 0;
    uint64_t staging_bytes = 0;  // size of the (largest) staging buffer: min(chunk, model)
    uint32_t n_buffers = 0;
    uint32_t copy_threads = 0;
    GatherSource gather = GatherSource::Mapping;  // what the gather used (Read may have fallen back)
    std::string gather_note;                      // why Read fell back, when it did
    bool streaming_stores = false;                // the gather used non-temporal stores
    bool direct = false;                          // copied in place from the registered mapping (no staging)
    std::string direct_note;                      // why a requested direct transfer staged instead
    double register_seconds = 0.0, unregister_seconds = 0.0;  // direct only; both inside `seconds`
    double gbps() const { return seconds > 0 ? static_cast<double>(bytes) / seconds / 1e9 : 0.0; }
};

// Errors: InvalidArgument (chunk below kMinChunkBytes, n_buffers 0, arena smaller than the plan), DeviceAlloc (pinned
// memory), FileUnreadable (a pread failed or hit the end of the file), Transfer (a copy failed), Cancelled (the flag
// was set; checked before every chunk), Device (other runtime failures). On any error every staging resource is released before the function returns; the arena is the
// caller's and holds partial data.
TransferStats transfer_weights(device::Device& device, const model::ModelWeights& weights, const Plan& plan,
                               device::DeviceMemory& arena, const gguf::File* file, const TransferOptions& options,
                               const ProgressFn& progress, const std::atomic<bool>* cancel);

}  // namespace orcd::loader
