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
    bool ok = true;  // each resolve runs only while every earlier one succeeded: error names the first missing
#define ORCD_CUBLASLT_RESOLVE(member, name) ok = ok && resolve(library, file, #name, f.member, error);
    ORCD_CUBLASLT_FUNCTIONS(ORCD_CUBLASLT_RESOLVE)
#undef ORCD_CUBLASLT_RESOLVE
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
