#pragma once
// Teacher-forced scoring of one token sequence: for every position after the first, the negative log-likelihood of
// the actual next token under the model, and the model's most likely next token. This is how quantization quality and
// backend fidelity are compared (`orcd perplexity`).
#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <vector>

#include "backend/backend.h"

namespace orcd::engine {

struct PerplexityResult {
    std::vector<double> nll;               // nll[i]: -log p(tokens[i + 1] | tokens[0..i]), natural log
    std::vector<backend::TokenId> argmax;  // argmax[i]: the most likely token after tokens[0..i]
    double nll_mean = 0;
    double ppl = 0;      // exp(nll_mean)
    double seconds = 0;  // forward time
};

// Resets `sequence` and runs the tokens through it in batches of `batch` (each batch's logits are consumed before the
// next, so memory stays batch x n_vocab). Errors: InvalidArgument for fewer than 2 tokens; ContextOverflow when the
// tokens do not fit the sequence's context (checked before any work).
PerplexityResult score_tokens(backend::Sequence& sequence, std::span<const backend::TokenId> tokens,
                              size_t batch = 256);

// Perplexity over fixed windows, as llama-perplexity computes it: the tokens are cut into floor(n / n_ctx) windows of
// n_ctx tokens (a partial last window is dropped); each window is scored from an empty cache, its first token replaced
// by BOS when `bos` is given (the model adds one), and only its second half counts: positions n_ctx/2 .. n_ctx-2
// predict tokens n_ctx/2 + 1 .. n_ctx-1, so every scored token has at least n_ctx/2 tokens of context.
struct ChunkedPerplexity {
    size_t n_chunks = 0;
    size_t scored = 0;      // tokens scored: n_chunks * (n_ctx - 1 - n_ctx / 2)
    double nll_sum = 0;     // sum of the scored NLLs (natural log)
    double nll_sq_sum = 0;  // sum of their squares
    double ppl = 0;         // exp(nll_sum / scored)
    double ppl_error = 0;   // its standard error (ppl_estimate)
    double seconds = 0;
};

// The estimate from the sums, as llama-perplexity reports it: with m = mean NLL and v = mean of squares - m^2,
// PPL = exp(m) and its standard error is PPL * sqrt(v / (count - 1)) (the standard error of the mean NLL, carried to
// PPL by the derivative of exp); 0 when count < 2 or v <= 0.
struct PplEstimate {
    double ppl = 0;
    double error = 0;
};
PplEstimate ppl_estimate(double nll_sum, double nll_sq_sum, size_t count);

// `progress(chunk, n_chunks, ppl_so_far)` after every window (chunk counts from 1). Errors: InvalidArgument when
// n_ctx < 4 or the text has fewer than 2 * n_ctx tokens (llama-perplexity's requirement), ContextOverflow when the
// sequence's context is smaller than n_ctx.
ChunkedPerplexity score_chunks(backend::Sequence& sequence, std::span<const backend::TokenId> tokens, uint32_t n_ctx,
                               std::optional<backend::TokenId> bos,
                               const std::function<void(size_t, size_t, double)>& progress = {}, size_t batch = 256);

}  // namespace orcd::engine
