#include "test_models.h"

#include <unistd.h>

#include <cctype>
#include <cstring>
#include <fstream>
#include <random>
#include <sstream>

#include "common/error.h"

namespace orcd::testing {

namespace {

using gguf::TensorType;

std::vector<std::byte> random_bytes(uint64_t n, std::mt19937_64& rng) {
    std::vector<std::byte> out(n);
    uint64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        const uint64_t v = rng();
        std::memcpy(out.data() + i, &v, 8);
    }
    for (; i < n; ++i) out[i] = static_cast<std::byte>(rng());
    return out;
}

// F32 data in a sane range, so that a forward pass over these models would not overflow.
std::vector<std::byte> random_f32(uint64_t count, std::mt19937_64& rng) {
    std::uniform_real_distribution<float> d(-0.5f, 0.5f);
    std::vector<std::byte> out(count * 4);
    for (uint64_t i = 0; i < count; ++i) {
        const float v = d(rng);
        std::memcpy(out.data() + i * 4, &v, 4);
    }
    return out;
}

}  // namespace

std::vector<TinyTensor> tiny_tensors(const TinyModel& m) {
    const uint64_t e = m.n_embd, hd = m.head_dim(), q = uint64_t{m.n_heads} * hd, kv = uint64_t{m.n_kv_heads} * hd;
    const TensorType mt = m.matrix_type, f32 = TensorType::F32;
    std::vector<TinyTensor> head = {{"token_embd.weight", mt, {e, m.n_vocab}}, {"output_norm.weight", f32, {e}}};
    if (m.write_output) head.push_back({"output.weight", mt, {e, m.n_vocab}});
    std::vector<TinyTensor> blocks;
    for (uint32_t l = 0; l < m.n_layers; ++l) {
        const std::string p = "blk." + std::to_string(l) + ".";
        blocks.push_back({p + "attn_norm.weight", f32, {e}});
        if (m.arch == "phi3" && m.fused_qkv) {
            blocks.push_back({p + "attn_qkv.weight", mt, {e, q + 2 * kv}});
        } else {
            blocks.push_back({p + "attn_q.weight", mt, {e, q}});
            blocks.push_back({p + "attn_k.weight", mt, {e, kv}});
            blocks.push_back({p + "attn_v.weight", mt, {e, kv}});
        }
        if (m.arch == "qwen2") {
            blocks.push_back({p + "attn_q.bias", f32, {q}});
            blocks.push_back({p + "attn_k.bias", f32, {kv}});
            blocks.push_back({p + "attn_v.bias", f32, {kv}});
        }
        blocks.push_back({p + "attn_output.weight", mt, {q, e}});
        blocks.push_back({p + "ffn_norm.weight", f32, {e}});
        if (m.arch == "phi3" && m.fused_gate_up) {
            blocks.push_back({p + "ffn_up.weight", mt, {e, 2ull * m.n_ff}});
        } else {
            blocks.push_back({p + "ffn_gate.weight", mt, {e, m.n_ff}});
            blocks.push_back({p + "ffn_up.weight", mt, {e, m.n_ff}});
        }
        blocks.push_back({p + "ffn_down.weight", mt, {m.n_ff, e}});
    }
    std::vector<TinyTensor> all;
    if (m.blocks_first) {
        all = blocks;
        all.insert(all.end(), head.begin(), head.end());
    } else {
        all = head;
        all.insert(all.end(), blocks.begin(), blocks.end());
    }
    for (const auto& x : m.extra) all.push_back({x, f32, {e}});
    std::vector<TinyTensor> out;
    for (auto t : all) {
        if (m.drop.contains(t.name)) continue;
        if (auto it = m.reshape.find(t.name); it != m.reshape.end()) t.shape = it->second;
        if (auto it = m.retype.find(t.name); it != m.retype.end()) t.type = it->second;
        out.push_back(std::move(t));
    }
    return out;
}

gguf::Writer tiny_writer(const TinyModel& m) {
    gguf::Writer w;
    auto u32 = [&](const std::string& key, uint32_t v) {
        if (m.drop_keys.contains(key)) return;
        if (auto it = m.override_u32.find(key); it != m.override_u32.end()) v = it->second;
        w.set_u32(key, v);
    };
    if (!m.drop_keys.contains("general.architecture")) w.set_string("general.architecture", m.arch);
    w.set_string("general.name", "tiny-" + m.arch);
    const std::string a = m.arch + ".";
    u32(a + "block_count", m.n_layers);
    u32(a + "embedding_length", m.n_embd);
    u32(a + "feed_forward_length", m.n_ff);
    u32(a + "attention.head_count", m.n_heads);
    u32(a + "attention.head_count_kv", m.n_kv_heads);
    u32(a + "context_length", m.context_length);
    u32(a + "rope.dimension_count", m.head_dim());
    if (!m.drop_keys.contains(a + "attention.layer_norm_rms_epsilon")) {
        w.set_f32(a + "attention.layer_norm_rms_epsilon", 1e-6f);
    }
    if (!m.drop_keys.contains(a + "rope.freq_base")) w.set_f32(a + "rope.freq_base", m.rope_theta);
    std::mt19937_64 rng(m.seed);
    for (const auto& t : tiny_tensors(m)) {
        uint64_t n = 1;
        for (auto d : t.shape) n *= d;
        const auto& tt = gguf::traits(t.type);
        const uint64_t bytes = n / tt.block_elems * tt.block_bytes;
        w.add_tensor(t.name, t.type, t.shape,
                     t.type == TensorType::F32 ? random_f32(n, rng) : random_bytes(bytes, rng));
    }
    return w;
}

std::filesystem::path write_tiny(const TinyModel& m, const std::filesystem::path& path) {
    tiny_writer(m).write_file(path, 1);
    return path;
}

TinyModel tiny_llama() { return TinyModel{}; }

TinyModel tiny_qwen2() {
    TinyModel m;
    m.arch = "qwen2";
    m.n_heads = 8;
    m.n_kv_heads = 2;
    m.write_output = false;
    m.rope_theta = 1000000.0f;
    m.seed = 2;
    return m;
}

TinyModel tiny_phi3() {
    TinyModel m;
    m.arch = "phi3";
    m.n_heads = 4;
    m.n_kv_heads = 4;
    m.n_layers = 3;
    m.seed = 3;
    return m;
}

TempDir::TempDir() {
    std::string tmpl = (std::filesystem::temp_directory_path() / "orcd-test-XXXXXX").string();
    if (!mkdtemp(tmpl.data())) throw Error(ErrorCode::Io, "mkdtemp failed for " + tmpl);
    path_ = tmpl;
}

TempDir::~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
}

bool is_mapped(const std::filesystem::path& path) {
    std::ifstream maps("/proc/self/maps");
    const std::string want = std::filesystem::absolute(path).string();
    std::string line;
    while (std::getline(maps, line)) {
        if (line.size() >= want.size() && line.compare(line.size() - want.size(), want.size(), want) == 0) return true;
    }
    return false;
}

uint64_t mapped_rss_bytes(const std::filesystem::path& path) {
    std::ifstream smaps("/proc/self/smaps");
    const std::string want = std::filesystem::absolute(path).string();
    std::string line;
    bool in_mapping = false;
    uint64_t total_kb = 0;
    while (std::getline(smaps, line)) {
        // A mapping header starts with an address range "start-end perms ..."; its fields follow on "Key: value" lines.
        const bool header = !line.empty() && std::isxdigit(static_cast<unsigned char>(line[0])) &&
                            line.find(':') > line.find('-') && line.find(' ') != std::string::npos &&
                            line.find(" kB") == std::string::npos;
        if (header) {
            in_mapping = line.size() >= want.size() && line.compare(line.size() - want.size(), want.size(), want) == 0;
        } else if (in_mapping && line.rfind("Rss:", 0) == 0) {
            total_kb += std::stoull(line.substr(4));
        }
    }
    return total_kb * 1024;
}

}  // namespace orcd::testing
