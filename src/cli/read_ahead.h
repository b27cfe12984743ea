#pragma once
// Reads a model file into the page cache with a progress bar (progress.h), before a load that has no progress of its
// own (`serve`, `chat`: the backend maps the file and builds itself in one call). On a cold cache reading the file is
// most of the load, so the bar shows where the time goes; on a warm one it passes in a moment.
#include <string>

namespace orcd::cli {

// Errors: FileNotFound / FileUnreadable naming the path (the load that follows would fail the same way).
void read_ahead_with_progress(const std::string& path, const std::string& label = "read");

}  // namespace orcd::cli
