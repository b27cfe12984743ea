#pragma once
// The sampling chain given its uniform draw, shared by the engine's Sampler and every backend's decode_sample:
// repetition penalty over a window of token ids -> top-k -> top-p -> min-p -> temperature -> the pick of the first
// token whose cumulative probability exceeds u. The engine draws u from its seeded generator; the chain itself has no
// randomness, so a device implementation given the same logits, parameters and u picks the same token (up to f32
// rounding where u lies on a cumulative boundary). Lives in the backend layer because the backend's default
// decode_sample runs it and the backend does not depend on the engine.
#include <cstdint>
#include <span>
#include <utility>
#include <vector>

namespace orcd::backend {

using TokenId = int32_t;

// One step's sampling: the parameters (engine::SamplingParams' meaning), the tokens under the penalty and the draw.
struct SampleStep {
    float temperature = 0.8f;     // <= 0: greedy (the argmax after the penalty; u unused)
    int32_t top_k = 40;           // <= 0: off
    float top_p = 0.95f;          // >= 1: off
    float min_p = 0.05f;          // <= 0: off; keeps tokens with p >= min_p * p_max
    float repeat_penalty = 1.0f;  // 1: off; divides positive logits, multiplies negative ones
    // The tokens whose logits get the penalty: the last repeat_last_n tokens of the history. Repeats count once; ids
    // outside the vocabulary are ignored. Empty: no penalty.
    std::span<const TokenId> penalty_window;
    double u = 0.0;  // the draw in [0, 1)
};

// Throws InvalidArgument naming the parameter, its value and the valid range, when a step's parameters are outside
// what the chain defines (every backend checks a batch's Sample entries with it before computing anything).
void check_sample_step(const SampleStep& step);

// The index of the largest value (ties: the lowest index; NaN never wins; all NaN or empty: 0): greedy's pick.
TokenId argmax_token(std::span<const float> logits);

// Reused buffers of the host chain (a vocabulary-sized copy of the logits, the candidate list, and the per-token
// weights and bins of the full-vocabulary path).
struct SampleScratch {
    std::vector<std::pair<float, TokenId>> cand;
    std::vector<std::pair<float, TokenId>> edge;  // the screen's tokens of the bin top-p's (or min-p's) cut falls in
    std::vector<float> work;
    std::vector<double> weight;
    std::vector<int32_t> bin;
    std::vector<uint16_t> bin16;  // the single-precision screen's bins
    std::vector<uint64_t> hist;   // its histogram (fixed point; with two weights, a bin's two side by side)
    // Top-p's (and min-p's) kept tokens of whole bins, gathered for the pick's pass at its own temperature: logits,
    // ids and that pass's bins (the whole vocabulary's, when that pass runs in place with the other tokens masked).
    std::vector<float> kept_logit;
    std::vector<int32_t> kept_id;
    std::vector<uint16_t> kept_bin;
    // Draws that took the sorted definition itself (non-finite logits, or a crossing within rounding of a boundary):
    // for tests and diagnostics.
    uint64_t sorted_fallbacks = 0;
    // Draws the single-precision screen left to the double-precision pass (a crossing within its error bound of a
    // boundary): for the benchmark and tests.
    uint64_t screen_fallbacks = 0;
};

// The chain on host logits. Ordering: candidates sorted by logit descending, ties by id ascending; top-p and min-p
// act on the temperature-1 distribution of the survivors (in double); the pick walks the survivors' temperature
// distribution in that order and returns the first whose cumulative probability exceeds u (the last one when
// rounding leaves u beyond the total). A NaN logit counts as -inf. That is the definition; the implementation
// reaches the same token without sorting the vocabulary (sample_chain.cpp says how). Throws InvalidArgument on empty
// logits.
TokenId sample_on_host(std::span<const float> logits, const SampleStep& step, SampleScratch& scratch);
// The same with per-thread scratch.
TokenId sample_on_host(std::span<const float> logits, const SampleStep& step);

}  // namespace orcd::backend
