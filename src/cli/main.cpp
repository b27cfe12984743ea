// orcd — one executable, one subcommand per job. Subcommands live in cmd_*.cpp and register through commands.h;
// this file only parses, dispatches and maps errors to exit codes.
#include <cstdio>
#include <fmt/format.h>

#include "cli/commands.h"
#include "common/error.h"

int main(int argc, char** argv) {
    CLI::App app{"orcd — GGUF inference worker"};
    app.require_subcommand(1);
    app.set_version_flag("--version", "orcd 0.1.0");
    orcd::cli::add_inspect(app);
    orcd::cli::add_synth(app);
    orcd::cli::add_load(app);
    orcd::cli::add_tokenize(app);
    orcd::cli::add_serve(app);
    orcd::cli::add_generate(app);
    orcd::cli::add_perplexity(app);
    orcd::cli::add_bench(app);
    orcd::cli::add_template(app);
    try {
        app.parse(argc, argv);
    } catch (const CLI::ParseError& e) {
        return app.exit(e);
    } catch (const orcd::Error& e) {
        // Subcommand callbacks run inside parse(): library errors land here with their code.
        fmt::print(stderr, "error [{}]: {}\n", orcd::error_code_name(e.code()), e.what());
        return 1;
    } catch (const std::exception& e) {
        fmt::print(stderr, "error [INTERNAL]: {}\n", e.what());
        return 1;
    }
    return 0;
}
