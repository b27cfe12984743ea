#pragma once
// Small models of every supported architecture, built in the test with the GGUF Writer. Tensor names and shapes are
// written out here by hand (not derived from src/model's tables), so the tests check the registry against an
// independent statement of each architecture's layout. Data is seeded random bytes: the loader moves bytes, and the
// checksums and comparisons see every one of them.
#include <cstdint>
#include <filesystem>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "gguf/types.h"
#include "gguf/writer.h"

namespace orcd::testing {

struct TinyModel {
    std::string arch = "llama";  // llama | qwen2 | phi3 (anything else is written as-is, for the unsupported case)
    uint32_t n_layers = 2;
    uint32_t n_embd = 64;
    uint32_t n_ff = 160;
    uint32_t n_heads = 4;
    uint32_t n_kv_heads = 2;
    uint32_t n_vocab = 300;
    uint32_t context_length = 256;
    float rope_theta = 10000.0f;
    gguf::TensorType matrix_type = gguf::TensorType::F32;
    bool write_output = true;   // false: tied embeddings (no output.weight)
    bool fused_qkv = true;      // phi3 only
    bool fused_gate_up = true;  // phi3 only
    bool blocks_first = false;  // write the blocks before token_embd (the arena must still follow file order)
    uint64_t seed = 1;

    // Mutations for the error paths.
    std::set<std::string> drop;                            // tensor names not written
    std::map<std::string, std::vector<uint64_t>> reshape;  // name -> shape written instead
    std::map<std::string, gguf::TensorType> retype;        // name -> type written instead
    std::vector<std::string> extra;                        // extra F32 [n_embd] tensors the architecture lacks
    std::set<std::string> drop_keys;                       // metadata keys not written
    std::map<std::string, uint32_t> override_u32;          // metadata u32 keys written with another value

    uint32_t head_dim() const { return n_embd / n_heads; }
};

// The tensors a TinyModel writes, in file order (after mutations), as {name, type, shape}.
struct TinyTensor {
    std::string name;
    gguf::TensorType type;
    std::vector<uint64_t> shape;
};
std::vector<TinyTensor> tiny_tensors(const TinyModel& m);

gguf::Writer tiny_writer(const TinyModel& m);
std::filesystem::path write_tiny(const TinyModel& m, const std::filesystem::path& path);

// Presets matching the reference models' structure at a small size.
TinyModel tiny_llama();
TinyModel tiny_qwen2();  // tied output, QKV biases, rope theta 1e6, GQA
TinyModel tiny_phi3();   // fused attn_qkv and ffn_up, MHA

// A fresh directory under the system temp dir, removed by the destructor.
class TempDir {
public:
    TempDir();
    ~TempDir();
    TempDir(const TempDir&) = delete;
    TempDir& operator=(const TempDir&) = delete;
    const std::filesystem::path& path() const { return path_; }
    std::filesystem::path operator/(const std::string& name) const { return path_ / name; }

private:
    std::filesystem::path path_;
};

// True when /proc/self/maps has a mapping of `path` (proves a failed load released its mapping).
bool is_mapped(const std::filesystem::path& path);
// Resident bytes of this process's mappings of `path` (/proc/self/smaps "Rss"): pages dropped with MADV_DONTNEED no
// longer count.
uint64_t mapped_rss_bytes(const std::filesystem::path& path);

}  // namespace orcd::testing
