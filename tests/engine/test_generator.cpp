#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <atomic>

#include "backend/cpu/cpu_backend.h"
#include "common/error.h"
#include "engine/generator.h"
#include "engine/grammar_constraint.h"
#include "grammar/gbnf.h"
#include "grammar/matcher.h"
#include "model/model.h"
#include "tiny_models.h"
#include "tokenizer/tokenizer.h"

namespace orcd::engine {
namespace {

TEST(StopMatcher, HoldsBackPossiblePrefixesAndDropsTheStopString) {
    StopMatcher m({"</end>", "STOP"});
    EXPECT_EQ(m.push("hello </e"), "hello ");  // "</e" may start "</end>"
    EXPECT_EQ(m.push("x"), "</ex");            // it did not
    EXPECT_EQ(m.push(" S"), " ");
    EXPECT_EQ(m.push("TO"), "");
    EXPECT_EQ(m.push("P and more"), "");
    EXPECT_TRUE(m.stopped());
    EXPECT_EQ(m.push("later"), "");
}

TEST(StopMatcher, StopInsideOnePieceAndFlushAtTheEnd) {
    StopMatcher a({"##"});
    EXPECT_EQ(a.push("ab##cd"), "ab");
    EXPECT_TRUE(a.stopped());
    StopMatcher b({"##"});
    EXPECT_EQ(b.push("ab#"), "ab");
    EXPECT_FALSE(b.stopped());
    EXPECT_EQ(b.flush(), "#");
    StopMatcher none({""});  // empty stop strings are ignored
    EXPECT_EQ(none.push("abc"), "abc");
}

// A tiny Phi-3-shaped model with Phi-3's real vocabulary and chat template.
const std::filesystem::path kPhi3Vocab = test::shared_path("models/vocab/ggml-vocab-phi-3.gguf");

struct Fixture {
    model::Model model =
        model::open_model(test::tiny_model("phi3-tiny", synth::FileType::F32, 3, "ggml-vocab-phi-3.gguf"));
    tokenizer::Tokenizer tok = tokenizer::Tokenizer::from_gguf(*model.file);
    std::unique_ptr<backend::Backend> be = backend::cpu::make_cpu_backend(model, {.n_threads = 2});
    Generator gen{*be, tok};
};

Fixture& fx() {
    static Fixture f;
    return f;
}

GenerateRequest greedy(uint32_t n) {
    GenerateRequest r;
    r.prompt = "The quick brown fox";
    r.max_tokens = n;
    r.sampling.temperature = 0.f;
    r.sampling.seed = 1;
    return r;
}

TEST(Generator, GreedyAndSeededRunsAreReproducibleAndStreamTheDecodedText) {
    ORCD_SKIP_WITHOUT_SHARED(kPhi3Vocab);
    auto& f = fx();
    auto seq = f.be->new_sequence({.n_ctx = 128});
    std::string streamed;
    const auto a = f.gen.generate(*seq, greedy(20), [&](std::string_view s) { streamed += s; });
    const auto b = f.gen.generate(*seq, greedy(20));
    EXPECT_EQ(a.tokens, b.tokens);
    EXPECT_EQ(streamed, a.text);
    if (a.stop_reason == StopReason::MaxTokens) {
        EXPECT_EQ(a.tokens.size(), 20u);
        // The continuation of the prompt's text (SentencePiece keeps the space that starts a continuation).
        std::vector<tokenizer::TokenId> all = a.prompt_tokens;
        all.insert(all.end(), a.tokens.begin(), a.tokens.end());
        EXPECT_EQ(f.tok.decode(a.prompt_tokens) + a.text, f.tok.decode(all));
    }
    GenerateRequest r = greedy(20);
    r.sampling = SamplingParams{};
    r.sampling.temperature = 1.5f;
    r.sampling.seed = 1234;
    const auto s1 = f.gen.generate(*seq, r);
    const auto s2 = f.gen.generate(*seq, r);
    EXPECT_EQ(s1.tokens, s2.tokens);
    EXPECT_EQ(s1.seed, 1234u);
    r.sampling.seed = 99;
    EXPECT_NE(f.gen.generate(*seq, r).tokens, s1.tokens);
}

// Forwards to a real sequence and counts which decode entry point the generator used.
class CountingSequence final : public backend::Sequence {
public:
    explicit CountingSequence(std::unique_ptr<backend::Sequence> inner) : inner_(std::move(inner)) {}
    std::span<const float> prefill(std::span<const backend::TokenId> t, bool all) override {
        return inner_->prefill(t, all);
    }
    std::span<const float> decode(backend::TokenId t) override {
        ++decodes;
        return inner_->decode(t);
    }
    backend::TokenId decode_greedy(backend::TokenId t) override {
        ++greedy_decodes;
        return inner_->decode_greedy(t);  // the CPU backend's: the default, argmax of decode() on the host
    }
    void reset() override { inner_->reset(); }
    uint32_t n_past() const override { return inner_->n_past(); }
    uint32_t n_ctx() const override { return inner_->n_ctx(); }
    int decodes = 0, greedy_decodes = 0;

private:
    std::unique_ptr<backend::Sequence> inner_;
};

TEST(Generator, GreedyWithoutPenaltyAsksTheBackendForTheArgmaxOnly) {
    ORCD_SKIP_WITHOUT_SHARED(kPhi3Vocab);
    auto& f = fx();
    CountingSequence seq(f.be->new_sequence({.n_ctx = 128}));
    const GenerateResult a = f.gen.generate(seq, greedy(12));
    ASSERT_FALSE(a.tokens.empty());
    EXPECT_EQ(seq.greedy_decodes, static_cast<int>(a.tokens.size()) - 1);
    EXPECT_EQ(seq.decodes, 0);  // (the inner sequence's default decode_greedy calls its own decode, not ours)

    // The same tokens as sampling from the logits: the manual greedy loop over decode().
    auto ref = f.be->new_sequence({.n_ctx = 128});
    std::span<const float> logits = ref->prefill(a.prompt_tokens);
    for (size_t i = 0; i < a.tokens.size(); ++i) {
        const auto tok = static_cast<TokenId>(std::max_element(logits.begin(), logits.end()) - logits.begin());
        EXPECT_EQ(tok, a.tokens[i]) << "token " << i;
        logits = ref->decode(tok);
    }

    // A repetition penalty needs the logits: decode() only.
    CountingSequence pen(f.be->new_sequence({.n_ctx = 128}));
    GenerateRequest r = greedy(12);
    r.sampling.repeat_penalty = 1.3f;
    f.gen.generate(pen, r);
    EXPECT_EQ(pen.greedy_decodes, 0);
    EXPECT_GT(pen.decodes, 0);
}

// Log-probabilities against a float64 log-softmax of the same logits (a manual greedy loop over decode()), and the
// tokens unchanged by asking for them.
TEST(Generator, LogprobsMatchALogSoftmaxOfTheStepLogitsAndChangeNothing) {
    ORCD_SKIP_WITHOUT_SHARED(kPhi3Vocab);
    auto& f = fx();
    auto seq = f.be->new_sequence({.n_ctx = 128});
    const GenerateResult plain_run = f.gen.generate(*seq, greedy(8));
    GenerateRequest r = greedy(8);
    std::vector<TokenLogprobs> got;
    r.top_logprobs = 3;
    r.on_logprobs = [&](const TokenLogprobs& t) { got.push_back(t); };
    const GenerateResult a = f.gen.generate(*seq, r);
    EXPECT_EQ(a.tokens, plain_run.tokens);
    size_t n_text_tokens = a.tokens.size();
    if (a.stop_reason == StopReason::EndOfGeneration) --n_text_tokens;  // no entry for the end-of-generation token
    ASSERT_EQ(got.size(), n_text_tokens);

    auto ref = f.be->new_sequence({.n_ctx = 128});
    std::span<const float> logits = ref->prefill(a.prompt_tokens);
    for (size_t i = 0; i < got.size(); ++i) {
        double mx = -INFINITY;
        for (float x : logits) mx = std::max<double>(mx, x);
        double sum = 0;
        for (float x : logits) sum += std::exp(static_cast<double>(x) - mx);
        const double lse = mx + std::log(sum);
        EXPECT_EQ(got[i].chosen.id, a.tokens[i]);
        EXPECT_NEAR(got[i].chosen.logprob, logits[static_cast<size_t>(a.tokens[i])] - lse, 1e-4);
        // The top 3: the three largest logits, in order, ties by id.
        std::vector<TokenId> ids(logits.size());
        for (size_t k = 0; k < ids.size(); ++k) ids[k] = static_cast<TokenId>(k);
        std::stable_sort(ids.begin(), ids.end(), [&](TokenId x, TokenId y) {
            return logits[static_cast<size_t>(x)] > logits[static_cast<size_t>(y)];
        });
        ASSERT_EQ(got[i].top.size(), 3u);
        for (size_t k = 0; k < 3; ++k) {
            EXPECT_EQ(got[i].top[k].id, ids[k]) << "step " << i << " rank " << k;
            EXPECT_NEAR(got[i].top[k].logprob, logits[static_cast<size_t>(ids[k])] - lse, 1e-4);
            std::string piece;
            f.tok.append_piece(ids[k], true, piece);
            EXPECT_EQ(got[i].top[k].text, piece);
        }
        EXPECT_EQ(got[i].top[0].id, a.tokens[i]);  // greedy picks the most likely
        logits = ref->decode(a.tokens[i]);
    }
}

// OpenAI's logit bias and presence / frequency penalties (host path): banned and forced tokens, and greedy under
// both against the formula applied by hand.
TEST(Generator, PenaltiesAndBiasFollowOpenAisFormula) {
    ORCD_SKIP_WITHOUT_SHARED(kPhi3Vocab);
    auto& f = fx();
    auto seq = f.be->new_sequence({.n_ctx = 128});
    GenerateRequest r = greedy(16);
    r.sampling.temperature = 1.0f;
    r.sampling.seed = 77;
    const GenerateResult base = f.gen.generate(*seq, r);
    ASSERT_FALSE(base.tokens.empty());
    // A bias of -100 on the first token the plain run picks: it is never picked.
    GenerateRequest b = r;
    b.sampling.logit_bias = {{base.tokens[0], -100.f}};
    const GenerateResult biased = f.gen.generate(*seq, b);
    for (TokenId t : biased.tokens) EXPECT_NE(t, base.tokens[0]);
    // A bias of +100 on one token: every step picks it.
    GenerateRequest plus = greedy(6);
    plus.sampling.logit_bias = {{42, 100.f}};
    for (TokenId t : f.gen.generate(*seq, plus).tokens) EXPECT_EQ(t, 42);
    // Greedy with penalties and a bias against a manual loop over decode() that applies OpenAI's formula itself.
    GenerateRequest pen = greedy(10);
    pen.sampling.logit_bias = {{42, 3.f}};
    pen.sampling.frequency_penalty = 1.5f;
    pen.sampling.presence_penalty = 0.75f;
    const GenerateResult pr = f.gen.generate(*seq, pen);
    auto ref = f.be->new_sequence({.n_ctx = 128});
    std::span<const float> logits = ref->prefill(pr.prompt_tokens);
    std::vector<TokenId> generated;
    for (size_t i = 0; i < pr.tokens.size(); ++i) {
        std::vector<double> adj(logits.begin(), logits.end());
        adj[42] += 3.0;
        for (size_t j = 0; j < adj.size(); ++j) {
            const auto c = static_cast<double>(std::count(generated.begin(), generated.end(), static_cast<TokenId>(j)));
            adj[j] -= c * 1.5 + (c > 0 ? 0.75 : 0.0);
        }
        const auto want = static_cast<TokenId>(std::max_element(adj.begin(), adj.end()) - adj.begin());
        ASSERT_EQ(pr.tokens[i], want) << "step " << i;
        generated.push_back(want);
        logits = ref->decode(want);
    }
}

TEST(Generator, PromptPlusMaxTokensBeyondContextFailsBeforeAnyWork) {
    ORCD_SKIP_WITHOUT_SHARED(kPhi3Vocab);
    auto& f = fx();
    auto seq = f.be->new_sequence({.n_ctx = 16});
    const size_t n_prompt = f.gen.prompt_tokens(greedy(1)).size();
    try {
        f.gen.generate(*seq, greedy(static_cast<uint32_t>(17 - n_prompt)));
        FAIL() << "expected ContextOverflow";
    } catch (const Error& e) {
        EXPECT_EQ(e.code(), ErrorCode::ContextOverflow) << e.what();
    }
    EXPECT_EQ(seq->n_past(), 0u);
    EXPECT_NO_THROW(f.gen.generate(*seq, greedy(static_cast<uint32_t>(16 - n_prompt))));
}

TEST(Generator, StopStringAcrossTokensEndsGenerationAndIsNotEmitted) {
    ORCD_SKIP_WITHOUT_SHARED(kPhi3Vocab);
    auto& f = fx();
    auto seq = f.be->new_sequence({.n_ctx = 128});
    const auto full = f.gen.generate(*seq, greedy(30));
    ASSERT_GE(full.text.size(), 12u) << "the model must produce some text for this test";
    // A stop string that spans token boundaries: 5 bytes from the middle of the text (kept on a UTF-8 boundary).
    size_t k = full.text.size() / 2;
    while (k > 0 && (static_cast<unsigned char>(full.text[k]) & 0xC0) == 0x80) --k;
    size_t len = 5;
    while (k + len < full.text.size() && (static_cast<unsigned char>(full.text[k + len]) & 0xC0) == 0x80) ++len;
    const std::string stop = full.text.substr(k, len);
    GenerateRequest r = greedy(30);
    r.stop = {stop};
    std::string streamed;
    const auto res = f.gen.generate(*seq, r, [&](std::string_view s) { streamed += s; });
    EXPECT_EQ(res.stop_reason, StopReason::StopString);
    EXPECT_EQ(res.text, full.text.substr(0, full.text.find(stop)));
    EXPECT_EQ(streamed, res.text);
    EXPECT_LT(res.tokens.size(), full.tokens.size());
}

TEST(Generator, CancellationFlagStopsAtTheNextToken) {
    ORCD_SKIP_WITHOUT_SHARED(kPhi3Vocab);
    auto& f = fx();
    auto seq = f.be->new_sequence({.n_ctx = 128});
    std::atomic<bool> cancel{false};
    const auto r = f.gen.generate(
        *seq, greedy(30), [&](std::string_view) { cancel = true; }, &cancel);
    EXPECT_EQ(r.stop_reason, StopReason::Cancelled);
    EXPECT_LT(r.tokens.size(), 30u);
    EXPECT_GE(r.tokens.size(), 1u);
}

TEST(Generator, ChatPromptUsesTheModelsTemplate) {
    ORCD_SKIP_WITHOUT_SHARED(kPhi3Vocab);
    auto& f = fx();
    GenerateRequest r = greedy(4);
    r.chat = true;
    const auto ids = f.gen.prompt_tokens(r);
    const std::string text = f.tok.decode(ids, /*show_special=*/true);
    EXPECT_NE(text.find("<|user|>"), std::string::npos) << text;
    EXPECT_NE(text.find("<|assistant|>"), std::string::npos) << text;
    EXPECT_NE(text.find("The quick brown fox"), std::string::npos) << text;
    auto seq = f.be->new_sequence({.n_ctx = 128});
    EXPECT_NO_THROW(f.gen.generate(*seq, r));
}

// Constrained generation on a SentencePiece vocabulary (Phi-3): every output is a complete sentence of the grammar,
// and generation ends by itself when the grammar allows nothing more.
TEST(Generator, GrammarConstrainedOutputIsCompleteAndEndsByItself) {
    ORCD_SKIP_WITHOUT_SHARED(kPhi3Vocab);
    auto& f = fx();
    const std::string gbnf =
        "root ::= \"{\\\"n\\\": \" [0-9]{1,3} (\", \\\"s\\\": \\\"\" [a-z ]{0,8} \"\\\"\")? \"}\"\n";
    auto constraint = constraint_from_gbnf(gbnf, grammar_vocabulary(f.tok));
    for (uint64_t seed = 1; seed <= 4; ++seed) {
        GenerateRequest r = greedy(64);
        r.sampling.temperature = 1.f;
        r.sampling.seed = seed;
        r.constraint = constraint;
        auto seq = f.be->new_sequence({.n_ctx = 128});
        const GenerateResult out = f.gen.generate(*seq, r);
        EXPECT_TRUE(out.grammar_complete) << out.text;
        EXPECT_EQ(out.stop_reason, StopReason::EndOfGeneration);
        EXPECT_TRUE(grammar::matches(constraint->grammar(), out.text)) << out.text;
        EXPECT_LT(out.tokens.size(), 64u);
    }
}

TEST(Generator, GrammarAllowsEndOfGenerationOnlyWhereComplete) {
    ORCD_SKIP_WITHOUT_SHARED(kPhi3Vocab);
    auto& f = fx();
    // "x" then optionally more: the grammar can end after "x", so EOS competes with "y"s; it can never come first.
    auto constraint = constraint_from_gbnf("root ::= \"x\" \"y\"{0,50}\n", grammar_vocabulary(f.tok));
    for (uint64_t seed = 1; seed <= 4; ++seed) {
        GenerateRequest r = greedy(60);
        r.sampling.temperature = 1.f;
        r.sampling.seed = seed;
        r.constraint = constraint;
        auto seq = f.be->new_sequence({.n_ctx = 128});
        const GenerateResult out = f.gen.generate(*seq, r);
        EXPECT_TRUE(out.grammar_complete);
        ASSERT_FALSE(out.text.empty());
        EXPECT_EQ(out.text.find_first_not_of('y', 1), std::string::npos) << out.text;
        EXPECT_EQ(out.text[0], 'x');
    }
}

TEST(Generator, GrammarBuiltForAnotherVocabularyIsRefused) {
    ORCD_SKIP_WITHOUT_SHARED(kPhi3Vocab);
    auto& f = fx();
    auto other = std::make_shared<const grammar::TokenVocabulary>(
        std::vector<std::string>{"a"}, std::vector<grammar::TokenClass>{grammar::TokenClass::Bytes});
    GenerateRequest r = greedy(4);
    r.constraint = constraint_from_gbnf("root ::= \"a\"\n", other);
    auto seq = f.be->new_sequence({.n_ctx = 64});
    try {
        f.gen.generate(*seq, r);
        FAIL() << "no error";
    } catch (const Error& e) {
        EXPECT_EQ(e.code(), ErrorCode::InvalidArgument);
        EXPECT_NE(std::string(e.what()).find("vocabulary of 1 tokens"), std::string::npos) << e.what();
    }
}

}  // namespace
}  // namespace orcd::engine
