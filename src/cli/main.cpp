// orcd — one executable, one subcommand per job. Subcommands live in cmd_*.cpp and register through commands.h;
// this file only parses, dispatches and maps errors to exit codes.
#include <cstdio>
#include <fmt/format.h>

#include "cli/commands.h"
#include "cli/suggest.h"
#include "cli/version.h"
#include "common/error.h"

int main(int argc, char** argv) {
    CLI::App app{"orcd — GGUF inference worker", "orcd"};
    app.require_subcommand(1);
    app.set_version_flag(
        "--version", [] { return orcd::cli::version_text(); }, "Print the version, commit, CUDA and build");
    orcd::cli::add_inspect(app);
    orcd::cli::add_synth(app);
    orcd::cli::add_load(app);
    orcd::cli::add_tokenize(app);
    orcd::cli::add_serve(app);
    orcd::cli::add_generate(app);
    orcd::cli::add_perplexity(app);
    orcd::cli::add_bench(app);
    orcd::cli::add_chat(app);
    orcd::cli::add_reference(app);
    orcd::cli::add_template(app);
    try {
        app.parse(argc, argv);
    } catch (const CLI::CallForHelp& e) {
        return app.exit(e);
    } catch (const CLI::CallForAllHelp& e) {
        return app.exit(e);
    } catch (const CLI::CallForVersion& e) {
        return app.exit(e);
    } catch (const CLI::RuntimeError& e) {
        // A command's own exit status (130 after an interrupt, a benchmark's failure): it has said why already.
        return e.get_exit_code();
    } catch (const CLI::ParseError& e) {
        // A mistake on the command line: what is wrong, the closest known flags, and the subcommand's usage.
        const std::vector<std::string> args(argv + 1, argv + argc);
        fmt::print(stderr, "{}", orcd::cli::parse_error_message(app, e, args));
        return e.get_exit_code();
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
