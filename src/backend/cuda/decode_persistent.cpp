// The persistent decode step's refusals (decode_persistent.h): what a model needs that the step does not run.
#include <fmt/format.h>

#include <utility>
#include <vector>

#include "backend/cuda/decode_persistent.h"
#include "backend/cuda/matvec_q8.h"

namespace orcd::backend::cuda {

namespace ops = ::orcd::cuda;

std::string persistent_decode_refusal(const CudaModel& m, Activations act) {
    if (act != Activations::Int8) return "the persistent decode step runs int8 activations only (found f32)";
    const model::Config& c = *m.config;
    // The recipe features of model/recipe.h it lacks (the CUDA backend as a whole lacks RoPE frequency factors).
    model::FeatureSet missing;
    bool any = false;
    for (const model::Feature f : {model::Feature::QkNorm, model::Feature::RopeFreqFactors}) {
        if (m.recipe->features().has(f)) {
            missing.add(f);
            any = true;
        }
    }
    if (any) return fmt::format("the persistent decode step does not implement {} ({})", missing.names(), c.arch_name);
    // The block that combines an attention head quantizes its output: whole 32-blocks.
    if (c.head_dim % ops::kQ8Block != 0) {
        return fmt::format("the persistent decode step needs a head dimension that is a multiple of {} (found {})",
                           ops::kQ8Block, c.head_dim);
    }
    // Every matrix through the chain's dp4a matvec.
    auto refusal = [](const Matmul& mm, const std::string& what) -> std::string {
        if (ops::q8_matvec_type_supported(mm.type) && mm.cols % ops::kQ8Block == 0) return {};
        return fmt::format("the persistent decode step has no int8 matvec for the {} matrix ({}, rows of {})", what,
                           gguf::type_name(mm.type), mm.cols);
    };
    std::string why = refusal(m.output, "output");
    for (size_t li = 0; li < m.layers.size() && why.empty(); ++li) {
        const Layer& l = m.layers[li];
        std::vector<std::pair<const Matmul*, const char*>> mats;
        for (const Matmul& mm : l.qkv) mats.emplace_back(&mm, "attention QKV");
        mats.emplace_back(&l.o, "attention output");
        for (const Matmul& mm : l.gate_up) mats.emplace_back(&mm, "feed-forward gate/up");
        mats.emplace_back(&l.down, "feed-forward down");
        for (const auto& [mm, what] : mats) {
            if (why.empty()) why = refusal(*mm, fmt::format("layer {} {}", li, what));
        }
    }
    if (why.empty() && persistent_decode_smem_bytes(c) > 48 * 1024) {
        why = fmt::format("the persistent decode step's attention needs {} B of shared memory (limit 48 KiB)",
                          persistent_decode_smem_bytes(c));
    }
    return why;
}

}  // namespace orcd::backend::cuda
