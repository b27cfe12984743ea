#include "backend/cuda/sample.h"

#include <fmt/format.h>

#include <cmath>
#include <cstring>

#include "common/error.h"
#include "device/cuda_check.h"

namespace orcd::backend::cuda {

namespace {

size_t align_up(size_t v) { return (v + 255) & ~size_t{255}; }

}  // namespace

DeviceSampler::DeviceSampler(device::Device& device, int64_t n_vocab, cudaStream_t stream)
    : device_(device), n_(n_vocab) {
    // The kernel indexes the vocabulary with int, and its fixed-point weights need n * 2^S <= 2^62 with S >= 1.
    if (n_vocab <= 0 || n_vocab > INT32_MAX / 2) {
        throw Error(ErrorCode::InvalidArgument,
                    fmt::format("cuda sampler: vocabulary of {} entries, expected 1 .. {}", n_vocab, INT32_MAX / 2));
    }
    out_ = device_.allocate(256, "sampler workspace");
    capacity_ = detail::sample_block_capacity();
    result_host_ = allocate_pinned_host<int32_t>(sizeof(int32_t));
    seen_.assign(static_cast<size_t>(n_vocab), 0);
    // One row with a penalty copy: the warm-up below runs greedy on zeroed logits in that copy's scratch (unused by a
    // greedy step without a window).
    reserve(1, 0, 1, stream);
    auto* zeros = reinterpret_cast<float*>(work_->data());
    ORCD_CUDA_CHECK(cudaMemsetAsync(zeros, 0, static_cast<size_t>(n_vocab) * sizeof(float), stream));
    SampleStep warm;
    warm.temperature = 0.f;
    sample(zeros, warm, stream);
}

void DeviceSampler::reserve(size_t rows, size_t ids, size_t penalized, cudaStream_t stream) {
    const size_t bytes = align_up(rows * sizeof(detail::SampleRow)) + ids * sizeof(int32_t);
    if (bytes > upload_bytes_) {
        const size_t grown = std::max(bytes, 2 * upload_bytes_);
        upload_.reset();
        upload_ = device_.allocate(grown, "sampler workspace");
        staging_ = allocate_pinned_host<std::byte>(grown);
        upload_bytes_ = grown;
    }
    if (rows > scratch_rows_) {
        scratch_.reset();
        const size_t bytes = detail::sample_scratch_bytes(static_cast<int>(rows));
        scratch_ = device_.allocate(bytes, "sampler workspace");
        // Zero once: every launch leaves it zero (sample_kernels.h).
        ORCD_CUDA_CHECK(cudaMemsetAsync(scratch_->data(), 0, bytes, stream));
        scratch_rows_ = rows;
    }
    if (penalized > work_rows_) {
        work_.reset();
        work_ = device_.allocate(penalized * static_cast<uint64_t>(n_) * sizeof(float), "sampler workspace");
        work_rows_ = penalized;
    }
}

void DeviceSampler::sample_rows(std::span<const Row> rows, cudaStream_t stream) {
    if (rows.empty()) return;
    size_t ids = 0, penalized = 0;
    for (size_t r = 0; r < rows.size(); ++r) {
        const SampleStep& s = *rows[r].step;
        try {
            check_sample_step(s);
        } catch (const Error& e) {
            throw Error(e.code(), fmt::format("cuda sampler: row {}: {}", r, e.what()));
        }
        if (s.repeat_penalty != 1.f && !s.penalty_window.empty()) {
            ids += s.penalty_window.size();
            ++penalized;
        }
    }
    reserve(rows.size(), ids, penalized, stream);
    auto* headers = reinterpret_cast<detail::SampleRow*>(staging_.get());
    const size_t ids_at = align_up(rows.size() * sizeof(detail::SampleRow));
    auto* id_host = reinterpret_cast<int32_t*>(staging_.get() + ids_at);
    auto* work = penalized > 0 ? reinterpret_cast<float*>(work_->data()) : nullptr;
    int64_t count = 0;
    size_t slot = 0;
    for (const Row& r : rows) {
        const SampleStep& s = *r.step;
        // Distinct in-vocabulary ids, as the host chain's set: the kernel then changes each logit once, without races.
        const int64_t first = count;
        if (s.repeat_penalty != 1.f) {
            for (TokenId t : s.penalty_window) {
                if (t < 0 || t >= n_ || seen_[static_cast<size_t>(t)]) continue;
                seen_[static_cast<size_t>(t)] = 1;
                id_host[count++] = t;
            }
            for (int64_t i = first; i < count; ++i) seen_[static_cast<size_t>(id_host[i])] = 0;
        }
        float* row_work = nullptr;
        if (count > first) row_work = work + static_cast<int64_t>(slot++) * n_;
        headers[&r - rows.data()] = detail::SampleRow{.logits = r.logits,
                                                      .out = r.out,
                                                      .work = row_work,
                                                      .u = s.u,
                                                      .temperature = s.temperature,
                                                      .top_p = s.top_p,
                                                      .min_p = s.min_p,
                                                      .repeat_penalty = s.repeat_penalty,
                                                      .top_k = s.top_k,
                                                      .n_window = static_cast<int32_t>(count - first),
                                                      .window_offset = first};
    }
    const auto* dev_rows = reinterpret_cast<const detail::SampleRow*>(upload_->data());
    const auto* dev_ids = reinterpret_cast<const int32_t*>(upload_->data() + ids_at);
    const int n_rows = static_cast<int>(rows.size());
    const int slices = detail::sample_slices(n_rows, n_, capacity_);
    if (n_rows <= detail::kInlineRows) {
        // The headers go in the launch itself; only penalty ids, if any, are copied before it.
        if (count > 0) {
            ORCD_CUDA_CHECK(cudaMemcpyAsync(upload_->data() + ids_at, staging_.get() + ids_at,
                                            static_cast<size_t>(count) * sizeof(int32_t), cudaMemcpyHostToDevice,
                                            stream));
        }
        ORCD_CUDA_CHECK(
            detail::launch_sample_rows_inline(headers, dev_ids, n_rows, n_, scratch_->data(), slices, stream));
        return;
    }
    const size_t bytes = ids_at + static_cast<size_t>(count) * sizeof(int32_t);
    ORCD_CUDA_CHECK(cudaMemcpyAsync(upload_->data(), staging_.get(), bytes, cudaMemcpyHostToDevice, stream));
    ORCD_CUDA_CHECK(detail::launch_sample_rows(dev_rows, dev_ids, n_rows, n_, scratch_->data(), slices, stream));
}

TokenId DeviceSampler::sample(const float* logits, const SampleStep& step, cudaStream_t stream) {
    int32_t* out = reinterpret_cast<int32_t*>(out_->data());
    const Row row{logits, &step, out};
    sample_rows(std::span(&row, 1), stream);
    ORCD_CUDA_CHECK(cudaMemcpyAsync(result_host_.get(), out, sizeof(int32_t), cudaMemcpyDeviceToHost, stream));
    ORCD_CUDA_CHECK(cudaStreamSynchronize(stream));
    return *result_host_;
}

}  // namespace orcd::backend::cuda
