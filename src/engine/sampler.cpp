#include "engine/sampler.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <unordered_set>

#include "common/error.h"

namespace orcd::engine {

void validate(const SamplingParams& p) {
    auto bad = [](const char* what, double v, const char* want) {
        throw Error(ErrorCode::InvalidArgument, fmt::format("{} = {} is out of range: expected {}", what, v, want));
    };
    if (!std::isfinite(p.temperature)) bad("temperature", p.temperature, "a finite number (0 = greedy)");
    if (!(p.top_p > 0.f && p.top_p <= 1.f)) bad("top_p", p.top_p, "0 < top_p <= 1");
    if (!(p.min_p >= 0.f && p.min_p <= 1.f)) bad("min_p", p.min_p, "0 <= min_p <= 1");
    if (!(p.repeat_penalty > 0.f) || !std::isfinite(p.repeat_penalty)) {
        bad("repeat_penalty", p.repeat_penalty, "a positive number (1 = off)");
    }
    if (p.repeat_last_n < -1) bad("repeat_last_n", p.repeat_last_n, ">= -1 (-1 = whole history, 0 = off)");
}

Sampler::Sampler(const SamplingParams& params) : p_(params) {
    validate(p_);
    if (p_.seed) {
        seed_ = *p_.seed;
    } else {
        std::random_device rd;
        seed_ = (static_cast<uint64_t>(rd()) << 32) ^ rd();
    }
    rng_.seed(seed_);
}

TokenId Sampler::sample(std::span<const float> logits, std::span<const TokenId> history) {
    const size_t n = logits.size();
    if (n == 0) throw Error(ErrorCode::InvalidArgument, "sampler: empty logits");
    work_.assign(logits.begin(), logits.end());

    if (p_.repeat_penalty != 1.f && p_.repeat_last_n != 0 && !history.empty()) {
        const size_t window = p_.repeat_last_n < 0 ? history.size()
                                                   : std::min(history.size(), static_cast<size_t>(p_.repeat_last_n));
        std::unordered_set<TokenId> seen(history.end() - static_cast<std::ptrdiff_t>(window), history.end());
        for (TokenId t : seen) {
            if (t < 0 || static_cast<size_t>(t) >= n) continue;
            float& l = work_[static_cast<size_t>(t)];
            l = l > 0.f ? l / p_.repeat_penalty : l * p_.repeat_penalty;
        }
    }

    if (p_.temperature <= 0.f) {
        // Greedy; ties go to the lowest id, so the choice is deterministic across platforms.
        return static_cast<TokenId>(std::max_element(work_.begin(), work_.end()) - work_.begin());
    }

    cand_.resize(n);
    for (size_t i = 0; i < n; ++i) cand_[i] = {work_[i], static_cast<TokenId>(i)};
    // Sorted by logit descending, ties by id ascending, so every filter below is deterministic.
    auto better = [](const auto& a, const auto& b) { return a.first > b.first || (a.first == b.first && a.second < b.second); };
    size_t keep = n;
    if (p_.top_k > 0 && static_cast<size_t>(p_.top_k) < n) {
        keep = static_cast<size_t>(p_.top_k);
        std::partial_sort(cand_.begin(), cand_.begin() + static_cast<std::ptrdiff_t>(keep), cand_.end(), better);
    } else {
        std::sort(cand_.begin(), cand_.end(), better);
    }
    cand_.resize(keep);

    // Probabilities of the survivors at temperature 1 (top-p and min-p act on the model's distribution).
    auto probs = [&](float temp) {
        std::vector<double> p(cand_.size());
        const double mx = cand_[0].first;
        double z = 0;
        for (size_t i = 0; i < cand_.size(); ++i) z += p[i] = std::exp((cand_[i].first - mx) / temp);
        for (double& v : p) v /= z;
        return p;
    };
    if (p_.top_p < 1.f) {
        const auto p = probs(1.f);
        double cum = 0;
        size_t k = 0;
        while (k < p.size()) {
            cum += p[k++];
            if (cum >= p_.top_p) break;
        }
        cand_.resize(k);
    }
    if (p_.min_p > 0.f) {
        const auto p = probs(1.f);
        size_t k = 1;
        while (k < p.size() && p[k] >= p_.min_p * p[0]) ++k;
        cand_.resize(k);
    }
    const auto p = probs(p_.temperature);
    // 53 random bits -> [0, 1).
    const double u = static_cast<double>(rng_() >> 11) * 0x1.0p-53;
    double cum = 0;
    for (size_t i = 0; i < p.size(); ++i) {
        cum += p[i];
        if (u < cum) return cand_[i].second;
    }
    return cand_.back().second;  // u within rounding of 1
}

}  // namespace orcd::engine
