#pragma once
// "Did you mean" for mistyped flags and subcommands: the closest known names by edit distance.
#include <CLI/CLI.hpp>
#include <string>
#include <string_view>
#include <vector>

namespace orcd::cli {

// Optimal-string-alignment distance (insertions, deletions, substitutions, adjacent transpositions).
size_t edit_distance(std::string_view a, std::string_view b);

// The candidates closest to `word`, best first: within a distance of max(1, word.size() / 3), or of which `word` is
// a prefix (at least two characters after the dashes). At most three.
std::vector<std::string> closest(std::string_view word, const std::vector<std::string>& candidates);

// Every spelling of every option and subcommand of `app` ("--top-k", "-n", "generate"); with_deprecated adds the
// deprecated spellings (options.h), which are accepted but never suggested.
std::vector<std::string> known_names(const CLI::App& app, bool with_deprecated = false);

// The message for a parse error: CLI11's text, a "did you mean" line for each unknown flag or subcommand that has a
// close match, and the usage of the (sub)command that failed.
std::string parse_error_message(const CLI::App& root, const CLI::ParseError& error,
                                const std::vector<std::string>& args);

}  // namespace orcd::cli
