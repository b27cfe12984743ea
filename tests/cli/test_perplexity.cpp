// `orcd perplexity` as a user runs it, on a tiny synth model with the CPU backend: llama-perplexity's windows
// (-c 32 over a 121-token text: 3 windows, positions 16..30 of each scored) against the per-position NLLs of
// `--json`. The first window starts where the file starts (this vocabulary adds no BOS), so its running PPL must be
// exp of the mean of --json's NLLs at positions 16..30; the later windows start from an empty cache, which --json's
// one sequence does not, so they are covered by the engine test (tests/engine/test_perplexity.cpp).
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <regex>
#include <unistd.h>

#include "run.h"
#include "shared_files.h"

namespace {

namespace fs = std::filesystem;
const std::string kOrcd = ORCD_BINARY;
const fs::path kVocab = orcd::test::shared_path("models/vocab/ggml-vocab-qwen2.5.gguf");

std::string slurp(const fs::path& p) {
    std::ifstream in(p);
    return {std::istreambuf_iterator<char>(in), {}};
}

TEST(PerplexityCli, FirstWindowMatchesJsonPositionsAndFinalLineHasTheError) {
    ORCD_SKIP_WITHOUT_SHARED(kVocab);
    const fs::path dir = fs::temp_directory_path() / ("orcd_ppl_" + std::to_string(::getpid()));
    fs::create_directories(dir);
    const std::string model = (dir / "tiny.gguf").string(), text = (dir / "t.txt").string();
    auto r = orcd::test::run(kOrcd + " synth --preset qwen2.5-tiny --type F32 --vocab '" + kVocab.string() + "' -o '" +
                             model + "' 2>&1");
    ASSERT_EQ(r.exit_code, 0) << r.out;
    {
        std::ofstream out(text);
        for (int i = 0; i < 12; ++i) out << "The quick brown fox jumps over the lazy dog. ";
    }
    const std::string common = " perplexity -m '" + model + "' -f '" + text + "' --device cpu -t 2";
    r = orcd::test::run(kOrcd + common + " -c 32 2>'" + (dir / "err.txt").string() + "'");
    ASSERT_EQ(r.exit_code, 0) << r.out;
    const std::string progress = slurp(dir / "err.txt");

    std::smatch m;
    ASSERT_TRUE(std::regex_search(progress, m, std::regex(R"(\[1/3\] PPL so far ([0-9.]+))"))) << progress;
    const double first_window = std::stod(m[1]);
    EXPECT_NE(progress.find("[3/3] PPL so far"), std::string::npos) << progress;
    ASSERT_TRUE(std::regex_search(r.out, m, std::regex(R"(Final estimate: PPL = ([0-9.]+) \+/- ([0-9.]+))"))) << r.out;
    EXPECT_GT(std::stod(m[2]), 0.0);
    EXPECT_NE(r.out.find("3 windows of 32, 45 scored"), std::string::npos) << r.out;

    const auto j = orcd::test::run(kOrcd + common + " --json");
    ASSERT_EQ(j.exit_code, 0) << j.out;
    const auto doc = nlohmann::json::parse(j.out);
    ASSERT_EQ(doc["tokens"].size(), 121u);
    double sum = 0;
    for (size_t pos = 16; pos <= 30; ++pos) sum += doc["nll"][pos].get<double>();
    const double want = std::exp(sum / 15.0);
    EXPECT_NEAR(first_window, want, 1e-4 + 1e-6 * want);  // printed with 4 decimals

    // Too short for two windows of the default 512: a clear error naming the sizes and the flag.
    r = orcd::test::run(kOrcd + common + " 2>&1");
    EXPECT_EQ(r.exit_code, 1);
    EXPECT_NE(r.out.find("is 121 tokens; windows of --ctx-size 512 need at least 1024"), std::string::npos) << r.out;
    fs::remove_all(dir);
}

}  // namespace
