#pragma once
// ../shared (vocab GGUFs, tokenizer files, chat templates) is not part of the repository. A checkout without it still
// runs every test: those that need one of its files skip and name the file. The folder is the build's ../shared
// (ORCD_SHARED_DIR), or the environment's ORCD_TEST_SHARED when set, which is how the skips themselves are checked
// (ORCD_TEST_SHARED=/nonexistent ctest ...).
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>

namespace orcd::test {

inline std::filesystem::path shared_dir() {
    const char* env = std::getenv("ORCD_TEST_SHARED");
    return (env != nullptr && *env != '\0') ? std::filesystem::path(env) : std::filesystem::path(ORCD_SHARED_DIR);
}

// A file or folder inside ../shared, e.g. shared_path("models/vocab/ggml-vocab-qwen2.5.gguf").
inline std::filesystem::path shared_path(const std::filesystem::path& relative) { return shared_dir() / relative; }

}  // namespace orcd::test

// Skips the current test (called from its body or its fixture's SetUp) when `path` from ../shared is absent.
#define ORCD_SKIP_WITHOUT_SHARED(path)                                                                  \
    do {                                                                                                \
        if (!std::filesystem::exists(path)) {                                                           \
            GTEST_SKIP() << "SKIP: " << (path).string() << " is absent (../shared is not checked out)"; \
        }                                                                                               \
    } while (0)
