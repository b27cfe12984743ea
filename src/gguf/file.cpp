#include "gguf/file.h"

#include <algorithm>
#include <bit>
#include <cstring>
#include <fmt/format.h>
#include <limits>

#include "common/join.h"
#include "gguf/mapped_file.h"

namespace orcd::gguf {

namespace {

// Bounds that keep a hostile file from making the parser allocate or recurse without limit. Each is far above what
// any real model uses.
constexpr uint64_t kMaxKeyBytes = 65535;      // the specification's limit for a key
constexpr uint64_t kMaxTensorNameBytes = 64;  // GGML_MAX_NAME in the specification
constexpr int kMaxArrayDepth = 8;             // nested arrays
constexpr uint32_t kMaxDims = 4;

// The fewest bytes one record can take, used to bound counts by the bytes left before anything is allocated.
constexpr uint64_t kMinKvBytes = 8 + 1 + 4 + 1;                  // key length, 1-byte key, type, 1-byte value
constexpr uint64_t kMinTensorInfoBytes = 8 + 1 + 4 + 8 + 4 + 8;  // name length, name, n_dims, 1 dim, type, offset

bool checked_mul(uint64_t a, uint64_t b, uint64_t& out) { return !__builtin_mul_overflow(a, b, &out); }
bool checked_add(uint64_t a, uint64_t b, uint64_t& out) { return !__builtin_add_overflow(a, b, &out); }

std::string printable(std::string_view s) {
    // Keys and names come from the file: show them without letting control bytes mangle a terminal.
    std::string out;
    for (unsigned char c : s.substr(0, 96)) {
        if (c >= 0x20 && c < 0x7f)
            out.push_back(static_cast<char>(c));
        else
            out += fmt::format("\\x{:02x}", c);
    }
    if (s.size() > 96) out += "...";
    return out;
}

}  // namespace

std::string shape_text(std::span<const uint64_t> shape) {
    std::string out = "[";  // appended, not "[" + ... + "]": GCC 12 reports a false -Wrestrict on that form here
    out += join(shape, ", ", [](uint64_t d) { return std::to_string(d); });
    out += ']';
    return out;
}

// Reads the file front to back. Every read goes through take(), which checks the bytes exist first.
class Parser {
public:
    Parser(File& f) : f_(f), bytes_(f.bytes_) {}

    void run() {
        parse_header();
        parse_metadata();
        parse_alignment();
        parse_tensor_infos();
        place_data_section();
        check_tensor_data();
    }

private:
    [[noreturn]] void fail(ErrorCode code, uint64_t at, const std::string& what) const {
        throw Error(code, fmt::format("{}: at byte {}: {}", f_.path_, at, what));
    }

    const std::byte* take(uint64_t n, std::string_view what) {
        if (n > bytes_.size() - pos_) {
            fail(ErrorCode::Truncated, pos_,
                 fmt::format("file truncated while reading {}: need {} bytes, only {} remain (file size {})", what, n,
                             bytes_.size() - pos_, bytes_.size()));
        }
        const std::byte* p = bytes_.data() + pos_;
        pos_ += n;
        return p;
    }

    template <typename T>
    T read(std::string_view what) {
        T v;
        std::memcpy(&v, take(sizeof(T), what), sizeof(T));  // memcpy: the file gives no alignment guarantee
        return v;
    }

    uint64_t remaining() const { return bytes_.size() - pos_; }

    std::string_view read_string(std::string_view what, uint64_t max_len) {
        const uint64_t at = pos_;
        const uint64_t len = read<uint64_t>(what);
        if (len > max_len) {
            fail(ErrorCode::CorruptFile, at,
                 fmt::format("{}: length {} exceeds the limit of {} bytes", what, len, max_len));
        }
        if (len > remaining()) {
            fail(ErrorCode::Truncated, at,
                 fmt::format("{}: length {} runs past the end of the file ({} bytes remain)", what, len, remaining()));
        }
        const char* p = reinterpret_cast<const char*>(take(len, what));
        return {p, len};
    }

    void parse_header() {
        if (bytes_.size() < 4) {
            fail(ErrorCode::Truncated, 0, fmt::format("file is {} bytes, too short for the GGUF magic", bytes_.size()));
        }
        const uint32_t magic = read<uint32_t>("magic");
        if (magic != kMagic) {
            const auto* b = reinterpret_cast<const unsigned char*>(bytes_.data());
            fail(ErrorCode::NotGguf, 0,
                 fmt::format("not a GGUF file: expected magic 'GGUF' (47 47 55 46), found {:02x} {:02x} {:02x} {:02x}",
                             b[0], b[1], b[2], b[3]));
        }
        const uint64_t at = pos_;
        f_.version_ = read<uint32_t>("version");
        if (f_.version_ != 2 && f_.version_ != 3) {
            const bool swapped = __builtin_bswap32(f_.version_) == 2 || __builtin_bswap32(f_.version_) == 3;
            fail(ErrorCode::UnsupportedVersion, at,
                 fmt::format("GGUF version {} is not supported (expected 2 or 3){}", f_.version_,
                             swapped ? "; this looks like a big-endian file" : ""));
        }
        count_at_ = pos_;
        tensor_count_ = read<uint64_t>("tensor count");
        kv_count_at_ = pos_;
        kv_count_ = read<uint64_t>("metadata key/value count");
        // Bound both counts by what the rest of the file could hold, before reserving anything.
        if (kv_count_ > remaining() / kMinKvBytes) {
            fail(ErrorCode::CorruptFile, kv_count_at_,
                 fmt::format("metadata count {} exceeds what the remaining {} bytes can hold", kv_count_, remaining()));
        }
        if (tensor_count_ > remaining() / kMinTensorInfoBytes) {
            fail(ErrorCode::CorruptFile, count_at_,
                 fmt::format("tensor count {} exceeds what the remaining {} bytes can hold", tensor_count_,
                             remaining()));
        }
    }

    ValueType read_type(std::string_view what) {
        const uint64_t at = pos_;
        const uint32_t raw = read<uint32_t>(what);
        if (!value_type_known(raw)) {
            fail(ErrorCode::CorruptFile, at, fmt::format("{}: unknown value type {} (expected 0..12)", what, raw));
        }
        return static_cast<ValueType>(raw);
    }

    void read_scalar(ValueType t, Value& v, std::string_view key) {
        const uint64_t at = pos_;
        switch (t) {
            case ValueType::U8: v.u = read<uint8_t>(key); break;
            case ValueType::U16: v.u = read<uint16_t>(key); break;
            case ValueType::U32: v.u = read<uint32_t>(key); break;
            case ValueType::U64: v.u = read<uint64_t>(key); break;
            case ValueType::I8: v.i = read<int8_t>(key); break;
            case ValueType::I16: v.i = read<int16_t>(key); break;
            case ValueType::I32: v.i = read<int32_t>(key); break;
            case ValueType::I64: v.i = read<int64_t>(key); break;
            case ValueType::F32: v.f = read<float>(key); break;
            case ValueType::F64: v.f = read<double>(key); break;
            case ValueType::Bool: {
                const uint8_t b = read<uint8_t>(key);
                if (b > 1)
                    fail(ErrorCode::CorruptFile, at,
                         fmt::format("key '{}': bool value {} is not 0 or 1", printable(key), b));
                v.u = b;
                break;
            }
            case ValueType::String:
                v.str = read_string(fmt::format("string value of key '{}'", printable(key)),
                                    std::numeric_limits<uint64_t>::max());
                break;
            case ValueType::Array: break;  // handled by read_array
        }
    }

    void read_array(Array& a, std::string_view key, int depth) {
        if (depth > kMaxArrayDepth) {
            fail(ErrorCode::CorruptFile, pos_,
                 fmt::format("key '{}': arrays nested deeper than {} levels", printable(key), kMaxArrayDepth));
        }
        a.elem_type = read_type(fmt::format("element type of array '{}'", printable(key)));
        const uint64_t count_at = pos_;
        a.size = read<uint64_t>("array length");
        const uint64_t elem = value_type_size(a.elem_type);
        // Strings take at least their 8-byte length, nested arrays their 12-byte header.
        const uint64_t min_elem = elem ? elem : (a.elem_type == ValueType::String ? 8 : 12);
        if (a.size > remaining() / min_elem) {
            fail(ErrorCode::CorruptFile, count_at,
                 fmt::format("key '{}': array of {} {} elements cannot fit in the remaining {} bytes", printable(key),
                             a.size, value_type_name(a.elem_type), remaining()));
        }
        if (elem) {
            a.raw = {take(a.size * elem, key), a.size * elem};
            if (a.elem_type == ValueType::Bool) {
                for (uint64_t i = 0; i < a.size; ++i) {
                    if (static_cast<uint8_t>(a.raw[i]) > 1) {
                        fail(ErrorCode::CorruptFile, pos_ - a.size + i,
                             fmt::format("key '{}': element {} of bool array is {}, not 0 or 1", printable(key), i,
                                         static_cast<unsigned>(a.raw[i])));
                    }
                }
            }
        } else if (a.elem_type == ValueType::String) {
            a.strings.reserve(a.size);
            for (uint64_t i = 0; i < a.size; ++i) {
                a.strings.push_back(read_string(fmt::format("element {} of string array '{}'", i, printable(key)),
                                                std::numeric_limits<uint64_t>::max()));
            }
        } else {
            a.arrays.resize(a.size);
            for (uint64_t i = 0; i < a.size; ++i) read_array(a.arrays[i], key, depth + 1);
        }
    }

    // How a table's messages name its entries: "key" of "metadata entry" 3; a repeated "metadata key".
    struct TableNames {
        std::string_view entry;
        std::string_view field;
        std::string_view repeated;
    };

    // Reads the `count` entries of one of the file's tables (metadata, tensor infos) into `entries` and `index`. Each
    // entry starts with its name (a key, a tensor's name), at most max_bytes, not empty and unique in the table;
    // read_rest reads what follows it. The entry's name and its record's byte offset go to the members `name` and
    // `offset`.
    template <typename Entry, typename ReadRest>
    void parse_table(uint64_t count, std::vector<Entry>& entries, std::unordered_map<std::string_view, size_t>& index,
                     const TableNames& names, uint64_t max_bytes, std::string_view Entry::*name,
                     uint64_t Entry::*offset, ReadRest read_rest) {
        entries.reserve(count);
        for (uint64_t n = 0; n < count; ++n) {
            Entry e;
            e.*offset = pos_;
            e.*name = read_string(fmt::format("{} of {} {}", names.field, names.entry, n), max_bytes);
            if ((e.*name).empty()) {
                fail(ErrorCode::CorruptFile, e.*offset,
                     fmt::format("{} {} has an empty {}", names.entry, n, names.field));
            }
            read_rest(e);
            const auto [first, inserted] = index.emplace(e.*name, entries.size());
            if (!inserted) {
                fail(ErrorCode::CorruptFile, e.*offset,
                     fmt::format("duplicate {} '{}' (first at byte {})", names.repeated, printable(e.*name),
                                 entries[first->second].*offset));
            }
            entries.push_back(std::move(e));
        }
    }

    void parse_metadata() {
        parse_table(kv_count_, f_.kv_, f_.kv_index_, {"metadata entry", "key", "metadata key"}, kMaxKeyBytes,
                    &KeyValue::key, &KeyValue::offset, [this](KeyValue& kv) {
                        kv.value.type = read_type(fmt::format("type of key '{}'", printable(kv.key)));
                        if (kv.value.type == ValueType::Array)
                            read_array(kv.value.arr, kv.key, 1);
                        else
                            read_scalar(kv.value.type, kv.value, kv.key);
                    });
    }

    void parse_alignment() {
        const Value* v = f_.find("general.alignment");
        if (v == nullptr) return;
        const uint64_t at = f_.kv_[f_.kv_index_.at("general.alignment")].offset;
        if (!v->is_integer() || v->type == ValueType::Bool) {
            fail(ErrorCode::MetadataType, at,
                 fmt::format("key 'general.alignment': expected u32, found {}", value_type_name(v->type)));
        }
        const bool negative = (v->type == ValueType::I8 || v->type == ValueType::I16 || v->type == ValueType::I32 ||
                               v->type == ValueType::I64) &&
                              v->i < 0;
        const uint64_t a = negative ? 0 : (v->u ? v->u : static_cast<uint64_t>(v->i));
        if (a == 0 || !std::has_single_bit(a) || a > (1u << 30)) {
            fail(ErrorCode::CorruptFile, at,
                 fmt::format("key 'general.alignment': expected a power of two between 1 and 2^30, found {}",
                             negative ? v->i : static_cast<int64_t>(a)));
        }
        f_.alignment_ = a;
    }

    void parse_tensor_infos() {
        parse_table(tensor_count_, f_.tensors_, f_.tensor_index_, {"tensor", "name", "tensor name"},
                    kMaxTensorNameBytes, &TensorInfo::name, &TensorInfo::info_offset,
                    [this](TensorInfo& t) { read_tensor_info(t); });
    }

    // A tensor info's fields after its name: dimensions, type and data offset.
    void read_tensor_info(TensorInfo& t) {
        const std::string who = fmt::format("tensor '{}'", printable(t.name));
        const uint64_t dims_at = pos_;
        const uint32_t n_dims = read<uint32_t>("n_dims");
        if (n_dims < 1 || n_dims > kMaxDims) {
            fail(ErrorCode::CorruptFile, dims_at,
                 fmt::format("{}: n_dims {} out of range (expected 1..{})", who, n_dims, kMaxDims));
        }
        t.shape.resize(n_dims);
        t.n_elements = 1;
        for (uint32_t d = 0; d < n_dims; ++d) {
            const uint64_t at = pos_;
            t.shape[d] = read<uint64_t>("dimension");
            if (t.shape[d] == 0) fail(ErrorCode::CorruptFile, at, fmt::format("{}: dimension {} is 0", who, d));
            if (!checked_mul(t.n_elements, t.shape[d], t.n_elements) || t.n_elements > (uint64_t{1} << 62)) {
                fail(ErrorCode::CorruptFile, at, fmt::format("{}: element count overflows", who));
            }
        }
        const uint64_t type_at = pos_;
        const uint32_t raw_type = read<uint32_t>("tensor type");
        const std::optional<TypeTraits> tt = type_traits(raw_type);
        if (!tt) {
            const std::string_view name = ggml_type_name(raw_type);
            fail(ErrorCode::UnsupportedTensorType, type_at,
                 name.empty() ? fmt::format("{}: unknown tensor type id {} (not a GGML type; this version reads {})",
                                            who, raw_type, readable_type_list())
                              : fmt::format("{}: tensor type {} (GGML id {}) is not supported; this version reads {}. "
                                            "Convert the model to one of those (e.g. Q4_K_M with llama.cpp's "
                                            "llama-quantize)",
                                            who, name, raw_type, readable_type_list()));
        }
        t.type = tt->type;
        if (t.shape[0] % tt->block_elems != 0) {
            fail(ErrorCode::CorruptFile, dims_at,
                 fmt::format("{}: row length {} is not a multiple of {}'s block size {}", who, t.shape[0], tt->name,
                             tt->block_elems));
        }
        t.n_bytes = t.n_elements / tt->block_elems * tt->block_bytes;  // < 2^62 * 292/256: no overflow
        const uint64_t off_at = pos_;
        t.offset = read<uint64_t>("tensor data offset");
        if (t.offset % f_.alignment_ != 0) {
            fail(ErrorCode::CorruptFile, off_at,
                 fmt::format("{}: data offset {} is not a multiple of the alignment {}", who, t.offset, f_.alignment_));
        }
    }

    void place_data_section() {
        // The data section starts at the next multiple of the alignment after the tensor infos.
        const uint64_t a = f_.alignment_;
        f_.data_offset_ = (pos_ + a - 1) / a * a;
        if (!f_.tensors_.empty() && f_.data_offset_ > bytes_.size()) {
            fail(ErrorCode::Truncated, pos_,
                 fmt::format("data section would start at byte {}, past the end of the file (size {})", f_.data_offset_,
                             bytes_.size()));
        }
    }

    void check_tensor_data() {
        for (TensorInfo& t : f_.tensors_) {
            uint64_t end = 0;
            if (!checked_add(f_.data_offset_, t.offset, t.file_offset) || !checked_add(t.file_offset, t.n_bytes, end) ||
                end > bytes_.size()) {
                fail(ErrorCode::Truncated, t.info_offset,
                     fmt::format("tensor '{}': data at offset {} + {} bytes runs past the end of the file (data "
                                 "section at byte {}, file size {})",
                                 printable(t.name), t.offset, t.n_bytes, f_.data_offset_, bytes_.size()));
            }
        }
        std::vector<const TensorInfo*> by_offset;
        by_offset.reserve(f_.tensors_.size());
        for (const TensorInfo& t : f_.tensors_) by_offset.push_back(&t);
        std::sort(by_offset.begin(), by_offset.end(),
                  [](const TensorInfo* a, const TensorInfo* b) { return a->offset < b->offset; });
        for (size_t i = 1; i < by_offset.size(); ++i) {
            const TensorInfo& prev = *by_offset[i - 1];
            const TensorInfo& cur = *by_offset[i];
            if (prev.offset + prev.n_bytes > cur.offset) {
                fail(ErrorCode::CorruptFile, cur.info_offset,
                     fmt::format("tensor '{}' data [{}, {}) overlaps tensor '{}' data [{}, {})", printable(cur.name),
                                 cur.offset, cur.offset + cur.n_bytes, printable(prev.name), prev.offset,
                                 prev.offset + prev.n_bytes));
            }
        }
    }

    File& f_;
    std::span<const std::byte> bytes_;
    uint64_t pos_ = 0;
    uint64_t count_at_ = 0, kv_count_at_ = 0;
    uint64_t tensor_count_ = 0, kv_count_ = 0;
};

// ---- Value / Array ---------------------------------------------------------------------------------------------------

bool Value::is_integer() const {
    switch (type) {
        case ValueType::U8:
        case ValueType::U16:
        case ValueType::U32:
        case ValueType::U64:
        case ValueType::I8:
        case ValueType::I16:
        case ValueType::I32:
        case ValueType::I64: return true;
        default: return false;
    }
}

namespace {

template <typename T>
T load(const std::byte* p) {
    T v;
    std::memcpy(&v, p, sizeof(T));
    return v;
}

[[noreturn]] void array_type_error(const Array& a, std::string_view wanted) {
    throw Error(ErrorCode::MetadataType,
                fmt::format("array element type: expected {}, found {}", wanted, value_type_name(a.elem_type)));
}

}  // namespace

int64_t Array::int_at(uint64_t i) const {
    if (i >= size) throw Error(ErrorCode::InvalidArgument, fmt::format("array index {} out of range ({})", i, size));
    const std::byte* p = raw.data() + i * value_type_size(elem_type);
    switch (elem_type) {
        case ValueType::U8: return load<uint8_t>(p);
        case ValueType::I8: return load<int8_t>(p);
        case ValueType::U16: return load<uint16_t>(p);
        case ValueType::I16: return load<int16_t>(p);
        case ValueType::U32: return load<uint32_t>(p);
        case ValueType::I32: return load<int32_t>(p);
        case ValueType::I64: return load<int64_t>(p);
        case ValueType::Bool: return load<uint8_t>(p);
        case ValueType::U64: {
            const uint64_t v = load<uint64_t>(p);
            if (v > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
                throw Error(ErrorCode::MetadataType, fmt::format("array element {} = {} does not fit in i64", i, v));
            }
            return static_cast<int64_t>(v);
        }
        default: array_type_error(*this, "an integer type");
    }
}

double Array::float_at(uint64_t i) const {
    if (i >= size) throw Error(ErrorCode::InvalidArgument, fmt::format("array index {} out of range ({})", i, size));
    const std::byte* p = raw.data() + i * value_type_size(elem_type);
    if (elem_type == ValueType::F32) return load<float>(p);
    if (elem_type == ValueType::F64) return load<double>(p);
    array_type_error(*this, "f32 or f64");
}

std::vector<float> Array::to_floats() const {
    if (elem_type != ValueType::F32 && elem_type != ValueType::F64) array_type_error(*this, "f32 or f64");
    std::vector<float> out(size);
    for (uint64_t i = 0; i < size; ++i) out[i] = static_cast<float>(float_at(i));
    return out;
}

std::vector<int32_t> Array::to_i32() const {
    std::vector<int32_t> out(size);
    for (uint64_t i = 0; i < size; ++i) {
        const int64_t v = int_at(i);
        if (v < std::numeric_limits<int32_t>::min() || v > std::numeric_limits<int32_t>::max()) {
            throw Error(ErrorCode::MetadataType, fmt::format("array element {} = {} does not fit in i32", i, v));
        }
        out[i] = static_cast<int32_t>(v);
    }
    return out;
}

// ---- File ------------------------------------------------------------------------------------------------------------

File File::open(const std::filesystem::path& path) {
    File f;
    f.path_ = path.string();
    f.map_ = std::make_unique<MappedFile>(path);
    f.bytes_ = f.map_->bytes();
    f.parse_all();
    return f;
}

File File::parse(std::span<const std::byte> bytes, std::string name) {
    File f;
    f.path_ = std::move(name);
    f.bytes_ = bytes;
    f.parse_all();
    return f;
}

void File::parse_all() { Parser(*this).run(); }

File::File(File&&) noexcept = default;
File& File::operator=(File&&) noexcept = default;
File::~File() = default;

const Value* File::find(std::string_view key) const {
    auto it = kv_index_.find(key);
    return it == kv_index_.end() ? nullptr : &kv_[it->second].value;
}

const TensorInfo* File::find_tensor(std::string_view name) const {
    auto it = tensor_index_.find(name);
    return it == tensor_index_.end() ? nullptr : &tensors_[it->second];
}

void File::release_pages(uint64_t offset, uint64_t length) const {
    if (map_) map_->release(offset, length);
}

namespace {

[[noreturn]] void type_error(const File& f, std::string_view key, std::string_view expected, const Value& v) {
    throw Error(ErrorCode::MetadataType,
                fmt::format("{}: key '{}': expected {}, found {}", f.path(), key, expected, value_type_name(v.type)));
}

bool is_signed_int(ValueType t) {
    return t == ValueType::I8 || t == ValueType::I16 || t == ValueType::I32 || t == ValueType::I64;
}

uint64_t as_uint(const File& f, std::string_view key, const Value& v) {
    if (!v.is_integer()) type_error(f, key, "an unsigned integer", v);
    if (is_signed_int(v.type)) {
        if (v.i < 0) {
            throw Error(ErrorCode::MetadataType,
                        fmt::format("{}: key '{}': expected a non-negative integer, found {} ({})", f.path(), key, v.i,
                                    value_type_name(v.type)));
        }
        return static_cast<uint64_t>(v.i);
    }
    return v.u;
}

int64_t as_int(const File& f, std::string_view key, const Value& v) {
    if (!v.is_integer()) type_error(f, key, "an integer", v);
    if (is_signed_int(v.type)) return v.i;
    if (v.u > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
        throw Error(ErrorCode::MetadataType,
                    fmt::format("{}: key '{}': value {} does not fit in i64", f.path(), key, v.u));
    }
    return static_cast<int64_t>(v.u);
}

double as_float(const File& f, std::string_view key, const Value& v) {
    if (v.is_float()) return v.f;
    if (v.is_integer()) return is_signed_int(v.type) ? static_cast<double>(v.i) : static_cast<double>(v.u);
    type_error(f, key, "a number (f32/f64)", v);
}

}  // namespace

const Value& File::required(std::string_view key) const {
    const Value* v = find(key);
    if (v == nullptr) {
        throw Error(ErrorCode::MetadataMissing, fmt::format("{}: required key '{}' is missing", path_, key));
    }
    return *v;
}

uint64_t File::get_uint(std::string_view key) const { return as_uint(*this, key, required(key)); }
int64_t File::get_int(std::string_view key) const { return as_int(*this, key, required(key)); }
double File::get_float(std::string_view key) const { return as_float(*this, key, required(key)); }
bool File::get_bool(std::string_view key) const {
    const Value& v = required(key);
    if (v.type != ValueType::Bool) type_error(*this, key, "bool", v);
    return v.u != 0;
}
std::string_view File::get_string(std::string_view key) const {
    const Value& v = required(key);
    if (v.type != ValueType::String) type_error(*this, key, "string", v);
    return v.str;
}
const Array& File::get_array(std::string_view key) const {
    const Value& v = required(key);
    if (v.type != ValueType::Array) type_error(*this, key, "array", v);
    return v.arr;
}

// The _opt accessors: nothing when the key is absent, else what the required accessor gives (or throws).
template <typename T>
std::optional<T> File::if_present(std::string_view key, T (File::*get)(std::string_view) const) const {
    if (!has(key)) return std::nullopt;
    return (this->*get)(key);
}

std::optional<uint64_t> File::get_uint_opt(std::string_view key) const { return if_present(key, &File::get_uint); }
std::optional<int64_t> File::get_int_opt(std::string_view key) const { return if_present(key, &File::get_int); }
std::optional<double> File::get_float_opt(std::string_view key) const { return if_present(key, &File::get_float); }
std::optional<bool> File::get_bool_opt(std::string_view key) const { return if_present(key, &File::get_bool); }
std::optional<std::string_view> File::get_string_opt(std::string_view key) const {
    return if_present(key, &File::get_string);
}
const Array* File::get_array_opt(std::string_view key) const { return has(key) ? &get_array(key) : nullptr; }

}  // namespace orcd::gguf
