#include "backend/cuda/tuning.h"

#include <cerrno>
#include <cstdlib>
#include <optional>

namespace orcd::cuda::tuning {

namespace {

// The variable's value as an integer when it is set and is one whole decimal number, else nothing.
std::optional<long long> env_integer(const char* name) {
    const char* text = std::getenv(name);
    if (text == nullptr || *text == '\0') return std::nullopt;
    char* end = nullptr;
    errno = 0;
    const long long v = std::strtoll(text, &end, 10);
    if (errno != 0 || *end != '\0') return std::nullopt;
    return v;
}

// The variable's value when it is one whole number in [lo, hi], else nothing.
std::optional<long long> env_in_range(const char* name, long long lo, long long hi) {
    const auto v = env_integer(name);
    return v && *v >= lo && *v <= hi ? v : std::nullopt;
}

// Whether the variable is set to a whole number other than 0 (an override that switches something on).
bool env_switch(const char* name) {
    const auto v = env_integer(name);
    return v && *v != 0;
}

bool power_of_two(long long v) { return v > 0 && (v & (v - 1)) == 0; }

}  // namespace

int64_t matvec_tile_bytes(int64_t fallback) {
    static const int64_t bytes = [fallback] {
        const auto v = env_integer("ORCD_MATVEC_TILE_BYTES");
        return v && *v >= 1024 && *v <= 22 * 1024 ? static_cast<int64_t>(*v) : fallback;
    }();
    return bytes;
}

int matvec_warps_per_row() {
    static const int wpr = [] {
        const auto v = env_integer("ORCD_MATVEC_WPR");
        return v && power_of_two(*v) && *v <= 8 ? static_cast<int>(*v) : 0;
    }();
    return wpr;
}

int q8_threads_per_row() {
    static const int tpr = [] {
        const auto v = env_integer("ORCD_Q8_TPR");
        return v && power_of_two(*v) && *v >= 8 && *v <= 256 ? static_cast<int>(*v) : 0;
    }();
    return tpr;
}

int q8_max_columns() {
    static const int nc = [] {
        const auto v = env_integer("ORCD_Q8_MAX_NC");
        return v && (*v == 8 || *v == 16) ? static_cast<int>(*v) : 0;
    }();
    return nc;
}

int q8_mma_min_columns() {
    static const int n = [] {
        const auto v = env_integer("ORCD_Q8_MMA_MIN_COLS");
        return v && *v >= 1 && *v <= 1000000 ? static_cast<int>(*v) : 0;
    }();
    return n;
}

int q8_mma_block_columns() {
    static const int n = [] {
        const auto v = env_integer("ORCD_Q8_MMA_BLOCK_COLS");
        return v && (*v == 8 || *v == 16 || *v == 32) ? static_cast<int>(*v) : 0;
    }();
    return n;
}

int q8_mma_warps() {
    static const int n = [] {
        const auto v = env_integer("ORCD_Q8_MMA_WARPS");
        return v && (*v == 4 || *v == 8 || *v == 16) ? static_cast<int>(*v) : 0;
    }();
    return n;
}

int q8_mma_cluster() {
    static const int n = [] {
        const auto v = env_integer("ORCD_Q8_MMA_CLUSTER");
        return v && (*v == 1 || *v == 2 || *v == 4 || *v == 8) ? static_cast<int>(*v) : 0;
    }();
    return n;
}

int q8_mma_stage() {
    static const int n = [] {
        const auto v = env_integer("ORCD_Q8_MMA_STAGE");
        return v && *v >= 0 && *v <= 7 ? static_cast<int>(*v) : -1;
    }();
    return n;
}

uint64_t fused_max_bytes(uint64_t fallback) {
    const auto v = env_integer("ORCD_FUSED_MAX_BYTES");
    return v && *v >= 0 ? static_cast<uint64_t>(*v) : fallback;
}

uint32_t prefill_ubatch(uint32_t fallback) {
    static const uint32_t n = [fallback] {
        const auto v = env_integer("ORCD_PREFILL_UBATCH");
        return v && *v >= 16 && *v <= 8192 ? static_cast<uint32_t>(*v) : fallback;
    }();
    return n;
}

int sample_slice_min(int fallback) {
    static const int n = [fallback] {
        const auto v = env_integer("ORCD_SAMPLE_SLICE_MIN");
        return v && *v >= 1024 && *v <= 1048576 ? static_cast<int>(*v) : fallback;
    }();
    return n;
}

bool prefill_profile() {
    static const bool on = [] {
        const char* text = std::getenv("ORCD_PREFILL_PROFILE");
        return text != nullptr && *text != '\0' && *text != '0';
    }();
    return on;
}

bool decode_persistent() {
    static const bool on = env_switch("ORCD_DECODE_PERSISTENT");
    return on;
}

int persistent_blocks_per_sm(int fallback) {
    static const int n = static_cast<int>(env_in_range("ORCD_PERSISTENT_BLOCKS_PER_SM", 1, 8).value_or(fallback));
    return n;
}

bool persistent_fold() {
    static const bool on = env_switch("ORCD_PERSISTENT_FOLD");
    return on;
}

bool pdl() {
    static const bool on = [] {
        const auto v = env_integer("ORCD_PDL");
        return !(v && *v == 0);
    }();
    return on;
}

}  // namespace orcd::cuda::tuning
