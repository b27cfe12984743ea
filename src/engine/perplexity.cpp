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

PplEstimate ppl_estimate(double nll_sum, double nll_sq_sum, size_t count) {
    PplEstimate e;
    if (count == 0) return e;
    const double n = static_cast<double>(count);
    const double mean = nll_sum / n;
    e.ppl = std::exp(mean);
    const double var = nll_sq_sum / n - mean * mean;
    if (count > 1 && var > 0) e.error = e.ppl * std::sqrt(var / (n - 1));
    return e;
}

ChunkedPerplexity score_chunks(backend::Sequence& seq, std::span<const backend::TokenId> tokens, uint32_t n_ctx,
                               std::optional<backend::TokenId> bos,
                               const std::function<void(size_t, size_t, double)>& progress, size_t batch) {
    if (n_ctx < 4) {
        throw Error(ErrorCode::InvalidArgument,
                    fmt::format("--ctx-size {} is too small for windows: use 4 or more", n_ctx));
    }
    if (tokens.size() < 2ull * n_ctx) {
        throw Error(ErrorCode::InvalidArgument,
                    fmt::format("the text is {} tokens; windows of --ctx-size {} need at least {} (two windows): use a "
                                "longer text or a smaller --ctx-size",
                                tokens.size(), n_ctx, 2ull * n_ctx));
    }
    if (seq.n_ctx() < n_ctx) {
        throw Error(ErrorCode::ContextOverflow,
                    fmt::format("windows of {} tokens do not fit the sequence's context of {}", n_ctx, seq.n_ctx()));
    }
    ChunkedPerplexity r;
    const auto t0 = std::chrono::steady_clock::now();
    r.n_chunks = tokens.size() / n_ctx;
    const size_t first = n_ctx / 2;
    std::vector<backend::TokenId> window(n_ctx);
    for (size_t c = 0; c < r.n_chunks; ++c) {
        std::copy_n(tokens.begin() + static_cast<std::ptrdiff_t>(c * n_ctx), n_ctx, window.begin());
        if (bos) window[0] = *bos;
        const PerplexityResult w = score_tokens(seq, window, batch);
        // w.nll[j] is the NLL of window[j + 1]: positions first .. n_ctx - 2.
        for (size_t j = first; j + 1 < n_ctx; ++j) {
            r.nll_sum += w.nll[j];
            r.nll_sq_sum += w.nll[j] * w.nll[j];
            ++r.scored;
        }
        if (progress) progress(c + 1, r.n_chunks, std::exp(r.nll_sum / static_cast<double>(r.scored)));
    }
    const PplEstimate e = ppl_estimate(r.nll_sum, r.nll_sq_sum, r.scored);
    r.ppl = e.ppl;
    r.ppl_error = e.error;
    r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    return r;
}

}  // namespace orcd::engine
