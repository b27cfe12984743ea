#include "backend/cuda/gemm.h"

#include <fmt/format.h>

#include <algorithm>
#include <cstring>

#include "backend/cuda/cublas_library.h"
#include "common/error.h"

namespace orcd::cuda {

namespace {

static_assert(sizeof(cublasLtMatmulAlgo_t) == sizeof(uint64_t) * 8);

void check(cublasStatus_t st, const char* what) {
    if (st != CUBLAS_STATUS_SUCCESS) {
        throw Error(ErrorCode::Device,
                    fmt::format("cuBLASLt {}: {} ({})", what, cublas().status_name(st), cublas().status_string(st)));
    }
}

// A column-major matrix description (cuBLASLt's terms), destroyed with its scope.
class Layout {
public:
    Layout(cudaDataType type, int64_t rows, int64_t cols, int64_t ld) {
        check(cublas().layout_create(&l_, type, static_cast<uint64_t>(rows), static_cast<uint64_t>(cols), ld),
              "cublasLtMatrixLayoutCreate");
    }
    ~Layout() { cublas().layout_destroy(l_); }
    Layout(const Layout&) = delete;
    Layout& operator=(const Layout&) = delete;
    operator cublasLtMatrixLayout_t() const { return l_; }

private:
    cublasLtMatrixLayout_t l_ = nullptr;
};

// In column-major terms Y^T (rows x n, ld ldy) = W^T (W is cols x rows, ld cols, transposed) * X^T (cols x n, ld
// cols): D = op(A) B with A = W, B = X, C = D = Y.
Layout weights(int64_t rows, int64_t cols) { return Layout(CUDA_R_16F, cols, rows, cols); }
Layout activations(int64_t cols, int64_t n) { return Layout(CUDA_R_16F, cols, n, cols); }
Layout outputs(int64_t rows, int64_t n, int64_t ldy) { return Layout(CUDA_R_32F, rows, n, ldy); }

bool aligned(const void* p) { return reinterpret_cast<uintptr_t>(p) % Gemm::kAlignment == 0; }

}  // namespace

Gemm::Gemm(cudaStream_t stream, void* workspace, size_t workspace_bytes)
    : stream_(stream), workspace_(workspace), workspace_bytes_(workspace_bytes) {
    const CublasLibrary& lib = cublas();
    cublasLtHandle_t h = nullptr;
    check(lib.create(&h), "cublasLtCreate");
    handle_ = h;
    try {
        cublasLtMatmulDesc_t op = nullptr;
        check(lib.desc_create(&op, CUBLAS_COMPUTE_32F, CUDA_R_32F), "cublasLtMatmulDescCreate");
        op_ = op;
        const cublasOperation_t t = CUBLAS_OP_T, n = CUBLAS_OP_N;
        check(lib.desc_set(op, CUBLASLT_MATMUL_DESC_TRANSA, &t, sizeof t), "cublasLtMatmulDescSetAttribute");
        check(lib.desc_set(op, CUBLASLT_MATMUL_DESC_TRANSB, &n, sizeof n), "cublasLtMatmulDescSetAttribute");
    } catch (...) {
        if (op_) lib.desc_destroy(static_cast<cublasLtMatmulDesc_t>(op_));
        lib.destroy(h);
        throw;
    }
}

Gemm::~Gemm() {
    // A handle exists: the library is open.
    cublas().desc_destroy(static_cast<cublasLtMatmulDesc_t>(op_));
    cublas().destroy(static_cast<cublasLtHandle_t>(handle_));
}

const Gemm::Algorithm& Gemm::algorithm_for(const Shape& s) {
    if (auto it = algorithms_.find(s); it != algorithms_.end()) return it->second;
    const CublasLibrary& lib = cublas();
    cublasLtMatmulPreference_t pref = nullptr;
    check(lib.preference_create(&pref), "cublasLtMatmulPreferenceCreate");
    struct Destroy {
        cublasLtMatmulPreference_t p;
        ~Destroy() { cublas().preference_destroy(p); }
    } destroy{pref};
    const uint64_t workspace = workspace_bytes_;
    // Split-K only where the parts are summed in a fixed order (out of place); never INPLACE's atomics.
    const uint32_t reductions =
        CUBLASLT_REDUCTION_SCHEME_NONE | CUBLASLT_REDUCTION_SCHEME_COMPUTE_TYPE | CUBLASLT_REDUCTION_SCHEME_OUTPUT_TYPE;
    const uint32_t alignment = kAlignment;
    check(lib.preference_set(pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &workspace, sizeof workspace),
          "cublasLtMatmulPreferenceSetAttribute");
    check(lib.preference_set(pref, CUBLASLT_MATMUL_PREF_REDUCTION_SCHEME_MASK, &reductions, sizeof reductions),
          "cublasLtMatmulPreferenceSetAttribute");
    for (const auto attr : {CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES,
                            CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES}) {
        check(lib.preference_set(pref, attr, &alignment, sizeof alignment), "cublasLtMatmulPreferenceSetAttribute");
    }
    const Layout a = weights(s.rows, s.cols), b = activations(s.cols, kTokensPerProduct),
                 c = outputs(s.rows, kTokensPerProduct, s.ldy);
    cublasLtMatmulHeuristicResult_t result{};
    int found = 0;
    check(lib.heuristic(static_cast<cublasLtHandle_t>(handle_), static_cast<cublasLtMatmulDesc_t>(op_), a, b, c, c,
                        pref, 1, &result, &found),
          "cublasLtMatmulAlgoGetHeuristic");
    if (found < 1 || result.state != CUBLAS_STATUS_SUCCESS) {
        throw Error(ErrorCode::Device,
                    fmt::format("cuBLASLt has no algorithm for an f16 product of {} x {} weights ({} f32 outputs a "
                                "row, {} bytes of workspace)",
                                s.rows, s.cols, s.ldy, workspace_bytes_));
    }
    Algorithm algo;
    std::memcpy(algo.data(), &result.algo, sizeof algo);
    return algorithms_.emplace(s, algo).first->second;
}

void Gemm::run(const uint16_t* w, int64_t rows, int64_t cols, const uint16_t* x, int64_t n, float* y, int64_t ldy,
               bool accumulate) {
    if (!aligned(w) || !aligned(x) || !aligned(y) || (cols * 2) % kAlignment != 0 || (ldy * 4) % kAlignment != 0) {
        throw Error(ErrorCode::Internal,
                    fmt::format("prefill product of {} x {} weights: operands and rows must be {}-byte aligned", rows,
                                cols, kAlignment));
    }
    const Algorithm& algo = algorithm_for({rows, cols, ldy});
    const float alpha = 1.f, beta = accumulate ? 1.f : 0.f;
    const Layout a = weights(rows, cols);
    for (int64_t t0 = 0; t0 < n; t0 += kTokensPerProduct) {
        const int64_t nt = std::min(kTokensPerProduct, n - t0);
        const Layout b = activations(cols, nt), c = outputs(rows, nt, ldy);
        float* yt = y + t0 * ldy;
        check(cublas().matmul(static_cast<cublasLtHandle_t>(handle_), static_cast<cublasLtMatmulDesc_t>(op_), &alpha, w,
                              a, x + t0 * cols, b, &beta, yt, c, yt, c,
                              reinterpret_cast<const cublasLtMatmulAlgo_t*>(algo.data()), workspace_, workspace_bytes_,
                              stream_),
              "cublasLtMatmul");
    }
}

std::string Gemm::algorithm(int64_t rows, int64_t cols, int64_t ldy) {
    const auto* algo = reinterpret_cast<const cublasLtMatmulAlgo_t*>(algorithm_for({rows, cols, ldy}).data());
    std::string out;
    struct Field {
        cublasLtMatmulAlgoConfigAttributes_t attr;
        const char* name;
        size_t bytes;  // int32/uint32 but the cluster shape's uint16
    };
    for (const Field& f :
         {Field{CUBLASLT_ALGO_CONFIG_ID, "id", 4}, Field{CUBLASLT_ALGO_CONFIG_TILE_ID, "tile", 4},
          Field{CUBLASLT_ALGO_CONFIG_STAGES_ID, "stages", 4}, Field{CUBLASLT_ALGO_CONFIG_SPLITK_NUM, "split-k", 4},
          Field{CUBLASLT_ALGO_CONFIG_REDUCTION_SCHEME, "reduction", 4},
          Field{CUBLASLT_ALGO_CONFIG_CLUSTER_SHAPE_ID, "cluster", 2}}) {
        uint32_t v = 0;  // little-endian: a 2-byte value lands in the low half
        size_t written = 0;
        const bool ok = cublas().algo_config_get(algo, f.attr, &v, f.bytes, &written) == CUBLAS_STATUS_SUCCESS;
        out += fmt::format("{}{} {}", out.empty() ? "" : ", ", f.name, ok ? std::to_string(v) : "?");
    }
    return out;
}

}  // namespace orcd::cuda
