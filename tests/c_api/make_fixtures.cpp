// Writes the models the C API test reads (the C test cannot use the C++ Writer): valid models of each architecture
// and one broken file per error code a model can produce. Usage: c_api_fixtures DIR
#include <cstdio>
#include <filesystem>
#include <fstream>

#include "common/error.h"
#include "test_models.h"

namespace fs = std::filesystem;
using orcd::testing::TinyModel;

int main(int argc, char** argv) {
    if (argc != 2) {
        std::fprintf(stderr, "usage: %s DIR\n", argv[0]);
        return 2;
    }
    try {
        const fs::path dir = argv[1];
        fs::remove_all(dir);
        fs::create_directories(dir / "dir.gguf");  // a directory where a file is expected
        auto write = [&](const TinyModel& m, const char* name) { orcd::testing::write_tiny(m, dir / name); };
        write(orcd::testing::tiny_llama(), "llama.gguf");
        write(orcd::testing::tiny_qwen2(), "qwen2.gguf");
        write(orcd::testing::tiny_phi3(), "phi3.gguf");

        std::ofstream(dir / "not_gguf.gguf") << "plain text, certainly not a GGUF header";
        write(orcd::testing::tiny_llama(), "truncated.gguf");
        fs::resize_file(dir / "truncated.gguf", fs::file_size(dir / "truncated.gguf") * 2 / 3);
        {
            fs::copy_file(dir / "llama.gguf", dir / "version9.gguf");
            std::fstream f(dir / "version9.gguf", std::ios::in | std::ios::out | std::ios::binary);
            f.seekp(4);
            const char v[4] = {9, 0, 0, 0};  // GGUF version (u32 after the magic)
            f.write(v, 4);
        }
        TinyModel m = orcd::testing::tiny_llama();
        m.extra = {"output_norm.weight"};  // duplicate tensor name
        write(m, "corrupt.gguf");
        m = orcd::testing::tiny_llama();
        m.arch = "mamba";
        write(m, "mamba.gguf");
        m = orcd::testing::tiny_qwen2();
        m.drop = {"blk.0.attn_v.bias"};
        write(m, "missing_tensor.gguf");
        m = orcd::testing::tiny_llama();
        m.reshape["blk.1.attn_q.weight"] = {64, 32};
        write(m, "bad_shape.gguf");
        m = orcd::testing::tiny_llama();
        m.retype["blk.0.attn_output.weight"] = orcd::gguf::TensorType::Q8_1;  // no backend multiplies Q8_1 weights
        write(m, "bad_type.gguf");
        m = orcd::testing::tiny_llama();
        m.drop_keys = {"llama.block_count"};
        write(m, "no_block_count.gguf");
        {
            auto w = orcd::testing::tiny_writer(orcd::testing::tiny_llama());
            w.set_string("llama.context_length", "long");
            w.write_file(dir / "metadata_type.gguf", 1);
        }
        return 0;
    } catch (const orcd::Error& e) {
        std::fprintf(stderr, "c_api_fixtures: %s\n", e.what());
        return 1;
    }
}
