#pragma once
// Builds GGUF bytes field by field, independently of gguf::Writer, and remembers where each field starts so tests can
// corrupt exactly that field.
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <map>
#include <string>
#include <string_view>
#include <vector>

namespace orcd::test {

class GgufBytes {
public:
    std::vector<std::byte> bytes;
    std::map<std::string, size_t> at;  // label -> offset of the field

    template <typename T>
    GgufBytes& put(T v, const std::string& label = "") {
        if (!label.empty()) at[label] = bytes.size();
        const size_t n = bytes.size();
        bytes.resize(n + sizeof(T));
        std::memcpy(bytes.data() + n, &v, sizeof(T));
        return *this;
    }
    GgufBytes& str(std::string_view s, const std::string& label = "") {
        put<uint64_t>(s.size(), label);
        for (char c : s) bytes.push_back(static_cast<std::byte>(c));
        return *this;
    }
    GgufBytes& pad_to(size_t alignment) {
        while (bytes.size() % alignment) bytes.push_back(std::byte{0});
        return *this;
    }
    GgufBytes& zeros(size_t n) {
        bytes.insert(bytes.end(), n, std::byte{0});
        return *this;
    }
    void set_u64(const std::string& label, uint64_t v) { std::memcpy(bytes.data() + at.at(label), &v, 8); }
    void set_u32(const std::string& label, uint32_t v) { std::memcpy(bytes.data() + at.at(label), &v, 4); }
};

// A small valid file: version 3, 4 metadata keys (u32, string, f32 array, string array), 2 tensors (F32 [4,2] and
// Q8_0 [32]), alignment 32. Labels name every count, length, type and offset field.
inline GgufBytes small_valid_file() {
    GgufBytes b;
    b.put<uint32_t>(0x46554747, "magic").put<uint32_t>(3, "version");
    b.put<uint64_t>(2, "tensor_count").put<uint64_t>(4, "kv_count");
    b.str("general.architecture", "kv0.keylen").put<uint32_t>(8, "kv0.type").str("llama", "kv0.strlen");
    b.str("llama.block_count", "kv1.keylen").put<uint32_t>(4, "kv1.type").put<uint32_t>(2, "kv1.value");
    b.str("scores", "kv2.keylen")
        .put<uint32_t>(9, "kv2.type")
        .put<uint32_t>(6, "kv2.elemtype")
        .put<uint64_t>(3, "kv2.count");
    b.put<float>(0.5f).put<float>(-1.0f).put<float>(2.0f);
    b.str("tokens", "kv3.keylen")
        .put<uint32_t>(9, "kv3.type")
        .put<uint32_t>(8, "kv3.elemtype")
        .put<uint64_t>(2, "kv3.count");
    b.str("a", "kv3.s0len").str("bc", "kv3.s1len");
    b.str("w", "t0.namelen").put<uint32_t>(2, "t0.ndims").put<uint64_t>(4, "t0.dim0").put<uint64_t>(2, "t0.dim1");
    b.put<uint32_t>(0, "t0.type").put<uint64_t>(0, "t0.offset");
    b.str("q", "t1.namelen").put<uint32_t>(1, "t1.ndims").put<uint64_t>(32, "t1.dim0");
    b.put<uint32_t>(8, "t1.type").put<uint64_t>(32, "t1.offset");
    b.pad_to(32);
    b.at["data"] = b.bytes.size();
    for (int i = 0; i < 8; ++i) b.put<float>(static_cast<float>(i), i == 0 ? "t0.data" : "");
    b.zeros(0);                          // 32 bytes of F32 data end exactly at the next alignment
    b.put<uint16_t>(0x3c00, "t1.data");  // Q8_0 block: d = 1.0
    for (int i = 0; i < 32; ++i) b.put<int8_t>(static_cast<int8_t>(i - 16));
    return b;
}

}  // namespace orcd::test
