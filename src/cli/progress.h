#pragma once
// Progress of a long step on stderr: a bar redrawn in place on a terminal, one plain line per tenth otherwise (so
// logs stay readable). The fraction is clamped to [0, 1]: a bar never counts past 100 %.
#include <cstdint>
#include <string>

namespace orcd::cli {

class ProgressBar {
public:
    // `label` starts every line ("load", "synth"); quiet: prints nothing.
    explicit ProgressBar(std::string label, bool quiet = false);
    ~ProgressBar() { finish(); }  // an error mid-way still ends the bar's line before the message
    ProgressBar(const ProgressBar&) = delete;
    ProgressBar& operator=(const ProgressBar&) = delete;
    // done of total units; `detail` follows the percentage. The last call should have done == total (or finish()).
    void update(uint64_t done, uint64_t total, const std::string& detail = {});
    // Ends the bar's line on a terminal (idempotent).
    void finish();
    static double clamp_fraction(uint64_t done, uint64_t total);
    // The whole percent shown: rounded down, so that 100 means done (99.6 % rounded to "100%" was printed, then the
    // real 100 % again, as two "100%" lines in a log).
    static int shown_percent(uint64_t done, uint64_t total);

private:
    std::string label_;
    bool quiet_, tty_;
    int last_decile_ = -1;
    bool open_line_ = false;
};

}  // namespace orcd::cli
