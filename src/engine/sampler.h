#pragma once
// Picks the next token from logits. The chain, in llama.cpp's default order: repetition penalty over the last
// `repeat_last_n` tokens -> top-k -> top-p -> min-p -> temperature -> a draw from the softmax. Temperature 0 (or
// less) is greedy: the argmax after the penalty, with no randomness. Seeded: the same seed, logits and history give
// the same token on every run and machine (the draw uses a 64-bit Mersenne Twister and its own uniform conversion,
// not a standard-library distribution whose algorithm is implementation-defined).
#include <cstdint>
#include <optional>
#include <random>
#include <span>
#include <vector>

#include "backend/sample_chain.h"

namespace orcd::engine {

using TokenId = int32_t;

struct SamplingParams {
    float temperature = 0.8f;    // <= 0: greedy
    int32_t top_k = 40;          // <= 0: off
    float top_p = 0.95f;         // >= 1: off
    float min_p = 0.05f;         // <= 0: off; keeps tokens with p >= min_p * p_max
    float repeat_penalty = 1.0f; // 1: off; > 1 discourages tokens seen in the window (CTRL-style: divide positive
                                 // logits, multiply negative ones)
    int32_t repeat_last_n = 64;  // window of the penalty, in tokens (0: off, -1: the whole history)
    std::optional<uint64_t> seed;  // none: one is drawn from std::random_device and reported
};

// Throws Error(InvalidArgument) naming the parameter when a value is out of range (negative penalty, top_p <= 0 ...).
void validate(const SamplingParams& params);

class Sampler {
public:
    explicit Sampler(const SamplingParams& params);

    // `history` is every token of the sequence so far (prompt and generated), for the repetition penalty.
    // = backend::sample_on_host(logits, step(history)).
    TokenId sample(std::span<const float> logits, std::span<const TokenId> history);

    // The next step of the chain without the logits: the parameters, the penalty window (a view into `history`, the
    // last repeat_last_n tokens) and the draw u, taken from the seeded generator when temperature > 0 (greedy draws
    // nothing). Sequence::decode_sample takes it, so a device backend can run the chain where the logits are; each
    // call advances the generator exactly as sample() does.
    backend::SampleStep step(std::span<const TokenId> history);

    uint64_t seed() const { return seed_; }

private:
    SamplingParams p_;
    uint64_t seed_;
    std::mt19937_64 rng_;
    backend::SampleScratch scratch_;
};

}  // namespace orcd::engine
