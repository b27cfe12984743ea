#include "gguf/file_type.h"

#include <algorithm>
#include <fmt/format.h>
#include <vector>

#include "common/join.h"

namespace orcd::gguf {

std::optional<std::string> file_type_name(uint64_t ftype) {
    switch (ftype) {
        case 0: return "F32";
        case 1: return "F16";
        case 2: return "Q4_0";
        case 3: return "Q4_1";
        case 7: return "Q8_0";
        case 8: return "Q5_0";
        case 9: return "Q5_1";
        case 10: return "Q2_K";
        case 11: return "Q3_K_S";
        case 12: return "Q3_K_M";
        case 13: return "Q3_K_L";
        case 14: return "Q4_K_S";
        case 15: return "Q4_K_M";
        case 16: return "Q5_K_S";
        case 17: return "Q5_K_M";
        case 18: return "Q6_K";
        case 32: return "BF16";
        default: return std::nullopt;
    }
}

TypeMix type_mix(const File& f) {
    TypeMix m;
    for (const TensorInfo& t : f.tensors()) {
        m.bytes_by_type[t.type] += t.n_bytes;
        m.total_bytes += t.n_bytes;
    }
    if (const Value* v = f.find("general.file_type"); v != nullptr && v->is_integer()) {
        const uint64_t raw = v->u ? v->u : static_cast<uint64_t>(std::max<int64_t>(v->i, 0));
        if (auto name = file_type_name(raw)) m.declared = *name;
    }
    std::vector<std::pair<TensorType, uint64_t>> sorted(m.bytes_by_type.begin(), m.bytes_by_type.end());
    std::stable_sort(sorted.begin(), sorted.end(), [](auto& a, auto& b) { return a.second > b.second; });
    m.mix = join(sorted, ", ", [&](const std::pair<TensorType, uint64_t>& entry) {
        const auto& [type, bytes] = entry;
        const double pct = m.total_bytes ? 100.0 * static_cast<double>(bytes) / static_cast<double>(m.total_bytes) : 0;
        return pct < 1.0 ? fmt::format("{} <1%", type_name(type)) : fmt::format("{} {:.0f}%", type_name(type), pct);
    });
    return m;
}

std::string TypeMix::kind() const {
    if (!declared.empty()) return declared;
    TensorType best = TensorType::F32;
    uint64_t best_bytes = 0;
    for (const auto& [type, bytes] : bytes_by_type) {
        if (bytes > best_bytes) {
            best = type;
            best_bytes = bytes;
        }
    }
    return best_bytes ? std::string(type_name(best)) : "none";
}

std::string TypeMix::summary() const {
    if (total_bytes == 0) return "no tensors";
    return fmt::format("{}-like: {}", kind(), mix);
}

}  // namespace orcd::gguf
