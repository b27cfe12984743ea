#include "cli/load_progress.h"

#include <fmt/format.h>

#include <algorithm>
#include <mutex>
#include <optional>

#include "cli/progress.h"
#include "cli/read_ahead.h"
#include "loader/plan.h"

namespace orcd::cli {

struct LoadProgress::State {
    bool has_upload = false;
    std::string prefix;
    bool quiet = false;
    LoadObserver observer;

    std::mutex mu;  // the upload reports from the loader's thread
    double read = 0.0, upload = 0.0, overall = 0.0;
    std::optional<ProgressBar> upload_bar;

    // Records a step's fraction and tells the observer the whole load's (never lower than it said before).
    void report(std::string_view stage, uint64_t done, uint64_t total) {
        const double f = ProgressBar::clamp_fraction(done, total);
        (stage == "read" ? read : upload) = f;
        overall = std::max(overall, overall_fraction(read, upload, has_upload));
        if (observer)
            observer({.stage = stage, .fraction = overall, .bytes_done = std::min(done, total), .bytes_total = total});
    }
};

LoadProgress::LoadProgress(bool upload, std::string label_prefix, bool quiet, LoadObserver observer)
    : state_(std::make_shared<State>()) {
    state_->has_upload = upload;
    state_->prefix = std::move(label_prefix);
    state_->quiet = quiet;
    state_->observer = std::move(observer);
}

LoadProgress::~LoadProgress() = default;

double LoadProgress::overall_fraction(double read, double upload, bool has_upload) {
    const double f = has_upload ? (read + upload) / 2.0 : read;
    return std::clamp(f, 0.0, 1.0);
}

void LoadProgress::read_file(const std::string& path) {
    ProgressBar bar(state_->prefix + "read", state_->quiet);
    constexpr double kMiB = 1024.0 * 1024.0;
    read_ahead(path, [&](uint64_t done, uint64_t total) {
        bar.update(done, total, fmt::format("{:.0f} / {:.0f} MiB of {}", done / kMiB, total / kMiB, path));
        std::lock_guard lock(state_->mu);
        state_->report("read", done, total);
    });
    bar.finish();
}

loader::ProgressFn LoadProgress::upload_callback() const {
    return [s = state_](const loader::Progress& p) {
        if (p.bytes_total == 0) return;
        // The loader's last report (Done) counts every byte: chunks may end short of the plan's padded total.
        const uint64_t done =
            p.kind == loader::Progress::Kind::Done ? p.bytes_total : std::min(p.bytes_done, p.bytes_total);
        const double gbps = p.elapsed_s > 0 ? static_cast<double>(p.bytes_done) / p.elapsed_s / 1e9 : 0.0;
        std::lock_guard lock(s->mu);
        if (!s->upload_bar) s->upload_bar.emplace(s->prefix + "upload", s->quiet);
        s->upload_bar->update(
            done, p.bytes_total,
            fmt::format("{} / {}, {}, {:.2f} GB/s, {:.3f} s", loader::format_bytes(done),
                        loader::format_bytes(p.bytes_total),
                        p.layer < 0 ? std::string(p.tensor) : fmt::format("layer {}/{}", p.layer + 1, p.n_layers), gbps,
                        p.elapsed_s));
        s->report("upload", done, p.bytes_total);
    };
}

}  // namespace orcd::cli
