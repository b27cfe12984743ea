#pragma once
// Helpers shared by the gpu tests: device detection with a visible skip, RAII device buffers, host<->device copies,
// NaN poisoning, a fresh printed seed per test, and the message of an op's argument check (with a stand-in KV
// cache view).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cuda_runtime.h>  // (not _api.h: the typed cudaMalloc template)
#include <functional>
#include <random>
#include <string>
#include <vector>

#include "backend/cuda/ops.h"
#include "common/error.h"

namespace orcd::cuda::test {

inline bool have_gpu() {
    int n = 0;
    return cudaGetDeviceCount(&n) == cudaSuccess && n > 0;
}

#define ORCD_SKIP_WITHOUT_GPU() \
    if (!::orcd::cuda::test::have_gpu()) GTEST_SKIP() << "SKIP: no CUDA device on this machine (gpu test)"

// The message of the InvalidArgument an op throws for its arguments ("(no error)" if it throws none). The checks run
// before any launch, so these tests need no device.
inline std::string argument_error(const std::function<void()>& op) {
    try {
        op();
    } catch (const Error& e) {
        EXPECT_EQ(e.code(), ErrorCode::InvalidArgument) << e.what();
        return e.what();
    }
    return "(no error)";
}

// A KV cache view that passes the views' checks; its buffers are never touched (for calls refused by a later check).
inline KvCacheView fake_kv(int64_t n_ctx, int n_kv_heads, int head_dim) {
    static uint16_t cell[2];
    return {.k = &cell[0], .v = &cell[1], .n_ctx = n_ctx, .n_kv_heads = n_kv_heads, .head_dim = head_dim};
}

// A fresh seed for every run, printed so that a failure can be replayed.
// A new seed per run (printed), or ORCD_TEST_SEED's value to repeat a printed one.
inline uint64_t fresh_seed() {
    const char* fixed = std::getenv("ORCD_TEST_SEED");
    const uint64_t seed = fixed ? std::strtoull(fixed, nullptr, 10)
                                : (static_cast<uint64_t>(std::random_device{}()) << 32) ^ std::random_device{}();
    std::printf("seed %llu\n", static_cast<unsigned long long>(seed));
    return seed;
}

template <typename T>
class DeviceBuffer {
public:
    explicit DeviceBuffer(size_t n) : n_(n) {
        EXPECT_EQ(cudaMalloc(&p_, std::max<size_t>(n, 1) * sizeof(T)), cudaSuccess);
    }
    explicit DeviceBuffer(const std::vector<T>& host) : DeviceBuffer(host.size()) { upload(host); }
    ~DeviceBuffer() { cudaFree(p_); }
    DeviceBuffer(const DeviceBuffer&) = delete;
    DeviceBuffer& operator=(const DeviceBuffer&) = delete;

    T* get() const { return p_; }
    void upload(const std::vector<T>& host) {
        ASSERT_LE(host.size(), n_);
        ASSERT_EQ(cudaMemcpy(p_, host.data(), host.size() * sizeof(T), cudaMemcpyHostToDevice), cudaSuccess);
    }
    std::vector<T> download() const {
        std::vector<T> host(n_);
        EXPECT_EQ(cudaDeviceSynchronize(), cudaSuccess);
        EXPECT_EQ(cudaMemcpy(host.data(), p_, n_ * sizeof(T), cudaMemcpyDeviceToHost), cudaSuccess);
        return host;
    }
    // Fills with NaN (floats) or 0xff bytes, so that an element the kernel fails to write cannot pass.
    void poison() { ASSERT_EQ(cudaMemset(p_, 0xff, n_ * sizeof(T)), cudaSuccess); }

private:
    T* p_ = nullptr;
    size_t n_ = 0;
};

inline std::vector<float> normal_vector(std::mt19937_64& rng, size_t n, float sd = 1.0f) {
    std::normal_distribution<float> d(0.0f, sd);
    std::vector<float> v(n);
    for (float& x : v) x = d(rng);
    return v;
}

// max |a - b| / max |b|: the error relative to the output's scale; NaN anywhere gives +inf.
inline double rel_error(const std::vector<float>& a, const std::vector<float>& b) {
    double diff = 0, scale = 0;
    for (size_t i = 0; i < b.size(); ++i) {
        if (std::isnan(a[i]) || std::isnan(b[i])) return INFINITY;
        diff = std::max(diff, std::fabs(static_cast<double>(a[i]) - b[i]));
        scale = std::max(scale, std::fabs(static_cast<double>(b[i])));
    }
    return scale > 0 ? diff / scale : diff;
}

}  // namespace orcd::cuda::test
