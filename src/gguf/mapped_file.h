#pragma once
// A read-only memory mapping of a whole file, owned RAII-style. The descriptor is closed right after mapping: the
// mapping keeps the file alive, and the process holds no open handle while the model is in use.
#include <cstddef>
#include <filesystem>
#include <span>

namespace orcd::gguf {

class MappedFile {
public:
    explicit MappedFile(const std::filesystem::path& path);  // throws orcd::Error (FileNotFound, FileUnreadable)
    MappedFile(const MappedFile&) = delete;
    MappedFile& operator=(const MappedFile&) = delete;
    ~MappedFile();

    std::span<const std::byte> bytes() const { return {static_cast<const std::byte*>(addr_), size_}; }
    // MADV_DONTNEED over the whole pages inside [offset, offset + length): those pages are dropped from this
    // process and read back from the page cache if touched again.
    void release(size_t offset, size_t length) const;

private:
    void* addr_ = nullptr;
    size_t size_ = 0;
};

}  // namespace orcd::gguf
