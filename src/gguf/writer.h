#pragma once
// Writes GGUF v3 files: metadata of every value type, tensors of every type, alignment padding. Tensor data is either
// handed over as bytes or produced by a fill callback straight into the output, in parallel, so that multi-gigabyte
// test models are written without a second copy in memory.
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <span>
#include <string>
#include <vector>

#include "gguf/file.h"
#include "gguf/types.h"

namespace orcd::gguf {

// An owned metadata value (the writer's counterpart of Value).
struct OwnedValue {
    ValueType type = ValueType::U8;
    uint64_t u = 0;
    int64_t i = 0;
    double f = 0.0;
    std::string str;
    // Arrays: elem_type plus exactly one of raw (fixed-size elements, little-endian), strings, arrays.
    ValueType elem_type = ValueType::U8;
    uint64_t count = 0;
    std::vector<std::byte> raw;
    std::vector<std::string> strings;
    std::vector<OwnedValue> arrays;  // each of type Array

    static OwnedValue from(const Value& v);  // deep copy of a value read from a File
    static OwnedValue from(const Array& a);
};

class Writer {
public:
    using Fill = std::function<void(std::span<std::byte> out)>;

    explicit Writer(uint64_t alignment = kDefaultAlignment);

    // Scalars. Setting a key twice replaces its value, keeping its position.
    void set_u8(const std::string& key, uint8_t v);
    void set_i8(const std::string& key, int8_t v);
    void set_u16(const std::string& key, uint16_t v);
    void set_i16(const std::string& key, int16_t v);
    void set_u32(const std::string& key, uint32_t v);
    void set_i32(const std::string& key, int32_t v);
    void set_u64(const std::string& key, uint64_t v);
    void set_i64(const std::string& key, int64_t v);
    void set_f32(const std::string& key, float v);
    void set_f64(const std::string& key, double v);
    void set_bool(const std::string& key, bool v);
    void set_string(const std::string& key, std::string v);
    // Arrays.
    void set_strings(const std::string& key, std::vector<std::string> v);
    void set_f32s(const std::string& key, const std::vector<float>& v);
    void set_i32s(const std::string& key, const std::vector<int32_t>& v);
    void set_u32s(const std::string& key, const std::vector<uint32_t>& v);
    void set(const std::string& key, OwnedValue v);  // any value, including nested arrays
    bool has(const std::string& key) const;

    // Tensors, written in the order added. shape is in GGUF order (ne0 first).
    void add_tensor(std::string name, TensorType type, std::vector<uint64_t> shape, std::vector<std::byte> data);
    void add_tensor(std::string name, TensorType type, std::vector<uint64_t> shape, Fill fill);

    // Serialises everything. write_file() creates the file at its final size, maps it, and runs the fill callbacks on
    // up to `threads` threads (0 = hardware concurrency); on any failure the partial file is removed.
    std::vector<std::byte> to_bytes() const;
    void write_file(const std::filesystem::path& path, unsigned threads = 0) const;

    uint64_t data_offset() const;  // where the tensor data section will start
    uint64_t total_size() const;

private:
    struct Tensor {
        std::string name;
        TensorType type;
        std::vector<uint64_t> shape;
        uint64_t n_bytes;
        uint64_t offset;  // relative to the data section
        std::vector<std::byte> data;
        Fill fill;
    };
    void write_header(std::byte* out) const;
    uint64_t header_size() const;
    void fill_tensors(std::byte* base, unsigned threads) const;

    uint64_t alignment_;
    std::vector<std::pair<std::string, OwnedValue>> kv_;
    std::vector<Tensor> tensors_;
    uint64_t data_bytes_ = 0;  // sum of aligned tensor sizes
};

// Copies every metadata key of `src` (in order) into `w`, except general.alignment, which the writer owns.
void copy_metadata(const File& src, Writer& w);

}  // namespace orcd::gguf
