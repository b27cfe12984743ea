#include "cli/progress.h"

#include <fmt/format.h>
#include <unistd.h>

#include <algorithm>

namespace orcd::cli {

ProgressBar::ProgressBar(std::string label, bool quiet)
    : label_(std::move(label)), quiet_(quiet), tty_(::isatty(STDERR_FILENO) != 0) {}

double ProgressBar::clamp_fraction(uint64_t done, uint64_t total) {
    if (total == 0) return 1.0;
    return std::clamp(static_cast<double>(done) / static_cast<double>(total), 0.0, 1.0);
}

int ProgressBar::shown_percent(uint64_t done, uint64_t total) {
    if (done >= total) return 100;  // also nothing to do (total 0)
    return static_cast<int>(static_cast<unsigned __int128>(done) * 100 / total);
}

void ProgressBar::update(uint64_t done, uint64_t total, const std::string& detail) {
    if (quiet_) return;
    const double frac = clamp_fraction(done, total);
    const int percent = shown_percent(done, total);
    if (tty_) {
        constexpr int kWidth = 30;
        const int filled = static_cast<int>(frac * kWidth);
        fmt::print(stderr, "\r{}: [{}{}] {:3d}% {} ", label_, std::string(filled, '#'),
                   std::string(kWidth - filled, '.'), percent, detail);
        open_line_ = true;
        if (frac >= 1.0) finish();
        return;
    }
    const int decile = percent / 10;
    if (decile > last_decile_) {
        last_decile_ = decile;
        fmt::print(stderr, "{}: {:3d}% {}\n", label_, percent, detail);
    }
}

void ProgressBar::finish() {
    if (open_line_) fmt::print(stderr, "\n");
    open_line_ = false;
}

}  // namespace orcd::cli
