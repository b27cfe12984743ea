#include "engine/perplexity.h"

#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <cmath>

#include "common/error.h"

namespace orcd::engine {

PerplexityResult score_tokens(backend::Sequence& seq, std::span<const backend::TokenId> tokens, size_t batch) {
    if (tokens.size() < 2) {
        throw Error(ErrorCode::InvalidArgument,
                    fmt::format("perplexity needs at least 2 tokens, the text has {}", tokens.size()));
    }
    if (tokens.size() > seq.n_ctx()) {
        throw Error(ErrorCode::ContextOverflow,
                    fmt::format("the text is {} tokens long, more than the context of {} tokens; it is scored as one "
                                "sequence, so shorten it or raise the context",
                                tokens.size(), seq.n_ctx()));
    }
    PerplexityResult r;
    const auto t0 = std::chrono::steady_clock::now();
    seq.reset();
    batch = std::max<size_t>(1, batch);
    // The last token predicts nothing that is scored, so it is not run.
    const size_t n_run = tokens.size() - 1;
    r.nll.reserve(n_run);
    r.argmax.reserve(n_run);
    for (size_t i = 0; i < n_run; i += batch) {
        const size_t n = std::min(batch, n_run - i);
        const std::span<const float> logits = seq.prefill(tokens.subspan(i, n), /*all_logits=*/true);
        const size_t V = logits.size() / n;
        for (size_t t = 0; t < n; ++t) {
            const std::span<const float> row = logits.subspan(t * V, V);
            const auto best = std::max_element(row.begin(), row.end());
            // log-softmax in double: logsumexp with the max subtracted.
            double z = 0;
            for (float v : row) z += std::exp(static_cast<double>(v) - *best);
            const backend::TokenId next = tokens[i + t + 1];
            if (next < 0 || static_cast<size_t>(next) >= V) {
                throw Error(ErrorCode::InvalidArgument,
                            fmt::format("token id {} is outside the vocabulary of {}", next, V));
            }
            r.nll.push_back(std::log(z) + *best - row[static_cast<size_t>(next)]);
            r.argmax.push_back(static_cast<backend::TokenId>(best - row.begin()));
        }
    }
    r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    double sum = 0;
    for (double v : r.nll) sum += v;
    r.nll_mean = sum / static_cast<double>(r.nll.size());
    r.ppl = std::exp(r.nll_mean);
    return r;
}

}  // namespace orcd::engine
