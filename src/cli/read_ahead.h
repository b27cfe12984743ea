#pragma once
// Reads a model file into the page cache, reporting the bytes read, before a load that would otherwise fault the
// mapping in page by page with nothing to show (`serve`, `chat`, `generate`, ...: the backend maps the file and builds
// itself in one call). On a cold cache reading the file is most of the load, so its progress shows where the time
// goes; on a warm one it passes in a moment.
#include <cstdint>
#include <functional>
#include <string>

namespace orcd::cli {

// `on_progress(done, total)` after each chunk (total: the file's size; the last call has done == total). Errors:
// FileNotFound / FileUnreadable naming the path (the load that follows would fail the same way).
void read_ahead(const std::string& path, const std::function<void(uint64_t done, uint64_t total)>& on_progress);

}  // namespace orcd::cli
