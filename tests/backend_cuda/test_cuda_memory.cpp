// The CUDA backend's device-memory report and residency check (what /health, /metrics and `orcd bench` read): the
// weight arena as the loader planned it, each live sequence's KV cache, the rest as workspace, all returning to zero
// KV when the sequences go; and the residency check passing on a loaded model, from another thread too.
#include <gtest/gtest.h>

#include <thread>

#include "../engine/tiny_models.h"
#include "backend/cuda/cuda_backend.h"
#include "cuda_test_util.h"
#include "loader/plan.h"
#include "model/model.h"

namespace orcd::backend {
namespace {

TEST(CudaBackendMemory, ReportFollowsSequencesAndResidencyHolds) {
    ORCD_SKIP_WITHOUT_GPU();
    const model::Model m = model::open_model(test::tiny_model("qwen2.5-tiny", synth::FileType::Q8_0));
    const uint64_t planned_weights = loader::make_plan(m, {128, 512}).weight_bytes;
    auto be = cuda::make_cuda_backend(m);
    const DeviceMemoryReport r0 = be->device_memory();
    EXPECT_EQ(r0.weights, planned_weights);
    EXPECT_EQ(r0.kv_cache, 0u);
    EXPECT_GT(r0.workspace, 0u);  // the rope table
    EXPECT_TRUE(be->check_residency());
    EXPECT_EQ(be->residency_problem(), std::nullopt);

    const model::Config& c = m.config;
    const uint64_t kv128 = 2ull * c.n_layers * 128 * c.kv_dim() * 2;  // f16 K and V
    {
        auto a = be->new_sequence({.n_ctx = 128});
        auto b = be->new_sequence({.n_ctx = 64});
        a->decode(1);
        const DeviceMemoryReport r = be->device_memory();
        EXPECT_EQ(r.weights, planned_weights);
        EXPECT_EQ(r.kv_cache, kv128 + kv128 / 2);
        EXPECT_GT(r.workspace, r0.workspace);  // the sequences' activations
        // Asked from another thread (the server's monitor) while the sequence exists.
        bool ok = false;
        std::thread t([&] { ok = be->check_residency(); });
        t.join();
        EXPECT_TRUE(ok);
    }
    const DeviceMemoryReport r1 = be->device_memory();
    EXPECT_EQ(r1.kv_cache, 0u);
    EXPECT_EQ(r1.workspace, r0.workspace);
    EXPECT_EQ(r1.total(), r0.total());
}

}  // namespace
}  // namespace orcd::backend
