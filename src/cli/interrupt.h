#pragma once
// Ctrl-C for interactive commands: the first press asks the running work to stop (a flag the generation loop reads
// before every step); a second press while that work is still draining exits at once with status 130, as a shell
// user expects. Outside of any work (at a prompt), a press is reported once and cleared by the reader.
#include <atomic>

namespace orcd::cli {

class InterruptGuard {
public:
    // Installs the SIGINT handler (without SA_RESTART, so a blocking read returns EINTR); restores the previous one.
    // `announce`: the first press during work says on stderr that the work is stopping and that a second press exits
    // now (for commands whose work may run on for a while before it can stop: a load, a prefill, a benchmark's
    // repetition; a user, and a test, then know the press was taken).
    explicit InterruptGuard(bool announce = false);
    ~InterruptGuard();
    InterruptGuard(const InterruptGuard&) = delete;
    InterruptGuard& operator=(const InterruptGuard&) = delete;

    // Starts a unit of work: clears the flag. While work runs, a second press forces exit.
    void begin_work();
    void end_work();
    // Set by a press; the work's cancel flag.
    const std::atomic<bool>& cancel_flag() const;
    // True once if a press came since the last call (and clears it).
    bool take_press();
    // Readable after a press until the next begin_work/end_work/take_press: a line reader waits on it.
    int wake_fd() const { return wake_read_; }

private:
    int wake_read_ = -1;
    int wake_write_ = -1;
};

}  // namespace orcd::cli
