// Encode throughput of the tokenizers on a few MB of mixed text (English prose, source code, CJK, Cyrillic and Greek,
// numbers, emoji and whitespace runs), generated deterministically. The goal for Qwen is >= 20 MB/s on one core of
// the development machine; docs/PERF.md records the figures.
#include <benchmark/benchmark.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "gguf/file.h"
#include "tokenizer/tokenizer.h"
#include "tokenizer/unicode.h"

namespace {

using orcd::tokenizer::Tokenizer;
namespace fs = std::filesystem;

std::string read_file(const fs::path& p) {
    std::ifstream f(p, std::ios::binary);
    std::ostringstream ss;
    ss << f.rdbuf();
    return ss.str();
}

// Words and code lines taken from the repository's own text, so the mix has a realistic, repeating vocabulary.
struct Sources {
    std::vector<std::string> words;
    std::vector<std::string> code_lines;
};

Sources collect_sources() {
    Sources s;
    const fs::path root(ORCD_SOURCE_DIR);
    for (const auto& entry : fs::recursive_directory_iterator(root / "src")) {
        const auto ext = entry.path().extension();
        if (ext != ".cpp" && ext != ".h") continue;
        std::istringstream in(read_file(entry.path()));
        std::string line;
        while (std::getline(in, line)) {
            if (line.empty()) continue;
            if (line.find("//") != std::string::npos) {
                std::istringstream ws(line.substr(line.find("//") + 2));
                std::string w;
                while (ws >> w) s.words.push_back(w);
            } else {
                s.code_lines.push_back(line);
            }
        }
    }
    for (const char* doc : {"../shared/DESIGN.md", "../shared/README.md"}) {
        std::istringstream ws(read_file(root / doc));
        std::string w;
        while (ws >> w) s.words.push_back(w);
    }
    if (s.words.empty()) s.words = {"the", "quick", "brown", "fox"};
    if (s.code_lines.empty()) s.code_lines = {"int main() { return 0; }"};
    return s;
}

std::string mixed_text(size_t bytes) {
    const Sources src = collect_sources();
    std::mt19937_64 rng(12345);
    auto pick = [&](size_t n) { return static_cast<size_t>(rng() % n); };
    // Zipf-like choice of words: low indices far more often.
    auto zipf_word = [&]() -> const std::string& {
        const double u = std::uniform_real_distribution<double>(0.0, 1.0)(rng);
        const auto i = static_cast<size_t>(std::pow(static_cast<double>(src.words.size()), u)) - 1;
        return src.words[std::min(i, src.words.size() - 1)];
    };
    std::string out;
    out.reserve(bytes + 1024);
    while (out.size() < bytes) {
        const size_t kind = pick(100);
        if (kind < 60) {  // prose
            const size_t n = 5 + pick(30);
            for (size_t i = 0; i < n; ++i) {
                out += zipf_word();
                out += (pick(12) == 0) ? ", " : " ";
            }
            out += ".\n";
        } else if (kind < 75) {  // code
            const size_t n = 1 + pick(8);
            const size_t start = pick(src.code_lines.size());
            for (size_t i = 0; i < n; ++i) out += src.code_lines[(start + i) % src.code_lines.size()] + "\n";
        } else if (kind < 85) {  // CJK: runs of common ideographs and kana
            const size_t n = 4 + pick(30);
            for (size_t i = 0; i < n; ++i) {
                const char32_t cp = pick(4) == 0 ? 0x3041 + pick(0x56) : 0x4E00 + pick(3000);
                orcd::tokenizer::unicode::append_utf8(out, cp);
                if (pick(10) == 0) out += "\xe3\x80\x82";  // 。
            }
            out += "\n";
        } else if (kind < 90) {  // Cyrillic / Greek words
            const size_t n = 3 + pick(10);
            for (size_t i = 0; i < n; ++i) {
                const char32_t base = pick(2) ? 0x0430 : 0x03B1;
                for (size_t k = 2 + pick(8); k > 0; --k) orcd::tokenizer::unicode::append_utf8(out, base + pick(24));
                out += ' ';
            }
            out += "\n";
        } else if (kind < 95) {  // numbers
            out += std::to_string(rng() % 100000) + "." + std::to_string(rng() % 1000) + " ";
        } else {  // emoji and whitespace runs
            for (size_t k = 1 + pick(4); k > 0; --k) orcd::tokenizer::unicode::append_utf8(out, 0x1F600 + pick(80));
            out += std::string(1 + pick(12), pick(2) ? ' ' : '\t');
            out += std::string(pick(3), '\n');
        }
    }
    return out;
}

const std::string& corpus() {
    static const std::string text = mixed_text(4 << 20);
    return text;
}

void bench_encode(benchmark::State& state, const char* vocab) {
    const auto file = orcd::gguf::File::open(fs::path(ORCD_SHARED_DIR) / "models" / "vocab" / vocab);
    const Tokenizer tok = Tokenizer::from_gguf(file);
    const std::string& text = corpus();
    size_t tokens = 0;
    for (auto _ : state) {
        const auto ids = tok.encode(text, false, true);
        tokens = ids.size();
        benchmark::DoNotOptimize(ids.data());
    }
    state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * text.size()));
    state.counters["tokens"] = static_cast<double>(tokens);
    state.counters["MB"] = static_cast<double>(text.size()) / 1e6;
}

void bench_decode(benchmark::State& state, const char* vocab) {
    const auto file = orcd::gguf::File::open(fs::path(ORCD_SHARED_DIR) / "models" / "vocab" / vocab);
    const Tokenizer tok = Tokenizer::from_gguf(file);
    const auto ids = tok.encode(corpus(), false, true);
    for (auto _ : state) {
        const std::string text = tok.decode(ids);
        benchmark::DoNotOptimize(text.data());
    }
    state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * corpus().size()));
}

void bench_load(benchmark::State& state, const char* vocab) {
    const auto file = orcd::gguf::File::open(fs::path(ORCD_SHARED_DIR) / "models" / "vocab" / vocab);
    for (auto _ : state) {
        Tokenizer tok = Tokenizer::from_gguf(file);
        benchmark::DoNotOptimize(&tok);
    }
}

}  // namespace

BENCHMARK_CAPTURE(bench_encode, qwen2_5, "ggml-vocab-qwen2.5.gguf")->Unit(benchmark::kMillisecond)->MinTime(2.0);
BENCHMARK_CAPTURE(bench_encode, phi_3, "ggml-vocab-phi-3.gguf")->Unit(benchmark::kMillisecond)->MinTime(2.0);
BENCHMARK_CAPTURE(bench_decode, qwen2_5, "ggml-vocab-qwen2.5.gguf")->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(bench_load, qwen2_5, "ggml-vocab-qwen2.5.gguf")->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(bench_load, phi_3, "ggml-vocab-phi-3.gguf")->Unit(benchmark::kMillisecond);

BENCHMARK_MAIN();
