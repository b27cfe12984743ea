#include "model/hparams_check.h"

#include <array>
#include <charconv>
#include <cmath>
#include <optional>

#include <fmt/format.h>

#include "common/error.h"
#include "gguf/file.h"
#include "model/arch.h"

namespace orcd::model {

namespace {

using K = HparamKind;

// The limits are far outside every released model's values and inside what the engines can represent: counts stay
// small enough that products such as n_heads * head_dim and per-layer tables fit comfortably in 32 bits, and floats
// must survive the conversion to f32 as normal, finite numbers (an f64 1e300 would become inf, 1e-50 would become 0).
// clang-format off
constexpr std::array kRules = {
    HparamRule{"block_count",                       K::UInt,  true,  1, 4096,
               "number of transformer layers; released models have at most a few hundred"},
    HparamRule{"embedding_length",                  K::UInt,  true,  1, 1 << 20,
               "width of the residual stream; every activation buffer is sized by it"},
    HparamRule{"feed_forward_length",               K::UInt,  true,  1, 1 << 22,
               "width of the MLP's hidden layer; sizes the largest activation buffer"},
    HparamRule{"attention.head_count",              K::UInt,  true,  1, 4096,
               "query heads; must divide the queries into whole heads"},
    HparamRule{"attention.head_count_kv",           K::UInt,  false, 1, 4096,
               "key/value heads; each serves a whole group of query heads"},
    HparamRule{"attention.key_length",              K::UInt,  false, 1, 4096,
               "size of one attention head; the attention kernels keep a head in fast memory"},
    HparamRule{"attention.value_length",            K::UInt,  false, 1, 4096,
               "size of one value head; the engines require it equal to the key length"},
    HparamRule{"context_length",                    K::UInt,  true,  1, 1 << 24,
               "trained context; 0 leaves no room for a token and more than 16M positions is no real model"},
    HparamRule{"rope.dimension_count",              K::UInt,  false, 2, 4096,
               "rotated dimensions per head: pairs of dimensions, at most the head size"},
    HparamRule{"attention.sliding_window",          K::UInt,  false, 0, 1 << 24,
               "attention window in positions (0: none); never longer than a plausible context"},
    HparamRule{"attention.layer_norm_rms_epsilon",  K::Float, true,  1e-20, 0.5,
               "added to the mean square before the reciprocal square root: must stay a positive normal f32, and "
               "small against the mean square"},
    HparamRule{"rope.freq_base",                    K::Float, false, 1, 1e12,
               "RoPE base: a finite f32 above 1, so that the rotation frequencies fall with the dimension"},
};
// clang-format on

std::string range_text(const HparamRule& r) {
    if (r.kind == K::UInt) return fmt::format("an integer in {}..{}", r.min, r.max);
    return fmt::format("a number in [{}, {}]", r.min, r.max);
}

// A metadata value as a number, with the text it is printed as. nullopt: not a number (wrong type).
struct Number {
    double value;
    std::string text;
    bool integer;
};

std::optional<Number> as_number(const gguf::Value& v) {
    using gguf::ValueType;
    switch (v.type) {
        case ValueType::U8:
        case ValueType::U16:
        case ValueType::U32:
        case ValueType::U64: return Number{static_cast<double>(v.u), std::to_string(v.u), true};
        case ValueType::I8:
        case ValueType::I16:
        case ValueType::I32:
        case ValueType::I64: return Number{static_cast<double>(v.i), std::to_string(v.i), true};
        case ValueType::F32:
        case ValueType::F64: return Number{v.f, fmt::format("{}", v.f), false};
        default: return std::nullopt;
    }
}

// The layer index of a per-layer tensor name ("blk.12.attn_q.weight" -> 12); nullopt for other names.
std::optional<uint64_t> block_index(std::string_view name) {
    constexpr std::string_view kPrefix = "blk.";
    if (!name.starts_with(kPrefix)) return std::nullopt;
    const char* first = name.data() + kPrefix.size();
    const char* last = name.data() + name.size();
    uint64_t n = 0;
    const auto [end, ec] = std::from_chars(first, last, n);
    if (ec != std::errc() || end == first || end == last || *end != '.') return std::nullopt;
    return n;
}

}  // namespace

std::span<const HparamRule> hparam_rules() { return kRules; }

std::string HparamViolation::message() const {
    return fmt::format("{} = {}: expected {} ({})", key, value, expected, reason);
}

std::vector<HparamViolation> check_hparams(const gguf::File& f) {
    std::vector<HparamViolation> out;
    const auto arch_name = f.get_string_opt("general.architecture");
    if (!arch_name || !find_arch(*arch_name)) return out;
    const std::string p = std::string(*arch_name) + ".";

    // Valid values by suffix, for the cross-key rules (absent or invalid: nullopt, and the rules that need it wait).
    auto valid = [&](std::string_view suffix) -> std::optional<uint64_t> {
        const gguf::Value* v = f.find(p + std::string(suffix));
        if (!v) return std::nullopt;
        const auto n = as_number(*v);
        for (const auto& r : kRules) {
            if (r.suffix == suffix && n && n->integer && n->value >= r.min && n->value <= r.max) {
                return static_cast<uint64_t>(n->value);
            }
        }
        return std::nullopt;
    };

    for (const HparamRule& r : kRules) {
        const std::string key = p + std::string(r.suffix);
        const gguf::Value* v = f.find(key);
        if (!v) continue;  // a missing required key is the reader's error (MetadataMissing)
        const auto n = as_number(*v);
        if (!n || (r.kind == K::UInt && !n->integer)) {
            const auto type = gguf::value_type_name(v->type);
            out.push_back({key, n ? fmt::format("{} ({})", n->text, type) : fmt::format("<{}>", type), range_text(r),
                           std::string(r.reason), /*wrong_type=*/true});
            continue;
        }
        bool ok = n->value >= r.min && n->value <= r.max;  // false for NaN
        if (ok && r.kind == K::Float) {
            // The engines read f32: the converted value must stay a normal, finite number inside the range.
            const float f32 = static_cast<float>(n->value);
            ok = std::isnormal(f32) && f32 >= static_cast<float>(r.min) && f32 <= static_cast<float>(r.max);
        }
        if (!ok) out.push_back({key, n->text, range_text(r), std::string(r.reason)});
    }

    const auto heads = valid("attention.head_count");
    const auto kv_heads = valid("attention.head_count_kv");
    const auto embd = valid("embedding_length");
    const auto key_len = valid("attention.key_length");
    if (heads && kv_heads && *heads % *kv_heads != 0) {
        out.push_back({p + "attention.head_count_kv", std::to_string(*kv_heads),
                       fmt::format("a divisor of {}attention.head_count = {}", p, *heads),
                       "each key/value head serves a whole group of query heads"});
    }
    std::optional<uint64_t> head_dim = key_len;
    if (!f.has(p + "attention.key_length") && heads && embd) {
        if (*embd % *heads != 0) {
            out.push_back(
                {p + "attention.head_count", std::to_string(*heads),
                 fmt::format("a divisor of {}embedding_length = {} ({}attention.key_length is absent)", p, *embd, p),
                 "without a key length the head size is embedding_length / head_count"});
        } else {
            head_dim = *embd / *heads;
        }
    }
    if (const auto vl = valid("attention.value_length"); vl && head_dim && *vl != *head_dim) {
        out.push_back({p + "attention.value_length", std::to_string(*vl), fmt::format("the key length {}", *head_dim),
                       "the engines require equal key and value heads"});
    }
    if (const auto rd = valid("rope.dimension_count"); rd && head_dim && (*rd % 2 != 0 || *rd > *head_dim)) {
        out.push_back({p + "rope.dimension_count", std::to_string(*rd),
                       fmt::format("an even number <= the head size {}", *head_dim),
                       "RoPE rotates pairs of dimensions within one head"});
    }

    // Per-layer tensors beyond block_count: a file that lies about its depth would otherwise run fewer layers.
    if (const auto layers = valid("block_count")) {
        constexpr size_t kNamed = 16;
        std::vector<std::string_view> unused;
        size_t count = 0;
        for (const auto& t : f.tensors()) {
            const auto b = block_index(t.name);
            if (!b || *b < *layers) continue;
            if (unused.size() < kNamed) unused.push_back(t.name);
            ++count;
        }
        if (count > 0) {
            std::string names;
            for (auto n : unused) names += (names.empty() ? "" : ", ") + std::string(n);
            if (count > unused.size()) names += fmt::format(" and {} more", count - unused.size());
            out.push_back(
                {p + "block_count", std::to_string(*layers),
                 fmt::format("a layer for every blk.N tensor; {} tensor(s) are used by no layer: {}", count, names),
                 "tensors beyond block_count would be silently ignored, running a different model"});
        }
    }
    return out;
}

void require_valid_hparams(const gguf::File& f) {
    const auto violations = check_hparams(f);
    if (violations.empty()) return;
    std::string all;
    bool wrong_type = false;
    for (const auto& v : violations) {
        all += (all.empty() ? "" : "; ") + v.message();
        wrong_type = wrong_type || v.wrong_type;
    }
    throw Error(wrong_type ? ErrorCode::MetadataType : ErrorCode::CorruptFile,
                fmt::format("{}: invalid hyperparameters: {}", f.path(), all));
}

}  // namespace orcd::model
