#include "loader/plan.h"

#include <algorithm>

#include <fmt/format.h>

#include "common/error.h"

namespace orcd::loader {

namespace {

// Checked arithmetic: sizes derive from file metadata, so a hostile file must not wrap them around.
struct Checked {
    const std::string& path;
    uint64_t mul(std::initializer_list<uint64_t> xs, const char* what) const {
        uint64_t r = 1;
        for (uint64_t x : xs) {
            if (__builtin_mul_overflow(r, x, &r)) overflow(what);
        }
        return r;
    }
    uint64_t add(uint64_t a, uint64_t b, const char* what) const {
        uint64_t r;
        if (__builtin_add_overflow(a, b, &r)) overflow(what);
        return r;
    }
    [[noreturn]] void overflow(const char* what) const {
        throw Error(ErrorCode::CorruptFile, fmt::format("{}: the {} size overflows 64 bits", path, what));
    }
};

uint64_t align_up(uint64_t v, uint64_t a) { return (v + a - 1) / a * a; }

constexpr uint64_t kScratchBytes = 64ull << 20;  // cuBLAS workspace (32 MiB on Hopper) + small reductions
constexpr uint64_t kAttentionSplits = 16;

}  // namespace

Plan make_plan(const model::Model& m, const PlanOptions& o) {
    const model::Config& c = m.config;
    const std::string& path = m.file->path();
    const Checked ck{path};
    Plan p;
    p.n_ctx = o.n_ctx == 0 ? c.context_length : o.n_ctx;
    if (p.n_ctx > c.context_length) {
        throw Error(ErrorCode::InvalidArgument,
                    fmt::format("{}: requested context of {} tokens exceeds the model's context_length {} "
                                "({}.context_length)",
                                path, p.n_ctx, c.context_length, c.arch_name));
    }
    if (o.n_batch == 0) throw Error(ErrorCode::InvalidArgument, "plan: n_batch must be at least 1");
    p.n_batch = std::min(o.n_batch, p.n_ctx);

    // Tensors in id order, which is file order: the arena mirrors the file so the transfer reads sequentially.
    uint64_t off = 0;
    p.tensors.reserve(m.weights.tensors.size());
    for (const auto& t : m.weights.tensors) {
        off = align_up(off, kTensorAlignment);
        p.tensors.push_back({off, t.n_bytes});
        off = ck.add(off, t.n_bytes, "weight arena");
        p.tensor_bytes += t.n_bytes;
    }
    p.weight_bytes = align_up(off, kTensorAlignment);

    p.kv_bytes = ck.mul({2, c.n_layers, p.n_ctx, c.kv_dim(), 2}, "KV cache");  // K and V, f16

    const uint64_t b = p.n_batch;
    const uint64_t per_token = 2ull * c.n_embd + 2ull * c.q_dim() + 2ull * c.kv_dim() + 2ull * c.n_ff;
    p.workspace.activations = ck.mul({b, per_token, 4}, "activation workspace");
    p.workspace.attention =
        ck.mul({b, c.n_heads, uint64_t{c.head_dim} + 2, kAttentionSplits, 4}, "attention workspace");
    p.workspace.logits = ck.mul({b, c.n_vocab, 4}, "logits workspace");
    p.workspace.scratch = kScratchBytes;

    p.total_bytes = ck.add(ck.add(p.weight_bytes, p.kv_bytes, "plan"), p.workspace.total(), "plan");
    return p;
}

std::string format_bytes(uint64_t bytes) {
    constexpr double kKi = 1024.0;
    const double v = static_cast<double>(bytes);
    if (v >= kKi * kKi * kKi) return fmt::format("{:.2f} GiB", v / (kKi * kKi * kKi));
    if (v >= kKi * kKi) return fmt::format("{:.1f} MiB", v / (kKi * kKi));
    if (v >= kKi) return fmt::format("{:.1f} KiB", v / kKi);
    return fmt::format("{} B", bytes);
}

void check_fit(const Plan& plan, const device::DeviceInfo& dev, std::optional<uint64_t> vram_limit,
               const std::string& model_path) {
    uint64_t available = dev.free_bytes;
    if (vram_limit) available = std::min(available, *vram_limit);
    if (plan.total_bytes <= available) return;
    std::string limit;
    if (vram_limit) limit = fmt::format(", --vram-limit {} bytes", *vram_limit);
    throw Error(
        ErrorCode::InsufficientVram,
        fmt::format("{}: needs {} bytes ({}: weights {}, KV cache {} for {} tokens, workspace {}) but {} {} "
                    "({}) has {} bytes ({}) available (free {} of {} bytes{})",
                    model_path, plan.total_bytes, format_bytes(plan.total_bytes), plan.weight_bytes, plan.kv_bytes,
                    plan.n_ctx, plan.workspace.total(), dev.kind == "cuda" ? "GPU" : "device", dev.index, dev.name,
                    available, format_bytes(available), dev.free_bytes, dev.total_bytes, limit));
}

std::string format_plan(const Plan& p, const model::Model& m, bool per_tensor) {
    const model::Config& c = m.config;
    std::string out;
    out += fmt::format("model     {} ({}, {} layers, n_embd {}, n_ff {}, heads {}/{} kv, head_dim {}, vocab {})\n",
                       m.file->path(), c.arch_name, c.n_layers, c.n_embd, c.n_ff, c.n_heads, c.n_kv_heads, c.head_dim,
                       c.n_vocab);
    out += fmt::format("rope      {} layout, theta {}, {} dims; rms eps {}; trained context {}\n",
                       model::rope_layout_name(c.rope_layout), c.rope_theta, c.rope_dim, c.rms_eps, c.context_length);
    out += fmt::format("tensors   {} used{}{}\n", m.weights.tensors.size(),
                       m.weights.output_tied ? ", output tied to token_embd" : "",
                       m.weights.ignored.empty() ? "" : fmt::format(", {} ignored", m.weights.ignored.size()));
    out += fmt::format("weights   {:>14} bytes  {:>10}  ({} of tensor data + {} alignment padding)\n", p.weight_bytes,
                       format_bytes(p.weight_bytes), p.tensor_bytes, p.weight_bytes - p.tensor_bytes);
    out += fmt::format("kv cache  {:>14} bytes  {:>10}  (f16, {} tokens)\n", p.kv_bytes, format_bytes(p.kv_bytes),
                       p.n_ctx);
    out += fmt::format(
        "workspace {:>14} bytes  {:>10}  (batch {}: activations {}, attention {}, logits {}, "
        "scratch {})\n",
        p.workspace.total(), format_bytes(p.workspace.total()), p.n_batch, p.workspace.activations,
        p.workspace.attention, p.workspace.logits, p.workspace.scratch);
    out += fmt::format("total     {:>14} bytes  {:>10}\n", p.total_bytes, format_bytes(p.total_bytes));
    if (per_tensor) {
        out += fmt::format("  {:>12}  {:>12}  {:<6} {:<14} {}\n", "arena offset", "bytes", "type", "shape", "tensor");
        for (size_t i = 0; i < p.tensors.size(); ++i) {
            const auto& t = m.weights.tensors[i];
            std::string shape;
            for (auto d : t.shape) {
                if (!shape.empty()) shape += 'x';
                shape += std::to_string(d);
            }
            out += fmt::format("  {:>12}  {:>12}  {:<6} {:<14} {}\n", p.tensors[i].offset, p.tensors[i].bytes,
                               gguf::type_name(t.type), shape, t.name);
        }
    }
    for (const auto& name : m.weights.ignored)
        out += fmt::format("  ignored: {} (not used by {})\n", name, c.arch_name);
    return out;
}

}  // namespace orcd::loader
