#include "cli/interrupt.h"

#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

namespace orcd::cli {
namespace {

std::atomic<bool> g_cancel{false};
std::atomic<int> g_presses{0};  // presses since the work began (or since take_press)
std::atomic<bool> g_working{false};
std::atomic<int> g_wake_write{-1};  // the pipe's write end: a byte per press wakes a waiting line reader
std::atomic<bool> g_announce{false};
struct sigaction g_previous {};

void on_sigint(int) {
    const int n = g_presses.fetch_add(1) + 1;
    g_cancel.store(true);
    if (const int fd = g_wake_write.load(); fd >= 0) {
        const char b = 1;
        (void)!write(fd, &b, 1);  // non-blocking: a full pipe already wakes the reader
    }
    if (g_working.load() && n >= 2) {
        static const char msg[] = "\ninterrupted twice: exiting\n";
        (void)!write(STDERR_FILENO, msg, sizeof msg - 1);
        _exit(130);
    }
    if (g_working.load() && n == 1 && g_announce.load()) {
        static const char msg[] = "\ninterrupted: stopping (press Ctrl-C again to exit now)\n";
        (void)!write(STDERR_FILENO, msg, sizeof msg - 1);
    }
}

void drain(int fd) {
    char buf[64];
    while (fd >= 0 && read(fd, buf, sizeof buf) > 0) {}
}

}  // namespace

InterruptGuard::InterruptGuard(bool announce) {
    g_announce.store(announce);
    int fds[2];
    if (pipe2(fds, O_NONBLOCK | O_CLOEXEC) == 0) {
        wake_read_ = fds[0];
        wake_write_ = fds[1];
        g_wake_write.store(wake_write_);
    }
    struct sigaction sa {};
    sa.sa_handler = on_sigint;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = 0;  // no SA_RESTART: a read at the prompt returns EINTR and the reader starts a fresh line
    sigaction(SIGINT, &sa, &g_previous);
}

InterruptGuard::~InterruptGuard() {
    sigaction(SIGINT, &g_previous, nullptr);
    g_announce.store(false);
    g_wake_write.store(-1);
    if (wake_read_ >= 0) close(wake_read_);
    if (wake_write_ >= 0) close(wake_write_);
}

void InterruptGuard::begin_work() {
    drain(wake_read_);
    g_cancel.store(false);
    g_presses.store(0);
    g_working.store(true);
}

void InterruptGuard::end_work() {
    drain(wake_read_);  // the presses that stopped this work are spent
    g_working.store(false);
    g_presses.store(0);
    g_cancel.store(false);
}

const std::atomic<bool>& InterruptGuard::cancel_flag() const { return g_cancel; }

bool InterruptGuard::take_press() {
    drain(wake_read_);
    g_cancel.store(false);
    return g_presses.exchange(0) > 0;
}

}  // namespace orcd::cli
