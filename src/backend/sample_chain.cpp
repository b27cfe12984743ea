#include "backend/sample_chain.h"

#include <algorithm>
#include <cmath>
#include <unordered_set>

#include "common/error.h"

namespace orcd::backend {

TokenId sample_on_host(std::span<const float> logits, const SampleStep& s, SampleScratch& scratch) {
    const size_t n = logits.size();
    if (n == 0) throw Error(ErrorCode::InvalidArgument, "sampler: empty logits");
    std::vector<float>& work = scratch.work;
    std::vector<std::pair<float, TokenId>>& cand = scratch.cand;
    work.assign(logits.begin(), logits.end());

    if (s.repeat_penalty != 1.f && !s.penalty_window.empty()) {
        const std::unordered_set<TokenId> seen(s.penalty_window.begin(), s.penalty_window.end());
        for (TokenId t : seen) {
            if (t < 0 || static_cast<size_t>(t) >= n) continue;
            float& l = work[static_cast<size_t>(t)];
            l = l > 0.f ? l / s.repeat_penalty : l * s.repeat_penalty;
        }
    }

    if (s.temperature <= 0.f) {
        // Greedy; ties go to the lowest id, so the choice is deterministic across platforms.
        return static_cast<TokenId>(std::max_element(work.begin(), work.end()) - work.begin());
    }

    cand.resize(n);
    for (size_t i = 0; i < n; ++i) cand[i] = {work[i], static_cast<TokenId>(i)};
    // Sorted by logit descending, ties by id ascending, so every filter below is deterministic.
    auto better = [](const auto& a, const auto& b) { return a.first > b.first || (a.first == b.first && a.second < b.second); };
    size_t keep = n;
    if (s.top_k > 0 && static_cast<size_t>(s.top_k) < n) {
        keep = static_cast<size_t>(s.top_k);
        std::partial_sort(cand.begin(), cand.begin() + static_cast<std::ptrdiff_t>(keep), cand.end(), better);
    } else {
        std::sort(cand.begin(), cand.end(), better);
    }
    cand.resize(keep);

    // Probabilities of the survivors at temperature 1 (top-p and min-p act on the model's distribution).
    auto probs = [&](float temp) {
        std::vector<double> p(cand.size());
        const double mx = cand[0].first;
        double z = 0;
        for (size_t i = 0; i < cand.size(); ++i) z += p[i] = std::exp((cand[i].first - mx) / temp);
        for (double& v : p) v /= z;
        return p;
    };
    if (s.top_p < 1.f) {
        const auto p = probs(1.f);
        double cum = 0;
        size_t k = 0;
        while (k < p.size()) {
            cum += p[k++];
            if (cum >= s.top_p) break;
        }
        cand.resize(k);
    }
    if (s.min_p > 0.f) {
        const auto p = probs(1.f);
        size_t k = 1;
        while (k < p.size() && p[k] >= s.min_p * p[0]) ++k;
        cand.resize(k);
    }
    const auto p = probs(s.temperature);
    double cum = 0;
    for (size_t i = 0; i < p.size(); ++i) {
        cum += p[i];
        if (s.u < cum) return cand[i].second;
    }
    return cand.back().second;  // u within rounding of 1
}

TokenId sample_on_host(std::span<const float> logits, const SampleStep& step) {
    thread_local SampleScratch scratch;
    return sample_on_host(logits, step, scratch);
}

}  // namespace orcd::backend
