// Token masks in the CUDA backend's batched step (cuda/token_mask.h): the checks the CPU backend passes in CI
// (tests/grammar/masked_step_checks.h), with prompts through the tensor-core prefill and through decode columns.
#include <gtest/gtest.h>

#include "../engine/tiny_models.h"
#include "../grammar/masked_step_checks.h"
#include "backend/cuda/cuda_backend.h"
#include "cuda_test_util.h"
#include "model/model.h"

namespace orcd::backend {
namespace {

class CudaTokenMask : public ::testing::TestWithParam<bool> {
protected:
    std::unique_ptr<Backend> gpu() {
        static const model::Model m = model::open_model(test::tiny_model("qwen2.5-tiny", synth::FileType::Q8_0));
        return cuda::make_cuda_backend(m, {.batched_prefill = GetParam()});
    }
};

TEST_P(CudaTokenMask, ConstrainedPicksAreTheSameAloneAndAmongFreeSequences) {
    ORCD_SKIP_WITHOUT_GPU();
    test::masked_step::check_batch_invariance(*gpu());
}

TEST_P(CudaTokenMask, PicksEqualTheTestsOwnMaskedPicksOnTheSameLogits) {
    ORCD_SKIP_WITHOUT_GPU();
    test::masked_step::check_against_reference(*gpu());
}

TEST_P(CudaTokenMask, LateMasksPickWhatReadyMasksPick) {
    ORCD_SKIP_WITHOUT_GPU();
    test::masked_step::check_late_masks(*gpu());
}

TEST_P(CudaTokenMask, BadMasksAreRefusedAndASingleAllowedTokenIsPicked) {
    ORCD_SKIP_WITHOUT_GPU();
    test::masked_step::check_bad_masks_refused(*gpu());
}

INSTANTIATE_TEST_SUITE_P(Prefill, CudaTokenMask, ::testing::Bool(),
                         [](const auto& info) { return info.param ? "BatchedPrefill" : "DecodeColumns"; });

}  // namespace
}  // namespace orcd::backend
