#pragma once
// A command's model load as the user watches it: reading the file into the page cache (read_ahead.h), then, on CUDA,
// the weights' upload chunk by chunk and layer by layer (loader/progress.h). Each step draws its own bar on stderr
// (progress.h: redrawn in place on a terminal, plain lines otherwise, never past 100 %). An observer, when given,
// sees the whole load as one fraction (serve's /health): the mean of the steps' fractions, so that it only grows and
// reaches 1 when the last byte is where it belongs.
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "loader/progress.h"

namespace orcd::cli {

struct LoadStatus {
    std::string_view stage;    // "read" | "upload"
    double fraction = 0.0;     // of the whole load, in [0, 1]
    uint64_t bytes_done = 0;   // of this stage
    uint64_t bytes_total = 0;  // of this stage
};
using LoadObserver = std::function<void(const LoadStatus&)>;

class LoadProgress {
public:
    // `upload`: the load has an upload step (--device cuda). `label_prefix` starts each bar's label ("orcd serve: ");
    // `quiet`: no bars (the observer still runs).
    explicit LoadProgress(bool upload, std::string label_prefix = {}, bool quiet = false, LoadObserver observer = {});
    LoadProgress(const LoadProgress&) = delete;
    LoadProgress& operator=(const LoadProgress&) = delete;
    ~LoadProgress();

    // Reads the model file into the page cache behind the "read" bar. Errors: read_ahead's.
    void read_file(const std::string& path);
    // The upload's callback, for engine::BackendOptions::load_progress (the "upload" bar: bytes, layer, rate).
    loader::ProgressFn upload_callback() const;

    // The whole load's fraction from the steps' own: their mean (one step when there is no upload), clamped.
    static double overall_fraction(double read, double upload, bool has_upload);

private:
    struct State;
    std::shared_ptr<State> state_;  // shared with the callback the loader keeps
};

}  // namespace orcd::cli
