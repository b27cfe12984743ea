#include "cli/line_reader.h"

#include <histedit.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <iostream>

namespace orcd::cli {

// libedit's native interface (not its readline emulation): el_gets reports an interrupted read as a null return
// with errno EINTR, which is how Ctrl-C at the prompt is told apart from Ctrl-D.
struct LineReader::Impl {
    EditLine* el = nullptr;
    History* hist = nullptr;
    HistEvent ev{};
    std::string prompt;

    static const char* prompt_of(EditLine* el) {
        Impl* self = nullptr;
        el_get(el, EL_CLIENTDATA, &self);
        return self ? self->prompt.c_str() : "";
    }
};

LineReader::LineReader(std::string program_name) {
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
    // No EL_SIGNAL: the command's own SIGINT handler (interrupt.h) stays in charge; without SA_RESTART the blocked
    // read returns EINTR and el_gets gives up the line.
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
    int count = 0;
    errno = 0;
    const char* s = el_gets(impl_->el, &count);
    if (!s) {
        if (errno == EINTR) {
            el_reset(impl_->el);
            std::fputs("^C\n", stdout);
            return {ReadStatus::Interrupted, {}};
        }
        std::fputs("\n", stdout);
        return {ReadStatus::EndOfInput, {}};
    }
    std::string line(s, static_cast<size_t>(count));
    while (!line.empty() && (line.back() == '\n' || line.back() == '\r')) line.pop_back();
    return {ReadStatus::Line, std::move(line)};
}

void LineReader::remember(const std::string& line) {
    if (impl_ && !line.empty()) history(impl_->hist, &impl_->ev, H_ENTER, line.c_str());
}

}  // namespace orcd::cli
