#pragma once
// Each `orcd` subcommand lives in its own cmd_*.cpp and registers itself on the app here; main() only dispatches.
#include <CLI/CLI.hpp>

namespace orcd::cli {

void add_inspect(CLI::App& app);
void add_synth(CLI::App& app);
void add_load(CLI::App& app);
void add_tokenize(CLI::App& app);
void add_serve(CLI::App& app);
void add_generate(CLI::App& app);
void add_perplexity(CLI::App& app);
void add_bench(CLI::App& app);
void add_chat(CLI::App& app);
void add_reference(CLI::App& app);
void add_template(CLI::App& app);

}  // namespace orcd::cli
