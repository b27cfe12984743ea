#include "backend/cuda/sample.h"

#include <fmt/format.h>

#include <cmath>
#include <cstring>

#include "common/error.h"
#include "device/cuda_check.h"

namespace orcd::backend::cuda {

namespace {

uint64_t align_up(uint64_t v) { return (v + 255) & ~uint64_t{255}; }

}  // namespace

DeviceSampler::DeviceSampler(device::Device& device, int64_t n_vocab, cudaStream_t stream) : n_(n_vocab) {
    if (n_vocab <= 0 || n_vocab > INT32_MAX / 2) {
        throw Error(ErrorCode::InvalidArgument,
                    fmt::format("cuda sampler: vocabulary of {} entries, expected 1 .. {}", n_vocab, INT32_MAX / 2));
    }
    const uint64_t n = static_cast<uint64_t>(n_vocab);
    const uint64_t sort_bytes = detail::sort_temp_bytes(n_vocab);
    // One allocation, carved: work, iota, keys, ids, header, window, out, sort scratch.
    const uint64_t vec = align_up(n * 4);
    const uint64_t header = align_up(sizeof(detail::SampleHeader));
    const uint64_t window = vec;  // at most n distinct ids
    const uint64_t total = 4 * vec + header + window + 256 + align_up(sort_bytes);
    mem_ = device.allocate(total, "sampler workspace");
    std::byte* p = mem_->data();
    b_.work = reinterpret_cast<float*>(p);
    int32_t* iota = reinterpret_cast<int32_t*>(p + vec);
    b_.iota = iota;
    b_.keys = reinterpret_cast<float*>(p + 2 * vec);
    b_.ids = reinterpret_cast<int32_t*>(p + 3 * vec);
    header_dev_ = reinterpret_cast<detail::SampleHeader*>(p + 4 * vec);
    b_.header = header_dev_;
    b_.window = reinterpret_cast<const int32_t*>(p + 4 * vec + header);
    out_ = reinterpret_cast<int32_t*>(p + 4 * vec + header + window);
    b_.out = out_;
    b_.sort_temp = p + 4 * vec + header + window + 256;
    b_.sort_temp_bytes = sort_bytes;
    staging_ = allocate_pinned_host<std::byte>(header + window);
    result_host_ = allocate_pinned_host<int32_t>(sizeof(int32_t));
    seen_.assign(n, 0);

    detail::launch_iota(iota, n_vocab, stream);
    ORCD_CUDA_CHECK(cudaGetLastError());
    // The warm-up: greedy on zeroed logits (the keys buffer doubles as the input: the chain has copied it into work
    // before the sort writes it).
    ORCD_CUDA_CHECK(cudaMemsetAsync(b_.keys, 0, n * 4, stream));
    SampleStep warm;
    warm.temperature = 0.f;
    sample(b_.keys, warm, stream);
}

void DeviceSampler::stage(const SampleStep& s, cudaStream_t stream) {
    check_sample_step(s);
    // Distinct in-vocabulary ids, as the host chain's set: the kernel then changes each logit once, without races.
    int32_t* ids = reinterpret_cast<int32_t*>(staging_.get() + align_up(sizeof(detail::SampleHeader)));
    int32_t count = 0;
    if (s.repeat_penalty != 1.f) {
        for (TokenId t : s.penalty_window) {
            if (t < 0 || t >= n_ || seen_[static_cast<size_t>(t)]) continue;
            seen_[static_cast<size_t>(t)] = 1;
            ids[count++] = t;
        }
        for (int32_t i = 0; i < count; ++i) seen_[static_cast<size_t>(ids[i])] = 0;
    }
    const detail::SampleHeader h{.u = s.u,
                                 .temperature = s.temperature,
                                 .top_p = s.top_p,
                                 .min_p = s.min_p,
                                 .repeat_penalty = s.repeat_penalty,
                                 .top_k = s.top_k,
                                 .n_window = count};
    std::memcpy(staging_.get(), &h, sizeof(h));
    const size_t bytes = align_up(sizeof(detail::SampleHeader)) + static_cast<size_t>(count) * sizeof(int32_t);
    ORCD_CUDA_CHECK(cudaMemcpyAsync(header_dev_, staging_.get(), bytes, cudaMemcpyHostToDevice, stream));
}

void DeviceSampler::enqueue(const float* logits, cudaStream_t stream) const {
    detail::launch_sample_chain(logits, n_, b_, stream);
    ORCD_CUDA_CHECK(cudaGetLastError());
}

TokenId DeviceSampler::sample(const float* logits, const SampleStep& step, cudaStream_t stream) {
    stage(step, stream);
    enqueue(logits, stream);
    ORCD_CUDA_CHECK(cudaMemcpyAsync(result_host_.get(), out_, sizeof(int32_t), cudaMemcpyDeviceToHost, stream));
    ORCD_CUDA_CHECK(cudaStreamSynchronize(stream));
    return *result_host_;
}

}  // namespace orcd::backend::cuda
