#include "model/config.h"

#include <cmath>

#include <fmt/format.h>

#include "common/error.h"
#include "gguf/file.h"
#include "model/arch.h"
#include "model/hparams_check.h"

namespace orcd::model {

std::string_view rope_layout_name(RopeLayout layout) { return layout == RopeLayout::NeoX ? "neox" : "interleaved"; }

namespace {

// Reads `<arch>.<suffix>` as a positive u32, naming the key and the value when it is out of range.
uint32_t positive_u32(const gguf::File& f, const std::string& key, std::optional<uint64_t> fallback = std::nullopt) {
    std::optional<uint64_t> v = f.get_uint_opt(key);
    if (!v) {
        if (!fallback) (void)f.get_uint(key);  // throws MetadataMissing with the reader's wording
        v = fallback;
    }
    if (*v == 0 || *v > 0xFFFFFFFFull) {
        throw Error(ErrorCode::CorruptFile,
                    fmt::format("{}: metadata {} = {} is out of range: expected 1..4294967295", f.path(), key, *v));
    }
    return static_cast<uint32_t>(*v);
}

[[noreturn]] void inconsistent(const gguf::File& f, const std::string& what) {
    throw Error(ErrorCode::CorruptFile, fmt::format("{}: inconsistent hyperparameters: {}", f.path(), what));
}

}  // namespace

Config load_config(const gguf::File& f) {
    const std::string_view arch_name = f.get_string("general.architecture");
    const ArchDescription* desc = find_arch(arch_name);
    if (!desc) {
        throw Error(ErrorCode::UnsupportedArchitecture,
                    fmt::format("{}: architecture '{}' (general.architecture) is not supported; supported: {}",
                                f.path(), arch_name, supported_architectures()));
    }
    // Every value against its valid range (hparams_check.cpp's table) before any is used.
    require_valid_hparams(f);
    Config c;
    c.arch = desc->arch;
    c.arch_name = std::string(arch_name);
    c.rope_layout = desc->rope_layout;
    if (auto n = f.get_string_opt("general.name")) c.model_name = std::string(*n);

    const std::string p = c.arch_name + ".";
    c.n_layers = positive_u32(f, p + "block_count");
    c.n_embd = positive_u32(f, p + "embedding_length");
    c.n_ff = positive_u32(f, p + "feed_forward_length");
    c.n_heads = positive_u32(f, p + "attention.head_count");
    // llama.cpp's defaults for the optional keys: MHA, head_dim from the embedding, RoPE over the whole head.
    c.n_kv_heads = positive_u32(f, p + "attention.head_count_kv", c.n_heads);
    if (!f.has(p + "attention.key_length") && c.n_embd % c.n_heads != 0) {
        inconsistent(f, fmt::format("{}embedding_length = {} is not a multiple of {}attention.head_count = {} and "
                                    "{}attention.key_length is absent",
                                    p, c.n_embd, p, c.n_heads, p));
    }
    c.head_dim = positive_u32(f, p + "attention.key_length", c.n_embd / c.n_heads);
    if (auto vl = f.get_uint_opt(p + "attention.value_length"); vl && *vl != c.head_dim) {
        inconsistent(f, fmt::format("{}attention.value_length = {} differs from the key length {}; the engines "
                                    "require equal key and value head sizes",
                                    p, *vl, c.head_dim));
    }
    c.context_length = positive_u32(f, p + "context_length");
    c.rope_dim = positive_u32(f, p + "rope.dimension_count", c.head_dim);
    const double eps = f.get_float(p + "attention.layer_norm_rms_epsilon");
    const double theta = f.get_float_opt(p + "rope.freq_base").value_or(10000.0);
    if (auto sw = f.get_uint_opt(p + "attention.sliding_window"); sw && *sw > 0 && *sw <= 0xFFFFFFFFull) {
        c.sliding_window = static_cast<uint32_t>(*sw);
    }

    if (c.n_heads % c.n_kv_heads != 0) {
        inconsistent(f, fmt::format("{}attention.head_count = {} is not a multiple of {}attention.head_count_kv = {}",
                                    p, c.n_heads, p, c.n_kv_heads));
    }
    if (c.rope_dim > c.head_dim || c.rope_dim % 2 != 0) {
        inconsistent(f, fmt::format("{}rope.dimension_count = {}: expected an even number <= the head size {}", p,
                                    c.rope_dim, c.head_dim));
    }
    if (!(eps > 0.0 && eps < 1.0)) {
        inconsistent(f, fmt::format("{}attention.layer_norm_rms_epsilon = {}: expected 0 < eps < 1", p, eps));
    }
    if (!(theta > 0.0 && std::isfinite(theta))) {
        inconsistent(f, fmt::format("{}rope.freq_base = {}: expected a finite positive number", p, theta));
    }
    c.rms_eps = static_cast<float>(eps);
    c.rope_theta = static_cast<float>(theta);

    // The vocabulary size is the embedding's row count: the token list in the metadata may be padded differently.
    const gguf::TensorInfo* embd = f.find_tensor("token_embd.weight");
    if (!embd) {
        throw Error(ErrorCode::MissingTensor,
                    fmt::format("{}: missing tensor token_embd.weight (architecture {})", f.path(), c.arch_name));
    }
    if (embd->shape.size() != 2 || embd->shape[1] == 0 || embd->shape[1] > 0xFFFFFFFFull) {
        throw Error(ErrorCode::TensorShape,
                    fmt::format("{}: tensor token_embd.weight: expected shape [n_embd, n_vocab] (2 dimensions, "
                                "n_vocab < 2^32), found {}",
                                f.path(), gguf::shape_text(embd->shape)));
    }
    c.n_vocab = static_cast<uint32_t>(embd->shape[1]);
    return c;
}

}  // namespace orcd::model
