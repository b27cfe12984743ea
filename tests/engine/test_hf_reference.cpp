// The CPU backend against Hugging Face transformers (float64) on tiny synthetic F32 models of each architecture: the
// fixtures in tests/engine/fixtures/ hold the token ids and transformers' logits (tests/reference/hf_reference.py);
// the model is regenerated here from its preset and seed with the same synth writer (byte-identical by design).
//
// Tolerance, per position t: max_i |cpu[t][i] - hf[t][i]| / max_i |hf[t][i]| < 1e-4 (relative to the position's
// largest logit, since element-wise relative error is meaningless for logits near zero), and the same argmax.
#include <fmt/format.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <set>

#include "backend/cpu/cpu_backend.h"
#include "model/model.h"
#include "tiny_models.h"

namespace orcd {
namespace {

namespace fs = std::filesystem;

const fs::path kFixtures = fs::path(ORCD_SOURCE_DIR) / "tests/engine/fixtures";

std::vector<fs::path> fixture_files() {
    std::vector<fs::path> out;
    if (fs::exists(kFixtures)) {
        for (const auto& e : fs::directory_iterator(kFixtures)) {
            if (e.path().extension() == ".json" && e.path().filename().string().starts_with("hf_")) {
                out.push_back(e.path());
            }
        }
    }
    std::sort(out.begin(), out.end());
    return out;
}

TEST(HfReference, CpuLogitsMatchTransformersOnEveryPosition) {
    const auto files = fixture_files();
    // The fixtures are committed (made on the device machine by tests/reference/hf_reference.py); their absence is a
    // failure, not a reason to skip. qwen3's is added when the device has made it (the script handles qwen3).
    ASSERT_GE(files.size(), 3u) << "expected the llama, qwen2 and phi3 transformers fixtures in " << kFixtures
                                << " (regenerate them with tests/reference/hf_reference.py; see the README there)";
    std::set<std::string> archs;
    for (const fs::path& f : files) {
        SCOPED_TRACE(f.filename().string());
        const auto doc = nlohmann::json::parse(std::ifstream(f));
        const std::string preset = doc.at("preset");
        const uint64_t seed = doc.at("seed");
        const uint32_t n_vocab = doc.at("n_vocab");
        const std::vector<backend::TokenId> tokens = doc.at("tokens");
        ASSERT_EQ(n_vocab, 512u) << "fixtures are made with --n-vocab 512 (tiny_model's vocabulary)";
        std::ifstream bin(kFixtures / doc.at("logits_file").get<std::string>(), std::ios::binary);
        std::vector<float> ref(tokens.size() * n_vocab);
        bin.read(reinterpret_cast<char*>(ref.data()), static_cast<std::streamsize>(ref.size() * sizeof(float)));
        ASSERT_EQ(static_cast<size_t>(bin.gcount()), ref.size() * sizeof(float)) << "truncated logits file";

        const fs::path model_path = test::tiny_model(preset, synth::FileType::F32, seed);
        {
            // The same bytes transformers read, or the comparison means nothing.
            std::ifstream mf(model_path, std::ios::binary);
            const std::string bytes((std::istreambuf_iterator<char>(mf)), std::istreambuf_iterator<char>());
            uint64_t h = 0xcbf29ce484222325ull;
            for (unsigned char ch : bytes) h = (h ^ ch) * 0x100000001b3ull;
            ASSERT_EQ(fmt::format("{:016x}", h), doc.at("file_fnv1a64").get<std::string>())
                << "the synth writer no longer writes the model the fixture was made from: regenerate the fixtures";
        }
        const model::Model m = model::open_model(model_path);
        archs.insert(m.config.arch_name);
        ASSERT_EQ(m.config.n_vocab, n_vocab);
        auto be = backend::cpu::make_cpu_backend(m, {.n_threads = 2});
        auto seq = be->new_sequence({.n_ctx = static_cast<uint32_t>(tokens.size())});
        const auto got = seq->prefill(tokens, /*all_logits=*/true);
        double worst = 0;
        for (size_t t = 0; t < tokens.size(); ++t) {
            const float* g = got.data() + t * n_vocab;
            const float* r = ref.data() + t * n_vocab;
            double scale = 0, err = 0;
            for (size_t i = 0; i < n_vocab; ++i) {
                scale = std::max(scale, std::fabs(double(r[i])));
                err = std::max(err, std::fabs(double(g[i]) - r[i]));
            }
            worst = std::max(worst, err / scale);
            EXPECT_LT(err / scale, 1e-4) << "position " << t;
            EXPECT_EQ(std::max_element(g, g + n_vocab) - g, std::max_element(r, r + n_vocab) - r) << "position " << t;
        }
        std::printf("%s (%s): worst relative error %.2e over %zu positions\n", preset.c_str(),
                    m.config.arch_name.c_str(), worst, tokens.size());
    }
    // At least these three architectures are covered.
    for (const char* a : {"llama", "qwen2", "phi3"}) EXPECT_TRUE(archs.contains(a)) << a;
}

}  // namespace
}  // namespace orcd
