// `orcd inspect MODEL.gguf [--json]`: what a GGUF file holds — architecture, hyperparameters, tokenizer summary,
// tensor table, bytes per type, the quantization mix and any hyperparameter outside its valid range (listed, not
// refused, so that a broken file can still be examined). Every string from the file is printed through
// escape_control in the human output: metadata cannot drive the terminal.
#include <cstdio>
#include <fmt/format.h>
#include <nlohmann/json.hpp>
#include <string>

#include "cli/commands.h"
#include "cli/options.h"
#include "common/escape.h"
#include "common/join.h"
#include "gguf/file.h"
#include "gguf/file_type.h"
#include "model/hparams_check.h"

namespace orcd::cli {

namespace {

using gguf::ValueType;

nlohmann::json scalar_json(const gguf::Value& v) {
    switch (v.type) {
        case ValueType::U8:
        case ValueType::U16:
        case ValueType::U32:
        case ValueType::U64: return v.u;
        case ValueType::I8:
        case ValueType::I16:
        case ValueType::I32:
        case ValueType::I64: return v.i;
        case ValueType::F32:
        case ValueType::F64: return v.f;
        case ValueType::Bool: return v.u != 0;
        case ValueType::String: return std::string(v.str);
        case ValueType::Array:
            return {{"type", "array"},
                    {"element_type", std::string(gguf::value_type_name(v.arr.elem_type))},
                    {"length", v.arr.size}};
    }
    return nullptr;
}

std::string scalar_text(const gguf::Value& v) {
    if (v.type == ValueType::String) {
        return fmt::format("\"{}\"{}", escape_control(v.str.substr(0, 80)),
                           v.str.size() > 80 ? fmt::format("... ({} bytes)", v.str.size()) : "");
    }
    if (v.type == ValueType::Array) {
        return fmt::format("[{} x {}]", v.arr.size, gguf::value_type_name(v.arr.elem_type));
    }
    return scalar_json(v).dump();
}

// "896 x 151936": the listing's form of a shape (error messages use gguf::shape_text's "[896, 151936]").
std::string dims_text(const std::vector<uint64_t>& shape) {
    return join(shape, " x ", [](uint64_t d) { return std::to_string(d); });
}

std::string tokenizer_summary(const gguf::File& f) {
    auto model = f.get_string_opt("tokenizer.ggml.model");
    if (!model) return "none";
    std::string s = fmt::format("model={}", *model);
    if (auto pre = f.get_string_opt("tokenizer.ggml.pre")) s += fmt::format(" pre={}", *pre);
    if (const gguf::Array* tokens = f.get_array_opt("tokenizer.ggml.tokens"))
        s += fmt::format(" vocab={}", tokens->size);
    for (const char* id : {"bos", "eos", "eot", "pad", "unknown"}) {
        if (auto v = f.get_uint_opt(fmt::format("tokenizer.ggml.{}_token_id", id))) s += fmt::format(" {}={}", id, *v);
    }
    if (f.has("tokenizer.chat_template")) s += " chat_template=yes";
    return escape_control(s);
}

// The hyperparameter violations; the file is shown either way.
std::vector<model::HparamViolation> violations(const gguf::File& f) { return model::check_hparams(f); }

void print_text(const gguf::File& f) {
    const auto arch = f.get_string_opt("general.architecture");
    fmt::print("file:          {}\n", escape_control(f.path()));
    fmt::print("gguf:          v{}, {} bytes, alignment {}, data at byte {}\n", f.version(), f.size(), f.alignment(),
               f.data_offset());
    fmt::print("architecture:  {}\n", arch ? escape_control(*arch) : "(none)");
    fmt::print("name:          {}\n", escape_control(f.get_string_opt("general.name").value_or("(none)")));
    if (arch) {
        fmt::print("hyperparameters:\n");
        const std::string prefix = std::string(*arch) + ".";
        for (const gguf::KeyValue& kv : f.metadata()) {
            if (kv.key.starts_with(prefix)) fmt::print("  {:<40} {}\n", escape_control(kv.key), scalar_text(kv.value));
        }
        const auto bad = violations(f);
        if (!bad.empty()) {
            fmt::print("INVALID hyperparameters ({}; the engines refuse this file):\n", bad.size());
            for (const auto& v : bad) fmt::print("  {}\n", escape_control(v.message()));
        }
    }
    fmt::print("tokenizer:     {}\n", tokenizer_summary(f));
    fmt::print("metadata:      {} keys\n", f.metadata().size());
    for (const gguf::KeyValue& kv : f.metadata()) {
        if (arch && kv.key.starts_with(std::string(*arch) + ".")) continue;
        fmt::print("  {:<40} {:<7} {}\n", escape_control(kv.key), gguf::value_type_name(kv.value.type),
                   scalar_text(kv.value));
    }
    fmt::print("tensors:       {}\n", f.tensors().size());
    if (!f.tensors().empty()) {
        fmt::print("  {:<36} {:<6} {:>24} {:>14} {:>14}\n", "name", "type", "shape", "bytes", "offset");
        for (const gguf::TensorInfo& t : f.tensors()) {
            fmt::print("  {:<36} {:<6} {:>24} {:>14} {:>14}\n", escape_control(t.name), gguf::type_name(t.type),
                       dims_text(t.shape), t.n_bytes, t.file_offset);
        }
    }
    const gguf::TypeMix mix = gguf::type_mix(f);
    fmt::print("bytes by type:\n");
    for (const auto& [type, bytes] : mix.bytes_by_type) {
        fmt::print("  {:<6} {:>14} ({:.2f} MiB)\n", gguf::type_name(type), bytes,
                   static_cast<double>(bytes) / (1 << 20));
    }
    fmt::print("total tensor bytes: {} ({:.2f} MiB)\n", mix.total_bytes,
               static_cast<double>(mix.total_bytes) / (1 << 20));
    fmt::print("quantization:  {}\n", mix.summary());
}

void print_json(const gguf::File& f) {
    nlohmann::json j;
    j["path"] = f.path();
    j["version"] = f.version();
    j["file_size"] = f.size();
    j["alignment"] = f.alignment();
    j["data_offset"] = f.data_offset();
    const auto arch = f.get_string_opt("general.architecture");
    j["architecture"] = arch ? nlohmann::json(std::string(*arch)) : nlohmann::json(nullptr);
    nlohmann::json meta = nlohmann::json::object();
    for (const gguf::KeyValue& kv : f.metadata()) meta[std::string(kv.key)] = scalar_json(kv.value);
    j["metadata"] = std::move(meta);
    nlohmann::json tensors = nlohmann::json::array();
    for (const gguf::TensorInfo& t : f.tensors()) {
        tensors.push_back({{"name", std::string(t.name)},
                           {"type", std::string(gguf::type_name(t.type))},
                           {"shape", t.shape},
                           {"bytes", t.n_bytes},
                           {"offset", t.file_offset}});
    }
    j["tensors"] = std::move(tensors);
    nlohmann::json bad = nlohmann::json::array();
    for (const auto& v : violations(f)) {
        bad.push_back({{"key", v.key}, {"value", v.value}, {"expected", v.expected}, {"reason", v.reason}});
    }
    j["hyperparameter_violations"] = std::move(bad);
    const gguf::TypeMix mix = gguf::type_mix(f);
    nlohmann::json by_type = nlohmann::json::object();
    for (const auto& [type, bytes] : mix.bytes_by_type) by_type[std::string(gguf::type_name(type))] = bytes;
    j["bytes_by_type"] = std::move(by_type);
    j["total_tensor_bytes"] = mix.total_bytes;
    j["quantization"] = mix.total_bytes ? nlohmann::json(mix.summary()) : nlohmann::json(nullptr);
    fmt::print("{}\n", j.dump(2, ' ', false, nlohmann::json::error_handler_t::replace));
}

}  // namespace

void add_inspect(CLI::App& app) {
    auto* cmd = app.add_subcommand("inspect", "Show what a GGUF file holds: metadata, tensors, quantization mix");
    auto path = std::make_shared<std::string>();
    auto json = std::make_shared<bool>(false);
    add_model_option_or_positional(cmd, *path, "GGUF file");
    cmd->add_flag("--json", *json, "Print one JSON document");
    cmd->callback([path, json] {
        require_model(*path);
        const gguf::File f = gguf::File::open(*path);
        if (*json)
            print_json(f);
        else
            print_text(f);
    });
}

}  // namespace orcd::cli
