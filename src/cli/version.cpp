#include "cli/version.h"

#include <fmt/format.h>

#include "orcd_build_info.h"
#include "orcd_git_commit.h"

#if ORCD_HAVE_CUDA
#include <cuda_runtime_api.h>
#endif

namespace orcd::cli {

namespace {

#if ORCD_HAVE_CUDA
// CUDA encodes versions as 1000 * major + 10 * minor.
std::string cuda_version_text(int v) { return fmt::format("{}.{}", v / 1000, (v % 1000) / 10); }

std::string cuda_line() {
    int runtime = 0, driver = 0;
    const bool have_runtime = cudaRuntimeGetVersion(&runtime) == cudaSuccess;
    const bool have_driver = cudaDriverGetVersion(&driver) == cudaSuccess && driver > 0;
    return fmt::format("toolkit {}, runtime {}, driver {}", ORCD_CUDA_TOOLKIT_VERSION,
                       have_runtime ? cuda_version_text(runtime) : "unavailable",
                       have_driver ? cuda_version_text(driver) : "none found");
}
#endif

}  // namespace

std::string version_text() {
#if ORCD_HAVE_CUDA
    const std::string cuda = cuda_line();
    const std::string archs = ORCD_CUDA_ARCHITECTURES;
#else
    const std::string cuda = "none (built without CUDA)";
    const std::string archs = "none";
#endif
    const std::string cpu_arch = ORCD_CPU_ARCH_FLAG;
    return fmt::format(
        "orcd {}\n"
        "commit:             {}\n"
        "cuda:               {}\n"
        "cuda architectures: {}\n"
        "build:              {}, {}{}",
        ORCD_VERSION_STRING, ORCD_GIT_COMMIT, cuda, archs, ORCD_BUILD_TYPE, ORCD_COMPILER,
        cpu_arch.empty() ? "" : ", -march=" + cpu_arch);
}

}  // namespace orcd::cli
