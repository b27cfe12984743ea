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
    if (!(p.presence_penalty >= -2.f && p.presence_penalty <= 2.f)) {
        bad("presence_penalty", p.presence_penalty, "a number in [-2, 2]");
    }
    if (!(p.frequency_penalty >= -2.f && p.frequency_penalty <= 2.f)) {
        bad("frequency_penalty", p.frequency_penalty, "a number in [-2, 2]");
    }
    for (const auto& [id, b] : p.logit_bias) {
        if (id < 0) bad("logit_bias token id", id, "a token id >= 0");
        if (!(b >= -100.f && b <= 100.f)) bad("logit_bias value", b, "a number in [-100, 100]");
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
        const size_t window =
            p_.repeat_last_n < 0 ? history.size() : std::min(history.size(), static_cast<size_t>(p_.repeat_last_n));
        s.penalty_window = history.last(window);
    }
    // 53 random bits -> [0, 1). Greedy draws nothing, so its generator state is unchanged.
    if (p_.temperature > 0.f) s.u = static_cast<double>(rng_() >> 11) * 0x1.0p-53;
    return s;
}

bool Sampler::adjusts_logits() const {
    return p_.presence_penalty != 0.f || p_.frequency_penalty != 0.f || !p_.logit_bias.empty();
}

void Sampler::adjust(std::span<float> logits, std::span<const TokenId> generated) {
    const size_t n = logits.size();
    for (const auto& [id, b] : p_.logit_bias) {
        if (static_cast<size_t>(id) < n) logits[static_cast<size_t>(id)] += b;
    }
    if (p_.presence_penalty == 0.f && p_.frequency_penalty == 0.f) return;
    if (counts_.size() < n) counts_.assign(n, 0);
    for (TokenId t : generated) {
        if (t >= 0 && static_cast<size_t>(t) < n) ++counts_[static_cast<size_t>(t)];
    }
    // Each distinct token once, then its count is cleared so the buffer is all zeros for the next step.
    for (TokenId t : generated) {
        if (t < 0 || static_cast<size_t>(t) >= n) continue;
        uint32_t& c = counts_[static_cast<size_t>(t)];
        if (c == 0) continue;
        logits[static_cast<size_t>(t)] -= static_cast<float>(c) * p_.frequency_penalty + p_.presence_penalty;
        c = 0;
    }
}

TokenId Sampler::sample(std::span<const float> logits, std::span<const TokenId> history) {
    if (logits.empty()) throw Error(ErrorCode::InvalidArgument, "sampler: empty logits");
    return backend::sample_on_host(logits, step(history), scratch_);
}

}  // namespace orcd::engine
