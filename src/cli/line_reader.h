#pragma once
// Reads the user's lines for interactive commands: with line editing and history (libedit) when standard input is a
// terminal, plain lines otherwise (so scripts can pipe a conversation in).
#include <optional>
#include <string>

namespace orcd::cli {

enum class ReadStatus { Line, Interrupted, EndOfInput };

struct ReadResult {
    ReadStatus status;
    std::string line;  // for Line: without the newline
};

class LineReader {
public:
    explicit LineReader(const std::string& program_name);
    ~LineReader();
    LineReader(const LineReader&) = delete;
    LineReader& operator=(const LineReader&) = delete;

    // Prints `prompt` and reads one line. Interrupted: Ctrl-C at the prompt (the partial line is dropped).
    // EndOfInput: Ctrl-D on an empty line, or the end of a piped input.
    ReadResult read(const std::string& prompt);
    // A descriptor that becomes readable on Ctrl-C (InterruptGuard::wake_fd): the prompt then ends as Interrupted.
    void watch_interrupts(int wake_fd);
    // Adds a line to the editing history (no-op without a terminal).
    void remember(const std::string& line);
    bool interactive() const { return interactive_; }

private:
    struct Impl;
    Impl* impl_ = nullptr;
    bool interactive_ = false;
};

}  // namespace orcd::cli
