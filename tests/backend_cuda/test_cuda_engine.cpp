// The batching engine over the CUDA backend (issue 15: preemption and prefix reuse change no output, on the GPU too):
// requests served together in a pool that preempts, a long prompt served again from the prefix cache, and all of them
// again, each bit-identical to the same request alone on the GPU (test::expect_batched_equals_alone, which
// tests/engine/test_batch_engine.cpp runs on the CPU reference). f32 weights (the f32 decode matvecs) and Q4_K_M (the
// int8 decode columns), both through the tensor-core prefill.
#include <gtest/gtest.h>

#include <string>

#include "../engine/engine_requests.h"
#include "../engine/tiny_models.h"
#include "backend/cuda/cuda_backend.h"
#include "cuda_test_util.h"
#include "model/model.h"
#include "tokenizer/tokenizer.h"

namespace orcd {
namespace {

const std::filesystem::path kPhi3Vocab = test::shared_path("models/vocab/ggml-vocab-phi-3.gguf");

class CudaEngine : public testing::TestWithParam<synth::FileType> {};

TEST_P(CudaEngine, BatchedEqualsAloneAcrossChunksPreemptionAndPrefixReuse) {
    ORCD_SKIP_WITHOUT_GPU();
    ORCD_SKIP_WITHOUT_SHARED(kPhi3Vocab);
    const auto file = test::tiny_model("phi3-tiny", GetParam(), 3, "ggml-vocab-phi-3.gguf");
    const model::Model m = model::open_model(file);
    const tokenizer::Tokenizer tok = tokenizer::Tokenizer::from_gguf(*m.file);
    auto gpu = backend::cuda::make_cuda_backend(model::open_model(file));
    test::expect_batched_equals_alone(*gpu, tok,
                                      ("phi3-tiny " + std::string(synth::file_type_name(GetParam()))).c_str());
}

INSTANTIATE_TEST_SUITE_P(Phi3Tiny, CudaEngine, testing::Values(synth::FileType::F32, synth::FileType::Q4_K_M),
                         [](const auto& info) { return std::string(synth::file_type_name(info.param)); });

}  // namespace
}  // namespace orcd
