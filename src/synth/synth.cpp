#include "synth/synth.h"

#include <chrono>
#include <cmath>
#include <cstring>
#include <mutex>
#include <fmt/format.h>

#include "common/error.h"
#include "gguf/file.h"
#include "quant/convert.h"
#include "gguf/writer.h"

namespace orcd::synth {

namespace {

constexpr uint32_t kNoLayer = UINT32_MAX;

// splitmix64 to seed, xoshiro256+ to draw: fast, and the stream depends only on (seed, tensor index), so the file is
// the same whatever the thread count or scheduling.
uint64_t splitmix64(uint64_t& x) {
    uint64_t z = (x += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

class Rng {
public:
    explicit Rng(uint64_t seed) {
        for (uint64_t& w : s_) w = splitmix64(seed);
    }
    // Uniform in [-1, 1).
    float uniform() {
        const uint64_t r = s_[0] + s_[3];
        const uint64_t t = s_[1] << 17;
        s_[2] ^= s_[0];
        s_[3] ^= s_[1];
        s_[1] ^= s_[2];
        s_[0] ^= s_[3];
        s_[2] ^= t;
        s_[3] = (s_[3] << 45) | (s_[3] >> 19);
        return static_cast<float>(static_cast<int64_t>(r >> 40) - (int64_t{1} << 23)) * (1.0f / (1 << 23));
    }

private:
    uint64_t s_[4];
};

// Values are drawn so that activations stay in a realistic range: weights of std 1/sqrt(fan_in) (uniform of half-width
// sqrt(3/fan_in)), embeddings and the LM head of std 2/sqrt(n_embd) so that logits have a std of about 2, norm weights
// near 1, small biases.
struct Distribution {
    float center;
    float half_width;
};

Distribution distribution_for(const TensorPlan& t, uint32_t n_embd) {
    switch (t.role) {
        case Role::Norm: return {1.0f, 0.1f};
        case Role::Bias: return {0.0f, 0.1f};
        case Role::TokenEmbedding:
        case Role::Output: return {0.0f, std::sqrt(3.0f) * 2.0f / std::sqrt(static_cast<float>(n_embd))};
        default: return {0.0f, std::sqrt(3.0f / static_cast<float>(t.shape[0]))};
    }
}

void fill_tensor(const TensorPlan& t, Distribution dist, uint64_t seed, std::span<std::byte> out) {
    Rng rng(seed);
    const uint64_t row = t.shape[0];
    const uint64_t rows = [&] {
        uint64_t n = 1;
        for (size_t d = 1; d < t.shape.size(); ++d) n *= t.shape[d];
        return n;
    }();
    const uint64_t row_bytes = gguf::row_bytes(t.type, row);
    // Generate a few rows at a time: bounded scratch, and quantize_row sees whole rows.
    const uint64_t rows_per_batch = std::max<uint64_t>(1, (1u << 16) / row);
    std::vector<float> scratch(rows_per_batch * row);
    for (uint64_t r = 0; r < rows; r += rows_per_batch) {
        const uint64_t n_rows = std::min(rows_per_batch, rows - r);
        for (uint64_t i = 0; i < n_rows * row; ++i) scratch[i] = dist.center + dist.half_width * rng.uniform();
        quant::quantize_row(t.type, scratch.data(), out.data() + r * row_bytes, static_cast<int64_t>(n_rows * row));
    }
}

uint32_t vocab_size_of(const gguf::File& vocab) {
    const gguf::Array& tokens = vocab.get_array("tokenizer.ggml.tokens");
    return static_cast<uint32_t>(tokens.size);
}

}  // namespace

std::vector<TensorPlan> plan_tensors(const Preset& p, FileType type, uint32_t n_vocab) {
    const uint64_t e = p.n_embd, hd = p.head_dim(), q = p.n_head * hd, kv = p.n_head_kv * hd, ff = p.n_ff;
    std::vector<TensorPlan> out;
    auto add = [&](std::string name, std::vector<uint64_t> shape, Role role, uint32_t layer) {
        const gguf::TensorType t = choose_type(type, role, shape[0], p.tied_embeddings, layer, p.n_layer);
        out.push_back({std::move(name), std::move(shape), role, layer, t});
    };
    add("token_embd.weight", {e, n_vocab}, Role::TokenEmbedding, kNoLayer);
    for (uint32_t l = 0; l < p.n_layer; ++l) {
        const std::string b = fmt::format("blk.{}.", l);
        add(b + "attn_norm.weight", {e}, Role::Norm, l);
        if (p.architecture == "phi3") {
            add(b + "attn_qkv.weight", {e, q + 2 * kv}, Role::AttnQkv, l);
        } else {
            add(b + "attn_q.weight", {e, q}, Role::AttnQ, l);
            add(b + "attn_k.weight", {e, kv}, Role::AttnK, l);
            add(b + "attn_v.weight", {e, kv}, Role::AttnV, l);
            if (p.architecture == "qwen2") {
                add(b + "attn_q.bias", {q}, Role::Bias, l);
                add(b + "attn_k.bias", {kv}, Role::Bias, l);
                add(b + "attn_v.bias", {kv}, Role::Bias, l);
            }
            if (p.architecture == "qwen3") {
                add(b + "attn_q_norm.weight", {hd}, Role::Norm, l);
                add(b + "attn_k_norm.weight", {hd}, Role::Norm, l);
            }
        }
        add(b + "attn_output.weight", {q, e}, Role::AttnOutput, l);
        add(b + "ffn_norm.weight", {e}, Role::Norm, l);
        if (p.architecture == "phi3") {
            add(b + "ffn_up.weight", {e, 2 * ff}, Role::FfnUp, l);  // gate and up stacked, gate first
        } else {
            add(b + "ffn_gate.weight", {e, ff}, Role::FfnGate, l);
            add(b + "ffn_up.weight", {e, ff}, Role::FfnUp, l);
        }
        add(b + "ffn_down.weight", {ff, e}, Role::FfnDown, l);
    }
    add("output_norm.weight", {e}, Role::Norm, kNoLayer);
    if (!p.tied_embeddings) add("output.weight", {e, n_vocab}, Role::Output, kNoLayer);
    return out;
}

Summary write_model(const Options& o, const std::filesystem::path& output) {
    const auto start = std::chrono::steady_clock::now();
    Preset p = find_preset(o.preset);
    if (o.n_layer) {
        if (*o.n_layer == 0) throw Error(ErrorCode::InvalidArgument, "--layers must be at least 1");
        p.n_layer = *o.n_layer;
    }
    if (o.context_length) p.context_length = *o.context_length;

    gguf::Writer w;
    uint32_t n_vocab = 0;
    std::optional<gguf::File> vocab;
    if (!o.vocab.empty()) {
        vocab = gguf::File::open(o.vocab);
        n_vocab = vocab_size_of(*vocab);
    } else if (o.n_vocab) {
        n_vocab = *o.n_vocab;
    } else {
        throw Error(ErrorCode::InvalidArgument, "synth needs --vocab FILE (a vocab GGUF) or --n-vocab N");
    }
    if (n_vocab == 0) throw Error(ErrorCode::InvalidArgument, "vocabulary size must be at least 1");

    const std::string& a = p.architecture;
    w.set_string("general.architecture", a);
    w.set_string("general.name", p.model_name);
    w.set_u32("general.file_type", llama_ftype(o.type));
    w.set_u32("general.quantization_version", 2);
    w.set_string("orcd.synth.preset", p.name);
    w.set_u64("orcd.synth.seed", o.seed);
    w.set_u32(a + ".context_length", p.context_length);
    w.set_u32(a + ".embedding_length", p.n_embd);
    w.set_u32(a + ".block_count", p.n_layer);
    w.set_u32(a + ".feed_forward_length", p.n_ff);
    w.set_u32(a + ".attention.head_count", p.n_head);
    w.set_u32(a + ".attention.head_count_kv", p.n_head_kv);
    w.set_f32(a + ".attention.layer_norm_rms_epsilon", p.rms_eps);
    w.set_f32(a + ".rope.freq_base", p.rope_theta);
    w.set_u32(a + ".rope.dimension_count", p.head_dim());
    if (p.key_length) {
        w.set_u32(a + ".attention.key_length", p.key_length);
        w.set_u32(a + ".attention.value_length", p.key_length);
    }
    if (p.sliding_window) w.set_u32(a + ".attention.sliding_window", p.sliding_window);
    w.set_u32(a + ".vocab_size", n_vocab);
    if (a == "phi3") w.set_u32(a + ".rope.scaling.original_context_length", p.context_length);
    if (vocab) {
        for (const gguf::KeyValue& kv : vocab->metadata()) {
            if (kv.key.starts_with("tokenizer.")) w.set(std::string(kv.key), gguf::OwnedValue::from(kv.value));
        }
    }

    const std::vector<TensorPlan> tensors = plan_tensors(p, o.type, n_vocab);
    // Progress: the fills run on the writer's threads; the count and the callback are serialised.
    std::mutex progress_mutex;
    uint64_t bytes_done = 0, bytes_total = 0;
    for (const TensorPlan& t : tensors) {
        uint64_t rows = 1;
        for (size_t d = 1; d < t.shape.size(); ++d) rows *= t.shape[d];
        bytes_total += gguf::row_bytes(t.type, t.shape[0]) * rows;
    }
    for (size_t i = 0; i < tensors.size(); ++i) {
        const TensorPlan& t = tensors[i];
        const Distribution dist = distribution_for(t, p.n_embd);
        uint64_t mix = o.seed ^ (0x5851f42d4c957f2dull * (i + 1));
        const uint64_t tensor_seed = splitmix64(mix);
        w.add_tensor(t.name, t.type, t.shape, [&, dist, tensor_seed](std::span<std::byte> out) {
            fill_tensor(t, dist, tensor_seed, out);
            if (!o.progress) return;
            const std::lock_guard lock(progress_mutex);
            bytes_done += out.size();
            o.progress(bytes_done, bytes_total);
        });
    }
    w.write_file(output, o.threads);

    Summary s;
    s.path = output;
    s.bytes = w.total_size();
    s.n_tensors = tensors.size();
    s.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    return s;
}

}  // namespace orcd::synth
