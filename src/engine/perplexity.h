#pragma once
// Teacher-forced scoring of one token sequence: for every position after the first, the negative log-likelihood of
// the actual next token under the model, and the model's most likely next token. This is how quantization quality and
// backend fidelity are compared (`orcd perplexity`).
#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "backend/backend.h"

namespace orcd::engine {

struct PerplexityResult {
    std::vector<double> nll;                // nll[i]: -log p(tokens[i + 1] | tokens[0..i]), natural log
    std::vector<backend::TokenId> argmax;   // argmax[i]: the most likely token after tokens[0..i]
    double nll_mean = 0;
    double ppl = 0;                         // exp(nll_mean)
    double seconds = 0;                     // forward time
};

// Resets `sequence` and runs the tokens through it in batches of `batch` (each batch's logits are consumed before the
// next, so memory stays batch x n_vocab). Errors: InvalidArgument for fewer than 2 tokens; ContextOverflow when the
// tokens do not fit the sequence's context (checked before any work).
PerplexityResult score_tokens(backend::Sequence& sequence, std::span<const backend::TokenId> tokens,
                              size_t batch = 256);

}  // namespace orcd::engine
