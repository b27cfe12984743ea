#include "gguf/mapped_file.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fmt/format.h>

#include "common/error.h"

namespace orcd::gguf {

namespace {

// Closes the descriptor on every exit path of the constructor.
struct Fd {
    int fd;
    ~Fd() {
        if (fd >= 0) ::close(fd);
    }
};

}  // namespace

MappedFile::MappedFile(const std::filesystem::path& path) {
    Fd f{::open(path.c_str(), O_RDONLY | O_CLOEXEC)};
    if (f.fd < 0) {
        const int err = errno;
        throw Error(err == ENOENT ? ErrorCode::FileNotFound : ErrorCode::FileUnreadable,
                    fmt::format("{}: cannot open: {}", path.string(), std::strerror(err)));
    }
    struct stat st {};
    if (::fstat(f.fd, &st) != 0) {
        throw Error(ErrorCode::FileUnreadable, fmt::format("{}: cannot stat: {}", path.string(), std::strerror(errno)));
    }
    if (!S_ISREG(st.st_mode)) {
        throw Error(ErrorCode::FileUnreadable, fmt::format("{}: not a regular file", path.string()));
    }
    size_ = static_cast<size_t>(st.st_size);
    if (size_ == 0) return;  // nothing to map; the parser reports the file as truncated
    addr_ = ::mmap(nullptr, size_, PROT_READ, MAP_PRIVATE, f.fd, 0);
    if (addr_ == MAP_FAILED) {
        addr_ = nullptr;
        throw Error(ErrorCode::FileUnreadable,
                    fmt::format("{}: cannot map {} bytes: {}", path.string(), size_, std::strerror(errno)));
    }
}

MappedFile::~MappedFile() {
    if (addr_ != nullptr) ::munmap(addr_, size_);
}

void MappedFile::release(size_t offset, size_t length) const {
    if (addr_ == nullptr || offset >= size_) return;
    length = std::min(length, size_ - offset);
    const size_t page = static_cast<size_t>(::sysconf(_SC_PAGESIZE));
    // Only whole pages inside the range: a page shared with bytes still to be read must stay.
    const size_t begin = (offset + page - 1) / page * page;
    const size_t end = (offset + length) / page * page;
    if (end > begin) ::madvise(static_cast<std::byte*>(addr_) + begin, end - begin, MADV_DONTNEED);
}

}  // namespace orcd::gguf
