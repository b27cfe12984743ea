#include "cli/interrupt.h"

#include <signal.h>
#include <unistd.h>

namespace orcd::cli {
namespace {

std::atomic<bool> g_cancel{false};
std::atomic<int> g_presses{0};      // presses since the work began (or since take_press)
std::atomic<bool> g_working{false};
struct sigaction g_previous {};

void on_sigint(int) {
    const int n = g_presses.fetch_add(1) + 1;
    g_cancel.store(true);
    if (g_working.load() && n >= 2) {
        static const char msg[] = "\ninterrupted twice: exiting\n";
        (void)!write(STDERR_FILENO, msg, sizeof msg - 1);
        _exit(130);
    }
}

}  // namespace

InterruptGuard::InterruptGuard() {
    struct sigaction sa {};
    sa.sa_handler = on_sigint;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = 0;  // no SA_RESTART: a read at the prompt returns EINTR and the reader starts a fresh line
    sigaction(SIGINT, &sa, &g_previous);
}

InterruptGuard::~InterruptGuard() { sigaction(SIGINT, &g_previous, nullptr); }

void InterruptGuard::begin_work() {
    g_cancel.store(false);
    g_presses.store(0);
    g_working.store(true);
}

void InterruptGuard::end_work() {
    g_working.store(false);
    g_presses.store(0);
    g_cancel.store(false);
}

const std::atomic<bool>& InterruptGuard::cancel_flag() const { return g_cancel; }

bool InterruptGuard::take_press() {
    g_cancel.store(false);
    return g_presses.exchange(0) > 0;
}

}  // namespace orcd::cli
