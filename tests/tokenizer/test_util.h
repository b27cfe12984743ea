#pragma once
// Helpers shared by the tokenizer tests: paths into ../shared and the llama.cpp test-vector format.
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "shared_files.h"

namespace orcd::tokenizer::testing {

inline std::filesystem::path shared_dir() { return orcd::test::shared_dir(); }
inline std::filesystem::path vocab_dir() { return shared_dir() / "models" / "vocab"; }

inline std::string read_file(const std::filesystem::path& p) {
    std::ifstream f(p, std::ios::binary);
    if (!f) throw std::runtime_error("cannot open " + p.string());
    std::ostringstream ss;
    ss << f.rdbuf();
    return ss.str();
}

// A .inp file is a sequence of strings, each followed by "\n__ggml_vocab_test__\n"; the newline before the marker
// belongs to the separator, not to the string (so "\n" is written "\n\n__ggml_vocab_test__\n").
inline std::vector<std::string> read_vocab_inputs(const std::filesystem::path& p) {
    const std::string raw = read_file(p);
    static const std::string sep = "\n__ggml_vocab_test__\n";
    std::vector<std::string> out;
    size_t pos = 0;
    while (pos < raw.size()) {
        const size_t next = raw.find(sep, pos);
        if (next == std::string::npos) throw std::runtime_error(p.string() + ": text after the last separator");
        out.push_back(raw.substr(pos, next - pos));
        pos = next + sep.size();
    }
    return out;
}

// A .out file has one line per string: the expected ids separated by spaces (an empty line for no ids).
inline std::vector<std::vector<int32_t>> read_vocab_outputs(const std::filesystem::path& p) {
    std::istringstream in(read_file(p));
    std::vector<std::vector<int32_t>> out;
    std::string line;
    while (std::getline(in, line)) {
        std::istringstream ls(line);
        std::vector<int32_t> ids;
        long long id = 0;
        while (ls >> id) ids.push_back(static_cast<int32_t>(id));
        if (!ls.eof()) throw std::runtime_error(p.string() + ": not a list of ids: " + line);
        out.push_back(std::move(ids));
    }
    return out;
}

}  // namespace orcd::tokenizer::testing
