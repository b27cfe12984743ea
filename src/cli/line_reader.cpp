#include "cli/line_reader.h"

#include <histedit.h>
#include <poll.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cwchar>
#include <iostream>

namespace orcd::cli {

// libedit's native interface (not its readline emulation), with our own character source. libedit's built-in one
// retries a read that a signal interrupted, so whether a Ctrl-C ended the prompt depended on where the signal landed.
// Ours waits on the terminal and on the interrupt guard's wake-up descriptor together: a press ends the line at once,
// wherever libedit is, and `interrupted` tells that apart from Ctrl-D.
struct LineReader::Impl {
    EditLine* el = nullptr;
    History* hist = nullptr;
    HistEvent ev{};
    std::string prompt;
    int wake_fd = -1;
    bool interrupted = false;
    std::mbstate_t decode{};

    static Impl* of(EditLine* el) {
        Impl* self = nullptr;
        el_get(el, EL_CLIENTDATA, &self);
        return self;
    }
    static const char* prompt_of(EditLine* el) {
        Impl* self = of(el);
        return self ? self->prompt.c_str() : "";
    }
    // libedit's character source: 1 with a character, 0 at the end of input (or on an interrupt), -1 on error.
    static int next_char(EditLine* el, wchar_t* out) {
        Impl* self = of(el);
        for (;;) {
            pollfd fds[2] = {{STDIN_FILENO, POLLIN, 0}, {self->wake_fd, POLLIN, 0}};
            const int n = poll(fds, self->wake_fd >= 0 ? 2 : 1, -1);
            if (n < 0) {
                if (errno == EINTR) continue;  // the guard's handler ran; its byte is now in the pipe
                return -1;
            }
            if (self->wake_fd >= 0 && (fds[1].revents & POLLIN)) {
                self->interrupted = true;
                return 0;
            }
            char byte = 0;
            const ssize_t got = ::read(STDIN_FILENO, &byte, 1);
            if (got < 0 && errno == EINTR) continue;
            if (got <= 0) return static_cast<int>(got);
            const size_t r = std::mbrtowc(out, &byte, 1, &self->decode);
            if (r == static_cast<size_t>(-2)) continue;  // the middle of a multi-byte character
            if (r == static_cast<size_t>(-1)) {          // not valid in the locale: pass the byte through
                self->decode = {};
                *out = static_cast<unsigned char>(byte);
            }
            return 1;
        }
    }
};

LineReader::LineReader(const std::string& program_name) {
    interactive_ = isatty(STDIN_FILENO) && isatty(STDOUT_FILENO);
    if (!interactive_) return;
    impl_ = new Impl;
    impl_->el = el_init(program_name.c_str(), stdin, stdout, stderr);
    impl_->hist = history_init();
    history(impl_->hist, &impl_->ev, H_SETSIZE, 1000);
    el_set(impl_->el, EL_CLIENTDATA, impl_);
    el_set(impl_->el, EL_PROMPT, &Impl::prompt_of);
    el_set(impl_->el, EL_EDITOR, "emacs");
    el_set(impl_->el, EL_HIST, history, impl_->hist);
    el_set(impl_->el, EL_GETCFN, &Impl::next_char);
    // No EL_SIGNAL: the command's own SIGINT handler (interrupt.h) stays in charge and wakes next_char.
    el_source(impl_->el, nullptr);  // the user's ~/.editrc, if any
}

LineReader::~LineReader() {
    if (!impl_) return;
    history_end(impl_->hist);
    el_end(impl_->el);
    delete impl_;
}

ReadResult LineReader::read(const std::string& prompt) {
    if (!impl_) {
        std::string line;
        std::cout << std::flush;
        if (!std::getline(std::cin, line)) return {ReadStatus::EndOfInput, {}};
        return {ReadStatus::Line, std::move(line)};
    }
    impl_->prompt = prompt;
    impl_->interrupted = false;
    impl_->decode = {};
    int count = 0;
    const char* s = el_gets(impl_->el, &count);
    if (impl_->interrupted) {  // the partial line, if any, is dropped
        el_reset(impl_->el);
        std::fputs("^C\n", stdout);
        std::fflush(stdout);
        return {ReadStatus::Interrupted, {}};
    }
    if (!s) {
        std::fputs("\n", stdout);
        return {ReadStatus::EndOfInput, {}};
    }
    std::string line(s, static_cast<size_t>(count));
    while (!line.empty() && (line.back() == '\n' || line.back() == '\r')) line.pop_back();
    return {ReadStatus::Line, std::move(line)};
}

void LineReader::watch_interrupts(int wake_fd) {
    if (impl_) impl_->wake_fd = wake_fd;
}

void LineReader::remember(const std::string& line) {
    if (impl_ && !line.empty()) history(impl_->hist, &impl_->ev, H_ENTER, line.c_str());
}

}  // namespace orcd::cli
