#pragma once
// What `orcd --version` prints: the version, the git commit the binary was built from, the CUDA toolkit it was
// compiled with and the runtime and driver it finds now (or "none" for a CPU-only build), the compiled CUDA
// architectures, and the build type and compiler.
#include <string>

namespace orcd::cli {

std::string version_text();

}  // namespace orcd::cli
