#include "model/weights.h"

#include <algorithm>
#include <unordered_map>

#include <fmt/format.h>

#include "common/error.h"
#include "gguf/file.h"
#include "model/arch.h"

namespace orcd::model {

uint64_t TensorRef::rows() const {
    uint64_t r = 1;
    for (size_t i = 1; i < shape.size(); ++i) r *= shape[i];
    return r;
}

uint64_t ModelWeights::total_bytes() const {
    uint64_t sum = 0;
    for (const auto& t : tensors) sum += t.n_bytes;
    return sum;
}

namespace {

// GGUF stores exactly n_dims dimensions, but a writer may add trailing 1s; they do not change the layout.
std::vector<uint64_t> trimmed(std::vector<uint64_t> s) {
    while (s.size() > 1 && s.back() == 1) s.pop_back();
    return s;
}

struct Use {
    const gguf::TensorInfo* info;
    int32_t layer;
    TensorId LayerWeights::*layer_slot;
    TensorId ModelWeights::*model_slot;
};

class Resolver {
public:
    Resolver(const gguf::File& f, const Config& c) : f_(f), c_(c), desc_(arch_description(c.arch)) {}

    ModelWeights run() {
        ModelWeights w;
        w.layers.resize(c_.n_layers);
        std::vector<const TensorSpec*> ties;
        for (const auto& spec : desc_.tensors) {
            if (spec.per_layer()) continue;
            const gguf::TensorInfo* t = f_.find_tensor(spec.name);
            if (!t) {
                if (spec.need == Need::Required) missing(std::string(spec.name));
                if (spec.tie_to) ties.push_back(&spec);
                continue;
            }
            check(spec, *t, std::string(spec.name));
            uses_.push_back({t, -1, nullptr, spec.model_slot});
        }
        for (uint32_t l = 0; l < c_.n_layers; ++l) resolve_layer(l);
        assign_ids(w);
        for (const TensorSpec* spec : ties) {
            w.*(spec->model_slot) = w.*(spec->tie_to);
            if (spec->model_slot == &ModelWeights::output) w.output_tied = true;
        }
        return w;
    }

private:
    void resolve_layer(uint32_t l) {
        // Pick one variant per alternative group: the first (in table order) whose first spec is in the file.
        std::unordered_map<uint8_t, int> chosen;                      // group -> variant
        std::unordered_map<uint8_t, std::vector<std::string>> forms;  // group -> description of each variant
        for (const auto& spec : desc_.tensors) {
            if (!spec.per_layer() || spec.group == 0) continue;
            auto& list = forms[spec.group];
            if (list.size() <= spec.variant) {
                // first spec of this variant: its presence selects the variant
                list.resize(spec.variant + 1);
                const std::string name = tensor_name(spec, l);
                list[spec.variant] = name;
                if (!chosen.contains(spec.group) && f_.find_tensor(name)) chosen[spec.group] = spec.variant;
            } else {
                list[spec.variant] += " + " + tensor_name(spec, l);
            }
        }
        for (const auto& [group, list] : forms) {
            if (chosen.contains(group)) continue;
            std::string alternatives;
            for (const auto& form : list) {
                if (!alternatives.empty()) alternatives += " or ";
                alternatives += form;
            }
            throw Error(ErrorCode::MissingTensor,
                        fmt::format("{}: missing tensor: block {} of architecture {} needs {}", f_.path(), l,
                                    desc_.name, alternatives));
        }
        for (const auto& spec : desc_.tensors) {
            if (!spec.per_layer()) continue;
            if (spec.group != 0 && chosen.at(spec.group) != spec.variant) continue;
            const std::string name = tensor_name(spec, l);
            const gguf::TensorInfo* t = f_.find_tensor(name);
            if (!t) {
                if (spec.need == Need::Required) missing(name);
                continue;
            }
            check(spec, *t, name);
            uses_.push_back({t, static_cast<int32_t>(l), spec.layer_slot, nullptr});
        }
    }

    void check(const TensorSpec& spec, const gguf::TensorInfo& t, const std::string& name) const {
        const std::vector<uint64_t> expected = spec.shape(c_);
        if (trimmed(expected) != trimmed(t.shape)) {
            throw Error(ErrorCode::TensorShape,
                        fmt::format("{}: tensor {}: expected shape {} = {}, found {}", f_.path(), name, spec.shape_expr,
                                    gguf::shape_text(expected), gguf::shape_text(t.shape)));
        }
        if (!type_accepted(spec.types, t.type)) {
            throw Error(ErrorCode::UnsupportedTensorType,
                        fmt::format("{}: tensor {} has type {}, which is not supported for {}; accepted: {}", f_.path(),
                                    name, gguf::type_name(t.type),
                                    spec.types == TypeClass::Matrix ? "a weight matrix" : "a norm/bias vector",
                                    accepted_types_list(spec.types)));
        }
    }

    [[noreturn]] void missing(const std::string& name) const {
        throw Error(ErrorCode::MissingTensor,
                    fmt::format("{}: missing tensor {} (required by architecture {})", f_.path(), name, desc_.name));
    }

    // Ids follow file order so that the device arena mirrors the file and the transfer reads it sequentially.
    void assign_ids(ModelWeights& w) {
        std::vector<const gguf::TensorInfo*> infos;
        for (const auto& u : uses_) infos.push_back(u.info);
        std::sort(infos.begin(), infos.end(), [](auto* a, auto* b) { return a->file_offset < b->file_offset; });
        infos.erase(std::unique(infos.begin(), infos.end()), infos.end());
        std::unordered_map<const gguf::TensorInfo*, uint32_t> index;
        for (const auto* t : infos) {
            index[t] = static_cast<uint32_t>(w.tensors.size());
            TensorRef r;
            r.name = std::string(t->name);
            r.type = t->type;
            r.shape = t->shape;
            r.n_bytes = t->n_bytes;
            r.file_offset = t->file_offset;
            r.data = f_.tensor_data(*t);
            w.tensors.push_back(std::move(r));
        }
        for (const auto& u : uses_) {
            const TensorId id{index.at(u.info)};
            w.tensors[id.value].layer = u.layer;
            if (u.layer_slot) {
                w.layers[static_cast<size_t>(u.layer)].*(u.layer_slot) = id;
            } else {
                w.*(u.model_slot) = id;
            }
        }
        for (const auto& t : f_.tensors()) {
            if (!index.contains(&t)) w.ignored.emplace_back(t.name);
        }
    }

    const gguf::File& f_;
    const Config& c_;
    const ArchDescription& desc_;
    std::vector<Use> uses_;
};

}  // namespace

ModelWeights resolve_weights(const gguf::File& file, const Config& config) { return Resolver(file, config).run(); }

}  // namespace orcd::model
