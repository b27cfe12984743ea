#include "cli/read_ahead.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <vector>

#include <fmt/format.h>

#include "common/error.h"

namespace orcd::cli {
namespace {

constexpr uint64_t kChunk = 64ull << 20;  // a bar step: small enough to move often, large enough to read efficiently

// Closes the descriptor and unmaps on every path out.
struct FileView {
    int fd = -1;
    void* map = MAP_FAILED;
    uint64_t size = 0;
    ~FileView() {
        if (map != MAP_FAILED) ::munmap(map, size);
        if (fd >= 0) ::close(fd);
    }
};

// Brings [offset, offset + n) into the page cache: prefaults a read-only mapping (no copy), or, where the kernel lacks
// MADV_POPULATE_READ (before 5.14), reads it into a scratch buffer.
void read_range(FileView& f, uint64_t offset, uint64_t n, std::vector<char>& scratch, const std::string& path) {
    if (f.map != MAP_FAILED && ::madvise(static_cast<char*>(f.map) + offset, n, MADV_POPULATE_READ) == 0) return;
    scratch.resize(kChunk);
    for (uint64_t done = 0; done < n;) {
        const ssize_t r = ::pread(f.fd, scratch.data(), std::min<uint64_t>(n - done, scratch.size()),
                                  static_cast<off_t>(offset + done));
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) {
            throw Error(ErrorCode::FileUnreadable,
                        fmt::format("reading '{}' at byte {}: {}", path, offset + done,
                                    r < 0 ? std::strerror(errno) : "unexpected end of file"));
        }
        done += static_cast<uint64_t>(r);
    }
}

}  // namespace

void read_ahead(const std::string& path, const std::function<void(uint64_t done, uint64_t total)>& on_progress) {
    FileView f;
    f.fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (f.fd < 0) {
        throw Error(errno == ENOENT ? ErrorCode::FileNotFound : ErrorCode::FileUnreadable,
                    fmt::format("cannot open '{}': {}", path, std::strerror(errno)));
    }
    struct stat st {};
    if (::fstat(f.fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        throw Error(ErrorCode::FileUnreadable, fmt::format("'{}' is not a regular file", path));
    }
    f.size = static_cast<uint64_t>(st.st_size);
    if (f.size == 0) {
        on_progress(0, 0);
        return;
    }
    (void)::posix_fadvise(f.fd, 0, 0, POSIX_FADV_SEQUENTIAL);
    f.map = ::mmap(nullptr, f.size, PROT_READ, MAP_SHARED, f.fd, 0);
    std::vector<char> scratch;
    for (uint64_t offset = 0; offset < f.size; offset += kChunk) {
        const uint64_t n = std::min(kChunk, f.size - offset);
        read_range(f, offset, n, scratch, path);
        on_progress(offset + n, f.size);
    }
}

}  // namespace orcd::cli
