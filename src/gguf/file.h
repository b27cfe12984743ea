#pragma once
// A parsed, validated GGUF file (v2 or v3). The file is memory-mapped read-only; metadata strings and tensor data are
// views into the mapping, so a File must outlive every view taken from it. Every byte read from the file is
// bounds-checked: a corrupted or hostile file yields orcd::Error (code + message naming the file, the byte offset, the
// key or tensor, what was expected and what was found), never undefined behaviour.
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "common/error.h"
#include "gguf/types.h"

namespace orcd::gguf {

class MappedFile;

inline constexpr uint32_t kMagic = 0x46554747;  // "GGUF" read as little-endian u32
inline constexpr uint64_t kDefaultAlignment = 32;

// An array value. Numeric elements are kept as raw little-endian bytes inside the mapping (possibly unaligned), and
// read through the typed accessors below; string elements are pre-split into views.
struct Array {
    ValueType elem_type = ValueType::U8;
    uint64_t size = 0;
    std::span<const std::byte> raw;         // the elements' bytes, for fixed-size element types
    std::vector<std::string_view> strings;  // for elem_type == String
    std::vector<Array> arrays;              // for elem_type == Array (nested arrays; rare)

    // Element i converted to the requested C++ type. Integer reads check range; float reads accept f32/f64.
    // Throws MetadataType when the element type cannot convert.
    int64_t int_at(uint64_t i) const;
    double float_at(uint64_t i) const;
    // Whole array copied out (for vocabularies: scores, token types, ...). Throws MetadataType on mismatch.
    std::vector<float> to_floats() const;
    std::vector<int32_t> to_i32() const;
};

// One metadata value.
struct Value {
    ValueType type = ValueType::U8;
    uint64_t u = 0;        // unsigned integers and bool (0/1)
    int64_t i = 0;         // signed integers
    double f = 0.0;        // f32 / f64
    std::string_view str;  // string
    Array arr;             // array

    bool is_integer() const;
    bool is_float() const { return type == ValueType::F32 || type == ValueType::F64; }
};

struct KeyValue {
    std::string_view key;
    Value value;
    uint64_t offset = 0;  // absolute byte offset of the key's record in the file (for error messages)
};

struct TensorInfo {
    std::string_view name;
    TensorType type = TensorType::F32;
    std::vector<uint64_t> shape;  // GGUF order: ne0 (the contiguous row length) first
    uint64_t n_elements = 0;
    uint64_t n_bytes = 0;
    uint64_t offset = 0;       // relative to the data section, as stored in the file
    uint64_t file_offset = 0;  // absolute offset of the data in the file
    uint64_t info_offset = 0;  // absolute offset of this tensor's info record (for error messages)

    uint64_t rows() const { return n_elements / shape[0]; }
};

// A shape as error messages write it: "[896, 151936]" (GGUF order).
std::string shape_text(std::span<const uint64_t> shape);

class File {
public:
    // Maps and parses a file. Errors: FileNotFound, FileUnreadable, NotGguf, UnsupportedVersion, Truncated,
    // CorruptFile, UnsupportedTensorType, MetadataType (general.alignment of the wrong type).
    static File open(const std::filesystem::path& path);
    // Parses bytes owned by the caller (which must outlive the File); `name` stands for the path in messages.
    static File parse(std::span<const std::byte> bytes, std::string name);

    File(File&&) noexcept;
    File& operator=(File&&) noexcept;
    ~File();

    const std::string& path() const { return path_; }
    uint32_t version() const { return version_; }
    uint64_t alignment() const { return alignment_; }
    uint64_t data_offset() const { return data_offset_; }  // absolute offset of the tensor data section
    uint64_t size() const { return bytes_.size(); }
    std::span<const std::byte> bytes() const { return bytes_; }

    const std::vector<KeyValue>& metadata() const { return kv_; }
    const Value* find(std::string_view key) const;
    bool has(std::string_view key) const { return find(key) != nullptr; }

    // Typed accessors. The required form throws MetadataMissing naming the key; both forms throw MetadataType naming
    // the key, the expected type and the found type. Integer accessors accept any integer type whose value fits.
    uint64_t get_uint(std::string_view key) const;
    int64_t get_int(std::string_view key) const;
    double get_float(std::string_view key) const;  // f32, f64 (and integers, converted)
    bool get_bool(std::string_view key) const;
    std::string_view get_string(std::string_view key) const;
    const Array& get_array(std::string_view key) const;
    std::optional<uint64_t> get_uint_opt(std::string_view key) const;
    std::optional<int64_t> get_int_opt(std::string_view key) const;
    std::optional<double> get_float_opt(std::string_view key) const;
    std::optional<bool> get_bool_opt(std::string_view key) const;
    std::optional<std::string_view> get_string_opt(std::string_view key) const;
    const Array* get_array_opt(std::string_view key) const;

    const std::vector<TensorInfo>& tensors() const { return tensors_; }
    const TensorInfo* find_tensor(std::string_view name) const;
    std::span<const std::byte> tensor_data(const TensorInfo& t) const {
        return bytes_.subspan(t.file_offset, t.n_bytes);
    }

    // Tells the kernel the given byte range of the mapping will not be needed again (MADV_DONTNEED), so that pages
    // already copied to the device do not stay resident. A no-op for File::parse'd memory.
    void release_pages(uint64_t offset, uint64_t length) const;

private:
    File() = default;
    void parse_all();
    const Value& required(std::string_view key) const;  // throws MetadataMissing naming the key
    template <typename T>
    std::optional<T> if_present(std::string_view key, T (File::*get)(std::string_view) const) const;

    std::string path_;
    std::unique_ptr<MappedFile> map_;
    std::span<const std::byte> bytes_;
    uint32_t version_ = 0;
    uint64_t alignment_ = kDefaultAlignment;
    uint64_t data_offset_ = 0;
    std::vector<KeyValue> kv_;
    std::vector<TensorInfo> tensors_;
    std::unordered_map<std::string_view, size_t> kv_index_;
    std::unordered_map<std::string_view, size_t> tensor_index_;
    friend class Parser;
};

}  // namespace orcd::gguf
