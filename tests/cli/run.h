#pragma once
// Runs a command line through the shell and captures its output and exit status (tests drive the real binary).
#include <array>
#include <cstdio>
#include <string>
#include <sys/wait.h>

namespace orcd::test {

struct RunResult {
    int exit_code = -1;
    std::string out;  // stdout (stderr too when the command redirects it)
};

inline RunResult run(const std::string& command) {
    RunResult r;
    FILE* p = ::popen(command.c_str(), "r");
    if (p == nullptr) return r;
    std::array<char, 65536> buf;
    size_t n;
    while ((n = std::fread(buf.data(), 1, buf.size(), p)) > 0) r.out.append(buf.data(), n);
    const int status = ::pclose(p);
    r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    return r;
}

}  // namespace orcd::test
