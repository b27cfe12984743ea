#include "engine/sampler.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>

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

backend::SampleStep Sampler::step(std::span<const TokenId> history) {
    backend::SampleStep s;
    s.temperature = p_.temperature;
    s.top_k = p_.top_k;
    s.top_p = p_.top_p;
    s.min_p = p_.min_p;
    s.repeat_penalty = p_.repeat_penalty;
    if (p_.repeat_penalty != 1.f && p_.repeat_last_n != 0 && !history.empty()) {
        const size_t window = p_.repeat_last_n < 0 ? history.size()
                                                   : std::min(history.size(), static_cast<size_t>(p_.repeat_last_n));
        s.penalty_window = history.last(window);
    }
    // 53 random bits -> [0, 1). Greedy draws nothing, so its generator state is unchanged.
    if (p_.temperature > 0.f) s.u = static_cast<double>(rng_() >> 11) * 0x1.0p-53;
    return s;
}

TokenId Sampler::sample(std::span<const float> logits, std::span<const TokenId> history) {
    if (logits.empty()) throw Error(ErrorCode::InvalidArgument, "sampler: empty logits");
    return backend::sample_on_host(logits, step(history), scratch_);
}

}  // namespace orcd::engine
