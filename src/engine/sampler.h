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
#include <utility>
#include <vector>

#include "backend/sample_chain.h"

namespace orcd::engine {

using TokenId = int32_t;

struct SamplingParams {
    float temperature = 0.8f;      // <= 0: greedy
    int32_t top_k = 40;            // <= 0: off
    float top_p = 0.95f;           // >= 1: off
    float min_p = 0.05f;           // <= 0: off; keeps tokens with p >= min_p * p_max
    float repeat_penalty = 1.0f;   // 1: off; > 1 discourages tokens seen in the window (CTRL-style: divide positive
                                   // logits, multiply negative ones)
    int32_t repeat_last_n = 64;    // window of the penalty, in tokens (0: off, -1: the whole history)
    std::optional<uint64_t> seed;  // none: one is drawn from std::random_device and reported
    // OpenAI's adjustments, applied to the logits before the chain (all 0 / empty: off, and the logits are not
    // touched): logit[j] += bias[j] - count[j] * frequency_penalty - (count[j] > 0) * presence_penalty, where
    // count[j] is how often j was generated so far (the prompt does not count, as in OpenAI's definition).
    float presence_penalty = 0.0f;                      // [-2, 2]
    float frequency_penalty = 0.0f;                     // [-2, 2]
    std::vector<std::pair<TokenId, float>> logit_bias;  // token id -> bias added to its logit ([-100, 100])
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

    // Whether adjust() changes anything (presence/frequency penalty or logit bias set). When it does, the caller
    // needs the step's logits on the host.
    bool adjusts_logits() const;
    // Applies the logit bias and the presence/frequency penalties to `logits` in place; `generated` is the tokens
    // generated so far (not the prompt). Ids outside the vocabulary are ignored.
    void adjust(std::span<float> logits, std::span<const TokenId> generated);

private:
    SamplingParams p_;
    uint64_t seed_;
    std::mt19937_64 rng_;
    backend::SampleScratch scratch_;
    std::vector<uint32_t> counts_;  // adjust(): per-token counts of the generated tokens, zeroed after use
};

}  // namespace orcd::engine
