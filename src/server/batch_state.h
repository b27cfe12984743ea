#pragma once
// The continuous batch as the inference service reports it after a step: what /health and /metrics show of it. Its
// own header so that the metrics can hold one without the service's interface.
#include <cstdint>

#include "kvcache/block_manager.h"

namespace orcd::server {

struct BatchState {
    uint32_t running = 0;
    uint32_t waiting = 0;
    uint32_t kv_page_size = 0;
    uint64_t kv_pool_bytes = 0;
    kvcache::BlockStats kv;  // the block manager's page counts and prefix-cache totals
};

}  // namespace orcd::server
