#include "backend/cuda/cublas_library.h"

#include <dlfcn.h>
#include <fmt/format.h>

#include <optional>
#include <string>

#include "common/error.h"

namespace orcd::cuda {

namespace {

#define ORCD_CUBLAS_STR2(x) #x
#define ORCD_CUBLAS_STR(x) ORCD_CUBLAS_STR2(x)  // expands the macro before it makes it a string
constexpr const char* kLibraryName = "libcublasLt.so." ORCD_CUBLAS_STR(CUBLAS_VER_MAJOR);

template <typename F>
bool resolve(void* library, const char* file, const char* name, F& out, std::string& error) {
    out = reinterpret_cast<F>(dlsym(library, name));
    if (out == nullptr) error = fmt::format("cannot use cuBLAS: {} has no function {}", file, name);
    return out != nullptr;
}

}  // namespace

std::optional<std::string> open_cublas(const char* file, CublasLibrary& f) {
    // RTLD_LOCAL: cuBLAS's symbols stay out of the global namespace. Never closed: handles live until exit.
    void* library = dlopen(file, RTLD_NOW | RTLD_LOCAL);
    if (library == nullptr) {
        const char* why = dlerror();
        return fmt::format("cannot load cuBLAS ({}), which the CUDA prefill needs: {}", file,
                           why ? why : "unknown reason");
    }
    std::string error;
    const bool ok = resolve(library, file, "cublasLtCreate", f.create, error) &&
                    resolve(library, file, "cublasLtDestroy", f.destroy, error) &&
                    resolve(library, file, "cublasLtMatmulDescCreate", f.desc_create, error) &&
                    resolve(library, file, "cublasLtMatmulDescDestroy", f.desc_destroy, error) &&
                    resolve(library, file, "cublasLtMatmulDescSetAttribute", f.desc_set, error) &&
                    resolve(library, file, "cublasLtMatrixLayoutCreate", f.layout_create, error) &&
                    resolve(library, file, "cublasLtMatrixLayoutDestroy", f.layout_destroy, error) &&
                    resolve(library, file, "cublasLtMatmulPreferenceCreate", f.preference_create, error) &&
                    resolve(library, file, "cublasLtMatmulPreferenceDestroy", f.preference_destroy, error) &&
                    resolve(library, file, "cublasLtMatmulPreferenceSetAttribute", f.preference_set, error) &&
                    resolve(library, file, "cublasLtMatmulAlgoGetHeuristic", f.heuristic, error) &&
                    resolve(library, file, "cublasLtMatmul", f.matmul, error) &&
                    resolve(library, file, "cublasLtMatmulAlgoConfigGetAttribute", f.algo_config_get, error) &&
                    resolve(library, file, "cublasLtGetStatusName", f.status_name, error) &&
                    resolve(library, file, "cublasLtGetStatusString", f.status_string, error);
    if (!ok) return error;
    return std::nullopt;
}

const char* cublas_library_name() { return kLibraryName; }

const CublasLibrary& cublas() {
    struct Loaded {
        CublasLibrary functions{};
        std::optional<std::string> error;
    };
    static const Loaded loaded = [] {  // thread-safe initialization, once
        Loaded l;
        l.error = open_cublas(kLibraryName, l.functions);
        return l;
    }();
    if (loaded.error) throw Error(ErrorCode::Device, *loaded.error);
    return loaded.functions;
}

}  // namespace orcd::cuda
