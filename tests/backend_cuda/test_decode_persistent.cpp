// The persistent single-column decode step (decode_persistent.h) against the kernel chain it replaces: the same
// logits bit for bit at every position (the chain's own bits are tested against every batch size and the CPU
// reference in test_cuda_batch.cpp), eager and replayed from the captured graph, across the attention's chunk
// boundaries and with scattered pages; and the models it cannot run refused by name.
#include <gtest/gtest.h>

#include <random>
#include <tuple>

#include "../engine/tiny_models.h"
#include "backend/cuda/cuda_backend.h"
#include "common/error.h"
#include "cuda_test_util.h"
#include "model/model.h"
#include "same_bits.h"

namespace orcd::backend {
namespace {

using test::bit_difference;
using test::same_bits;

std::vector<TokenId> random_tokens(std::mt19937_64& rng, size_t n) {
    std::vector<TokenId> t(n);
    for (TokenId& x : t) x = std::uniform_int_distribution<TokenId>(0, 511)(rng);
    return t;
}

class CudaPersistentDecode : public testing::TestWithParam<test::ModelCase> {};

// Prompts of 1, 60 and 700 tokens (through the prefill, as both backends run it), then greedy decode steps whose
// positions cross the attention's 64-position chunks (60 -> 71, 700 -> 711): every step's logits bit-identical, and
// identical again in a second sequence of the persistent kernel (a race between its blocks showed as differences
// from run to run). The first step of each sequence runs eagerly, the later ones from the graph captured after it.
TEST_P(CudaPersistentDecode, LogitsAreTheKernelChainsBitForBit) {
    ORCD_SKIP_WITHOUT_GPU();
    std::mt19937_64 rng(::orcd::cuda::test::fresh_seed());
    const auto& [preset, type, n_layer] = GetParam();
    const model::Model m =
        model::open_model(n_layer == 0 ? test::tiny_model(preset, type) : test::layer_cut_model(preset, type, n_layer));
    auto chain = cuda::make_cuda_backend(m);
    auto persistent = cuda::make_cuda_backend(m, {.decode_kernel = cuda::DecodeKernel::Persistent});
    for (const size_t prompt : {size_t{1}, size_t{60}, size_t{700}}) {
        SCOPED_TRACE("a " + std::to_string(prompt) + "-token prompt");
        const std::vector<TokenId> tokens = random_tokens(rng, prompt);
        auto a = chain->new_sequence({.n_ctx = 1024});
        auto b = persistent->new_sequence({.n_ctx = 1024});
        auto again = persistent->new_sequence({.n_ctx = 1024});  // the persistent kernel against itself
        const std::span<const float> pa = a->prefill(tokens);
        ASSERT_FALSE(pa.empty());
        TokenId next = argmax_token(pa);
        b->prefill(tokens);
        again->prefill(tokens);
        for (int step = 0; step < 12; ++step) {
            const std::span<const float> sa = a->decode(next);
            const std::vector<float> la(sa.begin(), sa.end());
            const std::span<const float> sb = b->decode(next);
            const std::vector<float> lb(sb.begin(), sb.end());
            const std::span<const float> lc = again->decode(next);
            EXPECT_TRUE(same_bits(lb, lc)) << "run to run, decode step " << step << ": " << bit_difference(lb, lc);
            ASSERT_TRUE(same_bits(la, lb))
                << "decode step " << step << " at position " << prompt + step << ": " << bit_difference(la, lb);
            next = argmax_token(la);
        }
        // The step's own argmax (the persistent kernel's logits, then the argmax kernel after it).
        EXPECT_EQ(a->decode_greedy(next), b->decode_greedy(next));
    }
}

INSTANTIATE_TEST_SUITE_P(Tiny, CudaPersistentDecode,
                         testing::Values(std::make_tuple("qwen2.5-tiny", synth::FileType::Q4_K_M, 0u),
                                         std::make_tuple("llama-tiny", synth::FileType::Q4_K_M, 0u),
                                         std::make_tuple("phi3-tiny", synth::FileType::Q4_K_M, 0u),
                                         std::make_tuple("qwen2.5-tiny", synth::FileType::Q8_0, 0u)),
                         test::model_case_param_name);
INSTANTIATE_TEST_SUITE_P(RealShapes, CudaPersistentDecode, testing::ValuesIn(test::kRealShapeCuts),
                         test::model_case_param_name);

// What the persistent step lacks is refused when it is asked for, naming it; the chain runs those models.
TEST(CudaPersistentDecodeErrors, ModelsItCannotRunAreRefusedByName) {
    ORCD_SKIP_WITHOUT_GPU();
    auto refusal = [](const std::string& preset, synth::FileType type, Activations act) -> std::string {
        const model::Model m = model::open_model(test::tiny_model(preset, type));
        try {
            cuda::make_cuda_backend(m, {.activations = act, .decode_kernel = cuda::DecodeKernel::Persistent});
        } catch (const Error& e) {
            EXPECT_EQ(e.code(), ErrorCode::UnsupportedArchitecture) << e.what();
            return e.what();
        }
        return "(no error)";
    };
    EXPECT_NE(refusal("qwen3-tiny", synth::FileType::Q8_0, Activations::Int8).find("q/k RMSNorm"), std::string::npos);
    EXPECT_NE(refusal("qwen2.5-tiny", synth::FileType::Q4_K_M, Activations::F32).find("int8 activations only"),
              std::string::npos);
    EXPECT_NE(
        refusal("phi3-tiny", synth::FileType::F32, Activations::Int8).find("no int8 matvec for the output matrix (F32"),
        std::string::npos);
    // The chain takes every one of them.
    const model::Model m = model::open_model(test::tiny_model("qwen3-tiny", synth::FileType::Q8_0));
    EXPECT_NO_THROW(cuda::make_cuda_backend(m));
}

}  // namespace
}  // namespace orcd::backend
