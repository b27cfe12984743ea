// The CUDA KV pool and the batched step (kv_pool.h): prompt chunks of more than one token through the tensor-core
// prefill, entry by entry (its GEMM shapes depend on that entry alone); every other token as a column of one batched
// decode launch (decode_step.h), replayed from a CUDA graph per column count.
#include "backend/cuda/kv_pool.h"

#include <fmt/format.h>

#include <algorithm>
#include <cstring>

#include "backend/cuda/decode_persistent.h"
#include "backend/cuda/ops.h"
#include "backend/token_mask.h"
#include "common/error.h"
#include "device/cuda_check.h"

namespace orcd::backend::cuda {

namespace ops = ::orcd::cuda;

CudaKvPool::Stream::Stream() { ORCD_CUDA_CHECK(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking)); }
CudaKvPool::Stream::~Stream() {
    if (s) {
        ORCD_CUDA_WARN(cudaStreamSynchronize(s));
        ORCD_CUDA_WARN(cudaStreamDestroy(s));
    }
}
CudaKvPool::Graph::~Graph() {
    if (exec) ORCD_CUDA_WARN(cudaGraphExecDestroy(exec));
}

namespace {

KvPoolOptions checked(const KvPoolOptions& po) {
    if (po.num_pages == 0 || po.page_size == 0) {
        throw Error(ErrorCode::InvalidArgument, fmt::format("cuda KV pool: {} pages of {} positions (both must be > 0)",
                                                            po.num_pages, po.page_size));
    }
    KvPoolOptions o = po;
    o.kv_type = KvCacheType::F16;  // the only cache type of the CUDA backend
    return o;
}

bool wants_logits(Want w) { return w == Want::Logits || w == Want::AllLogits; }

}  // namespace

CudaKvPool::CudaKvPool(device::Device& device, const CudaModel& m, const CudaOptions& options, const KvPoolOptions& po)
    : KvPool(checked(po), KvCache::page_bytes(*m.config, po.page_size == 0 ? 1 : po.page_size)),
      device_(device),
      m_(m),
      options_(options) {
    kv_ = device_.allocate(bytes(), "KV cache (f16 pool)");
}

CudaKvPool::~CudaKvPool() = default;

int64_t CudaKvPool::n_ctx() const {
    return std::min<int64_t>(m_.config->context_length, static_cast<int64_t>(num_pages()) * page_size());
}

KvCache CudaKvPool::view(const int32_t* pages) const {
    return KvCache{reinterpret_cast<uint16_t*>(kv_->data()), page_size(), n_ctx(), pages};
}

DeviceSampler& CudaKvPool::sampler() {
    if (!sampler_) sampler_ = std::make_unique<DeviceSampler>(device_, m_.config->n_vocab, stream_.s);
    return *sampler_;
}

DeviceTokenMask& CudaKvPool::token_mask() {
    // One slot per column of a decode group: every entry of a group may be constrained.
    if (!token_mask_) token_mask_ = std::make_unique<DeviceTokenMask>(device_, m_.config->n_vocab, kMaxColumns);
    return *token_mask_;
}

TokenId CudaKvPool::repaired_pick(std::span<const uint64_t> allowed, TokenId picked, const float* row) {
    if (allowed.empty()) return picked;
    return allowed_pick(picked, allowed, m_.config->n_vocab, [&] { return token_mask().argmax(row, stream_.s); });
}

// Pinned, so that a step's logits cross at the link's rate and asynchronously: a copy into pageable memory is staged by
// the driver through its own buffer, in pieces, and held up the decode of a single stream that wants its logits (the
// `tg` of `orcd bench`). Grown, never shrunk; the previous step's results point into it until this call.
float* CudaKvPool::logits_for(size_t n) {
    if (n == 0) return nullptr;
    if (n > logits_cap_) {
        logits_.reset();
        logits_cap_ = 0;
        const size_t cap = std::max(n, 2 * static_cast<size_t>(m_.config->n_vocab));
        logits_ = allocate_pinned_host<float>(cap * sizeof(float));
        logits_cap_ = cap;
    }
    return logits_.get();
}

// Buffers for the next power of two of columns (at most kMaxColumns): a growing batch reallocates a few times, and
// every graph captured over the old buffers is dropped with them.
void CudaKvPool::ensure_decode_buffers(int n_cols) {
    // staging_ is checked too: a failed pinned allocation below leaves act_ set, and the next step must retry.
    if (act_ && staging_ && dec_.max_cols >= n_cols) return;
    int cap = 1;
    while (cap < n_cols) cap *= 2;
    cap = std::min(cap, kMaxColumns);
    ORCD_CUDA_CHECK(cudaStreamSynchronize(stream_.s));
    for (Graph& g : graphs_) {
        if (g.exec) ORCD_CUDA_WARN(cudaGraphExecDestroy(g.exec));
        g.exec = nullptr;
    }
    act_.reset();
    staging_.reset();
    const int64_t pages_per_seq = (n_ctx() + page_size() - 1) / page_size();
    Carver cv;
    const bool persistent = options_.decode_kernel == DecodeKernel::Persistent;
    const DecodeBuffers::Layout layout =
        DecodeBuffers::plan(*m_.config, n_ctx(), cap, cap * pages_per_seq, cv, persistent);
    act_ = device_.allocate(cv.size, "activations (batched decode)");
    dec_ = DecodeBuffers::bind(*m_.config, layout, act_->data());
    if (persistent) upload_persistent_decode(m_, dec_, view(dec_.tables));
    staging_ = allocate_pinned_host<int32_t>(dec_.input_bytes() + cap * sizeof(int32_t));
}

void CudaKvPool::launch_decode(int n_cols) {
    const KvCache kv = view(dec_.tables);
    auto enqueue = [&] { enqueue_decode(m_, dec_, kv, n_cols, options_.activations, stream_.s); };
    Graph& graph = graphs_[static_cast<size_t>(n_cols)];
    if (graph.exec) {
        ORCD_CUDA_CHECK(cudaGraphLaunch(graph.exec, stream_.s));
    } else if (options_.use_graph && eager_steps_ > 0) {
        // Captured after an eager step, which initialized the kernels' one-time host state (device attributes,
        // occupancy queries, shared-memory limits) outside of any capture. Inputs live in dec_'s fixed buffers.
        ORCD_CUDA_CHECK(cudaStreamBeginCapture(stream_.s, cudaStreamCaptureModeThreadLocal));
        cudaGraph_t g = nullptr;
        try {
            enqueue();
        } catch (...) {
            cudaStreamEndCapture(stream_.s, &g);
            if (g) cudaGraphDestroy(g);
            throw;
        }
        ORCD_CUDA_CHECK(cudaStreamEndCapture(stream_.s, &g));
        const cudaError_t inst = cudaGraphInstantiate(&graph.exec, g, 0);
        ORCD_CUDA_WARN(cudaGraphDestroy(g));
        ORCD_CUDA_CHECK(inst);
        ORCD_CUDA_CHECK(cudaGraphLaunch(graph.exec, stream_.s));
    } else {
        enqueue();
        ++eager_steps_;
    }
}

void CudaKvPool::run_prefill(const BatchEntry& e, float* logits_out, BatchResult& r) {
    const model::Config& c = *m_.config;
    const size_t V = c.n_vocab;
    const int64_t pages_per_seq = (n_ctx() + page_size() - 1) / page_size();
    if (!prefill_table_) {
        // The page table, then one slot for the argmax of the last token.
        prefill_table_ =
            device_.allocate(static_cast<uint64_t>(pages_per_seq + 1) * sizeof(int32_t), "prefill page table");
    }
    if (!prefill_ws_) {
        const uint32_t ub = options_.prefill_ubatch ? options_.prefill_ubatch : prefill_ubatch();
        prefill_ws_ = std::make_unique<PrefillWorkspace>(device_, m_, ub, stream_.s);
    }
    const uint64_t end = static_cast<uint64_t>(e.first_position) + e.tokens.size();
    const uint64_t n_pages = (end + page_size() - 1) / page_size();
    auto* table = reinterpret_cast<int32_t*>(prefill_table_->data());
    static_assert(sizeof(uint32_t) == sizeof(int32_t));
    // Pageable source: staged before the call returns. Page ids are < num_pages <= INT32_MAX (checked by the caller).
    ORCD_CUDA_CHECK(
        cudaMemcpyAsync(table, e.pages.data(), n_pages * sizeof(int32_t), cudaMemcpyHostToDevice, stream_.s));
    KvCache kv = view(table);
    kv.n_ctx = static_cast<int64_t>(n_pages) * page_size();
    const bool pick = e.want == Want::Argmax || e.want == Want::Sample;
    const size_t ub = prefill_ws_->max_tokens();
    for (size_t i0 = 0; i0 < e.tokens.size(); i0 += ub) {
        const size_t n = std::min(ub, e.tokens.size() - i0);
        const bool final_chunk = i0 + n == e.tokens.size();
        float* all = e.want == Want::AllLogits ? logits_out + i0 * V : nullptr;
        // A pick reads the last token's row where it is, on the device: only Want::Logits copies it back.
        using Last = PrefillWorkspace::Last;
        const Last last = !final_chunk             ? Last::None
                          : e.want == Want::Logits ? Last::Host
                          : pick                   ? Last::Device
                                                   : Last::None;
        static_assert(sizeof(TokenId) == sizeof(int32_t));
        prefill_ws_->run(m_, kv, reinterpret_cast<const int32_t*>(e.tokens.data() + i0), static_cast<int64_t>(n),
                         e.first_position + static_cast<int64_t>(i0), all, last, logits_out);
    }
    float* row = prefill_ws_->last_logits_device();
    // A late mask resolves here, once the prefill is enqueued. Slot 0: the prefill's pick synchronizes the stream
    // below, before any other mask is staged.
    const std::span<const uint64_t> allowed = pick ? entry_mask(e, static_cast<uint32_t>(V)) : e.allowed;
    if (!allowed.empty()) token_mask().apply(row, allowed, 0, stream_.s);
    if (e.want == Want::Argmax) {
        int32_t id = -1;
        ops::argmax(row, static_cast<int64_t>(V), table + pages_per_seq, stream_.s);
        ORCD_CUDA_CHECK(cudaMemcpyAsync(&id, table + pages_per_seq, sizeof(id), cudaMemcpyDeviceToHost, stream_.s));
        ORCD_CUDA_CHECK(cudaStreamSynchronize(stream_.s));
        r.token = repaired_pick(allowed, id, row);
    } else if (e.want == Want::Sample) {
        r.token = repaired_pick(allowed, sampler().sample(row, e.sample, stream_.s), row);
    }
}

void CudaKvPool::run_decode(std::span<const BatchEntry> batch, const std::vector<Columns>& entries, int total_cols,
                            const std::vector<float*>& logits_out, std::span<BatchResult> results) {
    const model::Config& c = *m_.config;
    const size_t V = c.n_vocab;
    ensure_decode_buffers(std::min(total_cols, kMaxColumns));
    const int cap = dec_.max_cols;
    int32_t* tokens = staging_.get();
    int32_t* pos = tokens + cap;
    int32_t* table = tokens + 2 * cap;
    int32_t* tables = tokens + 3 * cap;
    int32_t* picked = reinterpret_cast<int32_t*>(reinterpret_cast<std::byte*>(tokens) + dec_.input_bytes());
    std::vector<std::span<const uint64_t>> masks(batch.size());  // each pick's mask, once resolved
    size_t ei = 0;                                               // the first entry with columns in the current group
    for (int g0 = 0; g0 < total_cols; g0 += cap) {
        const int g1 = std::min(total_cols, g0 + cap);
        const int n = g1 - g0;
        // Inputs of columns g0 .. g1: each entry's page table once, its columns pointing at it.
        int64_t used = 0;
        for (size_t k = ei; k < entries.size() && entries[k].first < g1; ++k) {
            const Columns& ec = entries[k];
            const BatchEntry& e = batch[ec.entry];
            const uint64_t end = static_cast<uint64_t>(e.first_position) + e.tokens.size();
            const int64_t n_pages = static_cast<int64_t>((end + page_size() - 1) / page_size());
            std::memcpy(tables + used, e.pages.data(), static_cast<size_t>(n_pages) * sizeof(int32_t));
            for (int j = std::max(ec.first, g0); j < std::min(ec.first + ec.count, g1); ++j) {
                const int t = j - ec.first;
                tokens[j - g0] = e.tokens[static_cast<size_t>(t)];
                pos[j - g0] = static_cast<int32_t>(e.first_position) + t;
                table[j - g0] = static_cast<int32_t>(used);
            }
            used += n_pages;
        }
        ORCD_CUDA_CHECK(cudaMemcpyAsync(dec_.inputs, staging_.get(), (3ull * cap + static_cast<uint64_t>(used)) * 4,
                                        cudaMemcpyHostToDevice, stream_.s));
        launch_decode(n);
        // Constrained picks: the mask on the entry's last row, then (Argmax) that row's argmax again over the one
        // the decode computed, before the ids are copied back. Unconstrained columns are left as they are. Each
        // constrained entry of the group has its own mask slot (at most one entry per column; the group ends with a
        // synchronization before the next group reuses them). Late masks resolve here, while the decode kernels
        // just enqueued run: their computation (on the engine's mask workers) overlaps the forward pass.
        int slot = 0;
        for (size_t k = ei; k < entries.size() && entries[k].first < g1; ++k) {
            const Columns& ec = entries[k];
            const BatchEntry& e = batch[ec.entry];
            const int last = ec.first + ec.count - 1;
            if (last >= g1 || (e.want != Want::Argmax && e.want != Want::Sample)) continue;
            masks[ec.entry] = entry_mask(e, static_cast<uint32_t>(V));
            if (masks[ec.entry].empty()) continue;
            float* row = dec_.logits + (last - g0) * dec_.s_logits;
            token_mask().apply(row, masks[ec.entry], slot++, stream_.s);
            if (e.want == Want::Argmax) ops::argmax(row, static_cast<int64_t>(V), dec_.argmax + (last - g0), stream_.s);
        }
        // Sampled entries whose columns end in this group: one sampler launch for all of them (after their masks),
        // each id written over its column's argmax, so that the one copy below brings every pick back.
        std::vector<DeviceSampler::Row> rows;
        for (size_t k = ei; k < entries.size() && entries[k].first < g1; ++k) {
            const Columns& ec = entries[k];
            const BatchEntry& e = batch[ec.entry];
            const int last = ec.first + ec.count - 1;
            if (last >= g1 || e.want != Want::Sample) continue;
            rows.push_back({dec_.logits + (last - g0) * dec_.s_logits, &e.sample, dec_.argmax + (last - g0)});
        }
        if (!rows.empty()) sampler().sample_rows(rows, stream_.s);
        ORCD_CUDA_CHECK(cudaMemcpyAsync(picked, dec_.argmax, static_cast<size_t>(n) * sizeof(int32_t),
                                        cudaMemcpyDeviceToHost, stream_.s));
        // Results of the entries whose columns end in this group; logits rows as they come.
        size_t k = ei;
        for (; k < entries.size() && entries[k].first < g1; ++k) {
            const Columns& ec = entries[k];
            const BatchEntry& e = batch[ec.entry];
            const int last = ec.first + ec.count - 1;
            if (e.want == Want::AllLogits) {
                for (int j = std::max(ec.first, g0); j < std::min(last + 1, g1); ++j) {
                    ORCD_CUDA_CHECK(cudaMemcpyAsync(logits_out[ec.entry] + static_cast<size_t>(j - ec.first) * V,
                                                    dec_.logits + (j - g0) * dec_.s_logits, V * sizeof(float),
                                                    cudaMemcpyDeviceToHost, stream_.s));
                }
            }
            if (last >= g1) break;  // continues in the next group
            if (e.want == Want::Logits) {
                ORCD_CUDA_CHECK(cudaMemcpyAsync(logits_out[ec.entry], dec_.logits + (last - g0) * dec_.s_logits,
                                                V * sizeof(float), cudaMemcpyDeviceToHost, stream_.s));
            }
        }
        ORCD_CUDA_CHECK(cudaStreamSynchronize(stream_.s));
        for (size_t j = ei; j < k; ++j) {
            const Columns& ec = entries[j];
            const int last = ec.first + ec.count - 1;
            const Want want = batch[ec.entry].want;
            if (want == Want::Argmax || want == Want::Sample) {
                results[ec.entry].token =
                    repaired_pick(masks[ec.entry], picked[last - g0], dec_.logits + (last - g0) * dec_.s_logits);
            }
        }
        ei = k;
    }
}

void CudaKvPool::step(std::span<const BatchEntry> batch, std::span<BatchResult> results) {
    const model::Config& c = *m_.config;
    const size_t V = c.n_vocab;
    for (size_t i = 0; i < batch.size(); ++i) {
        const BatchEntry& e = batch[i];
        if (e.want == Want::Sample) check_sample_step(e.sample);
        // The page-table buffers hold n_ctx() positions' pages per sequence (a table may name a page twice, so
        // covering the positions does not bound them).
        const uint64_t end = static_cast<uint64_t>(e.first_position) + e.tokens.size();
        if (end > static_cast<uint64_t>(n_ctx())) {
            throw Error(ErrorCode::InvalidArgument,
                        fmt::format("step: entry {}: position {} is past the {} positions a sequence can have in a "
                                    "pool of {} pages of {}",
                                    i, end - 1, n_ctx(), num_pages(), page_size()));
        }
    }
    const bool batched_prefill = options_.batched_prefill && prefill_supported(m_);
    // Every prompt token goes through the prefill, one of a chunk of one too: a prompt position's K/V and logits then
    // come from one path whatever the chunk (a cached prefix can leave a remainder of one token that a fresh run
    // computes inside a longer chunk), and generated positions from the decode columns, replays included.
    auto is_prefill = [&](const BatchEntry& e) { return e.phase == Phase::Prompt && batched_prefill; };
    // Host logits for every entry that wants them, sized before any span into them is taken.
    std::vector<size_t> at(batch.size());
    size_t total = 0;
    for (size_t i = 0; i < batch.size(); ++i) {
        at[i] = total;
        if (batch[i].want == Want::Logits) total += V;
        if (batch[i].want == Want::AllLogits) total += batch[i].tokens.size() * V;
    }
    float* host_logits = logits_for(total);
    std::vector<float*> logits_out(batch.size());
    for (size_t i = 0; i < batch.size(); ++i) {
        results[i] = BatchResult{};
        logits_out[i] = host_logits + at[i];
    }

    std::vector<Columns> columns;
    int total_cols = 0;
    for (size_t i = 0; i < batch.size(); ++i) {
        if (is_prefill(batch[i])) {
            run_prefill(batch[i], logits_out[i], results[i]);
        } else {
            const int n = static_cast<int>(batch[i].tokens.size());
            columns.push_back({i, total_cols, n});
            total_cols += n;
        }
    }
    if (total_cols > 0) run_decode(batch, columns, total_cols, logits_out, results);

    for (size_t i = 0; i < batch.size(); ++i) {
        if (!wants_logits(batch[i].want)) continue;
        const size_t n = batch[i].want == Want::AllLogits ? batch[i].tokens.size() * V : V;
        results[i].logits = std::span<const float>(logits_out[i], n);
    }
}

}  // namespace orcd::backend::cuda
