#include "gguf/writer.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <exception>
#include <fmt/format.h>
#include <mutex>
#include <thread>

namespace orcd::gguf {

namespace {

uint64_t align_up(uint64_t x, uint64_t a) { return (x + a - 1) / a * a; }

template <typename T>
std::vector<std::byte> raw_of(const std::vector<T>& v) {
    std::vector<std::byte> out(v.size() * sizeof(T));
    if (!v.empty()) std::memcpy(out.data(), v.data(), out.size());
    return out;
}

OwnedValue array_of(ValueType elem, uint64_t count, std::vector<std::byte> raw) {
    OwnedValue v;
    v.type = ValueType::Array;
    v.elem_type = elem;
    v.count = count;
    v.raw = std::move(raw);
    return v;
}

// Serialised size of a value's payload (after its type tag).
uint64_t payload_size(const OwnedValue& v) {
    if (v.type == ValueType::String) return 8 + v.str.size();
    if (v.type != ValueType::Array) return value_type_size(v.type);
    uint64_t n = 4 + 8;  // element type + count
    if (v.elem_type == ValueType::String) {
        for (const std::string& s : v.strings) n += 8 + s.size();
    } else if (v.elem_type == ValueType::Array) {
        for (const OwnedValue& a : v.arrays) n += payload_size(a);
    } else {
        n += v.raw.size();
    }
    return n;
}

class Out {
public:
    explicit Out(std::byte* p) : p_(p) {}
    template <typename T>
    void put(T v) {
        std::memcpy(p_, &v, sizeof(T));
        p_ += sizeof(T);
    }
    void put_string(std::string_view s) {
        put<uint64_t>(s.size());
        if (!s.empty()) std::memcpy(p_, s.data(), s.size());
        p_ += s.size();
    }
    void put_bytes(std::span<const std::byte> b) {
        if (!b.empty()) std::memcpy(p_, b.data(), b.size());
        p_ += b.size();
    }
    std::byte* pos() const { return p_; }

private:
    std::byte* p_;
};

void put_payload(Out& o, const OwnedValue& v) {
    switch (v.type) {
        case ValueType::U8: o.put<uint8_t>(static_cast<uint8_t>(v.u)); break;
        case ValueType::U16: o.put<uint16_t>(static_cast<uint16_t>(v.u)); break;
        case ValueType::U32: o.put<uint32_t>(static_cast<uint32_t>(v.u)); break;
        case ValueType::U64: o.put<uint64_t>(v.u); break;
        case ValueType::I8: o.put<int8_t>(static_cast<int8_t>(v.i)); break;
        case ValueType::I16: o.put<int16_t>(static_cast<int16_t>(v.i)); break;
        case ValueType::I32: o.put<int32_t>(static_cast<int32_t>(v.i)); break;
        case ValueType::I64: o.put<int64_t>(v.i); break;
        case ValueType::F32: o.put<float>(static_cast<float>(v.f)); break;
        case ValueType::F64: o.put<double>(v.f); break;
        case ValueType::Bool: o.put<uint8_t>(v.u ? 1 : 0); break;
        case ValueType::String: o.put_string(v.str); break;
        case ValueType::Array:
            o.put<uint32_t>(static_cast<uint32_t>(v.elem_type));
            o.put<uint64_t>(v.count);
            if (v.elem_type == ValueType::String) {
                for (const std::string& s : v.strings) o.put_string(s);
            } else if (v.elem_type == ValueType::Array) {
                for (const OwnedValue& a : v.arrays) put_payload(o, a);
            } else {
                o.put_bytes(v.raw);
            }
            break;
    }
}

}  // namespace

OwnedValue OwnedValue::from(const Array& a) {
    OwnedValue v;
    v.type = ValueType::Array;
    v.elem_type = a.elem_type;
    v.count = a.size;
    v.raw.assign(a.raw.begin(), a.raw.end());
    v.strings.assign(a.strings.begin(), a.strings.end());
    for (const Array& inner : a.arrays) v.arrays.push_back(from(inner));
    return v;
}

OwnedValue OwnedValue::from(const Value& src) {
    if (src.type == ValueType::Array) return from(src.arr);
    OwnedValue v;
    v.type = src.type;
    v.u = src.u;
    v.i = src.i;
    v.f = src.f;
    v.str = std::string(src.str);
    return v;
}

Writer::Writer(uint64_t alignment) : alignment_(alignment) {
    if (alignment == 0 || (alignment & (alignment - 1)) != 0) {
        throw Error(ErrorCode::InvalidArgument,
                    fmt::format("GGUF alignment must be a power of two, got {}", alignment));
    }
    if (alignment != kDefaultAlignment) set_u32("general.alignment", static_cast<uint32_t>(alignment));
}

void Writer::set(const std::string& key, OwnedValue v) {
    for (auto& kv : kv_) {
        if (kv.first == key) {
            kv.second = std::move(v);
            return;
        }
    }
    kv_.emplace_back(key, std::move(v));
}

bool Writer::has(const std::string& key) const {
    for (const auto& kv : kv_) {
        if (kv.first == key) return true;
    }
    return false;
}

#define ORCD_SCALAR_SETTER(fn, ctype, vtype, field)    \
    void Writer::fn(const std::string& key, ctype x) { \
        OwnedValue v;                                  \
        v.type = ValueType::vtype;                     \
        v.field = x;                                   \
        set(key, std::move(v));                        \
    }
ORCD_SCALAR_SETTER(set_u8, uint8_t, U8, u)
ORCD_SCALAR_SETTER(set_i8, int8_t, I8, i)
ORCD_SCALAR_SETTER(set_u16, uint16_t, U16, u)
ORCD_SCALAR_SETTER(set_i16, int16_t, I16, i)
ORCD_SCALAR_SETTER(set_u32, uint32_t, U32, u)
ORCD_SCALAR_SETTER(set_i32, int32_t, I32, i)
ORCD_SCALAR_SETTER(set_u64, uint64_t, U64, u)
ORCD_SCALAR_SETTER(set_i64, int64_t, I64, i)
ORCD_SCALAR_SETTER(set_f32, float, F32, f)
ORCD_SCALAR_SETTER(set_f64, double, F64, f)
ORCD_SCALAR_SETTER(set_bool, bool, Bool, u)
#undef ORCD_SCALAR_SETTER

void Writer::set_string(const std::string& key, std::string s) {
    OwnedValue v;
    v.type = ValueType::String;
    v.str = std::move(s);
    set(key, std::move(v));
}

void Writer::set_strings(const std::string& key, std::vector<std::string> s) {
    OwnedValue v;
    v.type = ValueType::Array;
    v.elem_type = ValueType::String;
    v.count = s.size();
    v.strings = std::move(s);
    set(key, std::move(v));
}

void Writer::set_f32s(const std::string& key, const std::vector<float>& v) {
    set(key, array_of(ValueType::F32, v.size(), raw_of(v)));
}
void Writer::set_i32s(const std::string& key, const std::vector<int32_t>& v) {
    set(key, array_of(ValueType::I32, v.size(), raw_of(v)));
}
void Writer::set_u32s(const std::string& key, const std::vector<uint32_t>& v) {
    set(key, array_of(ValueType::U32, v.size(), raw_of(v)));
}

void Writer::add_tensor(std::string name, TensorType type, std::vector<uint64_t> shape, std::vector<std::byte> data) {
    Tensor t{std::move(name), type, std::move(shape), 0, 0, std::move(data), {}};
    uint64_t n = 1;
    for (uint64_t d : t.shape) n *= d;
    const TypeTraits& tt = traits(type);
    if (t.shape.empty() || t.shape.size() > 4 || n == 0 || t.shape[0] % tt.block_elems != 0) {
        throw Error(ErrorCode::InvalidArgument,
                    fmt::format("tensor '{}': shape of {} dims with row length {} is not valid for {}", t.name,
                                t.shape.size(), t.shape.empty() ? 0 : t.shape[0], tt.name));
    }
    t.n_bytes = n / tt.block_elems * tt.block_bytes;
    if (!t.data.empty() && t.data.size() != t.n_bytes) {
        throw Error(ErrorCode::InvalidArgument, fmt::format("tensor '{}': {} bytes given, {} expected for {} {}",
                                                            t.name, t.data.size(), t.n_bytes, n, tt.name));
    }
    t.offset = data_bytes_;
    data_bytes_ += align_up(t.n_bytes, alignment_);
    tensors_.push_back(std::move(t));
}

void Writer::add_tensor(std::string name, TensorType type, std::vector<uint64_t> shape, Fill fill) {
    add_tensor(std::move(name), type, std::move(shape), std::vector<std::byte>{});
    tensors_.back().fill = std::move(fill);
}

uint64_t Writer::header_size() const {
    uint64_t n = 4 + 4 + 8 + 8;
    for (const auto& [key, v] : kv_) n += 8 + key.size() + 4 + payload_size(v);
    for (const Tensor& t : tensors_) n += 8 + t.name.size() + 4 + 8 * t.shape.size() + 4 + 8;
    return n;
}

uint64_t Writer::data_offset() const { return align_up(header_size(), alignment_); }

uint64_t Writer::total_size() const {
    // The last tensor needs no trailing padding, but writing it keeps every tensor's end aligned too, as llama.cpp's
    // writer does; when there are no tensors the file ends right after the header.
    return tensors_.empty() ? header_size() : data_offset() + data_bytes_;
}

void Writer::write_header(std::byte* out) const {
    Out o(out);
    o.put<uint32_t>(kMagic);
    o.put<uint32_t>(3);
    o.put<uint64_t>(tensors_.size());
    o.put<uint64_t>(kv_.size());
    for (const auto& [key, v] : kv_) {
        o.put_string(key);
        o.put<uint32_t>(static_cast<uint32_t>(v.type));
        put_payload(o, v);
    }
    for (const Tensor& t : tensors_) {
        o.put_string(t.name);
        o.put<uint32_t>(static_cast<uint32_t>(t.shape.size()));
        for (uint64_t d : t.shape) o.put<uint64_t>(d);
        o.put<uint32_t>(static_cast<uint32_t>(t.type));
        o.put<uint64_t>(t.offset);
    }
}

void Writer::fill_tensors(std::byte* base, unsigned threads) const {
    if (threads == 0) threads = std::max(1u, std::thread::hardware_concurrency());
    threads = std::min<unsigned>(threads, std::max<size_t>(1, tensors_.size()));
    std::atomic<size_t> next{0};
    std::exception_ptr first_error;
    std::mutex error_mutex;
    auto worker = [&] {
        for (size_t i = next++; i < tensors_.size(); i = next++) {
            const Tensor& t = tensors_[i];
            std::span<std::byte> out(base + t.offset, t.n_bytes);
            try {
                if (t.fill)
                    t.fill(out);
                else if (!t.data.empty())
                    std::memcpy(out.data(), t.data.data(), t.n_bytes);
            } catch (...) {
                std::lock_guard lock(error_mutex);
                if (!first_error) first_error = std::current_exception();
                next = tensors_.size();
            }
        }
    };
    std::vector<std::thread> pool;
    for (unsigned k = 1; k < threads; ++k) pool.emplace_back(worker);
    worker();
    for (std::thread& th : pool) th.join();
    if (first_error) std::rethrow_exception(first_error);
}

std::vector<std::byte> Writer::to_bytes() const {
    std::vector<std::byte> out(total_size(), std::byte{0});
    write_header(out.data());
    if (!tensors_.empty()) fill_tensors(out.data() + data_offset(), 1);
    return out;
}

void Writer::write_file(const std::filesystem::path& path, unsigned threads) const {
    const uint64_t size = total_size();
    const int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) throw Error(ErrorCode::Io, fmt::format("{}: cannot create: {}", path.string(), std::strerror(errno)));
    void* map = MAP_FAILED;
    auto fail = [&](const std::string& what) {
        const int err = errno;
        if (map != MAP_FAILED) ::munmap(map, size);
        ::close(fd);
        ::unlink(path.c_str());
        throw Error(ErrorCode::Io, fmt::format("{}: {}: {}", path.string(), what, std::strerror(err)));
    };
    if (::ftruncate(fd, static_cast<off_t>(size)) != 0) fail(fmt::format("cannot size to {} bytes", size));
    map = ::mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (map == MAP_FAILED) fail("cannot map for writing");
    auto* base = static_cast<std::byte*>(map);
    // ftruncate leaves the file zero-filled, so padding needs no explicit writes.
    try {
        write_header(base);
        if (!tensors_.empty()) fill_tensors(base + data_offset(), threads);
    } catch (...) {
        ::munmap(map, size);
        ::close(fd);
        ::unlink(path.c_str());
        throw;
    }
    if (::munmap(map, size) != 0) {
        map = MAP_FAILED;
        fail("cannot unmap");
    }
    map = MAP_FAILED;
    if (::close(fd) != 0) {
        const int err = errno;
        ::unlink(path.c_str());
        throw Error(ErrorCode::Io, fmt::format("{}: close failed: {}", path.string(), std::strerror(err)));
    }
}

void copy_metadata(const File& src, Writer& w) {
    for (const KeyValue& kv : src.metadata()) {
        if (kv.key == "general.alignment") continue;
        w.set(std::string(kv.key), OwnedValue::from(kv.value));
    }
}

}  // namespace orcd::gguf
