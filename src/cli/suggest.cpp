#include "cli/suggest.h"

#include "cli/deprecated_group.h"

#include <fmt/format.h>

#include <algorithm>
#include <numeric>

namespace orcd::cli {

size_t edit_distance(std::string_view a, std::string_view b) {
    // Three rows suffice for the transposition rule.
    std::vector<size_t> prev2(b.size() + 1), prev(b.size() + 1), cur(b.size() + 1);
    std::iota(prev.begin(), prev.end(), size_t{0});
    for (size_t i = 1; i <= a.size(); ++i) {
        cur[0] = i;
        for (size_t j = 1; j <= b.size(); ++j) {
            const size_t cost = a[i - 1] == b[j - 1] ? 0 : 1;
            cur[j] = std::min({prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + cost});
            if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1])
                cur[j] = std::min(cur[j], prev2[j - 2] + 1);
        }
        std::swap(prev2, prev);
        std::swap(prev, cur);
    }
    return prev[b.size()];
}

std::vector<std::string> closest(std::string_view word, const std::vector<std::string>& candidates) {
    const auto strip = [](std::string_view s) { return s.substr(std::min(s.find_first_not_of('-'), s.size())); };
    const std::string_view bare = strip(word);
    const size_t limit = std::max<size_t>(1, bare.size() / 3);
    std::vector<std::pair<size_t, std::string>> scored;
    for (const std::string& c : candidates) {
        if (c == word) continue;
        const std::string_view cb = strip(c);
        size_t d = edit_distance(bare, cb);
        if (bare.size() >= 2 && cb.starts_with(bare)) d = std::min<size_t>(d, 1);
        if (d <= limit) scored.emplace_back(d, c);
    }
    std::stable_sort(scored.begin(), scored.end(), [](const auto& x, const auto& y) { return x.first < y.first; });
    std::vector<std::string> out;
    for (auto& [d, c] : scored) {
        if (out.size() == 3) break;
        if (std::find(out.begin(), out.end(), c) == out.end()) out.push_back(std::move(c));
    }
    return out;
}

std::vector<std::string> known_names(const CLI::App& app, bool with_deprecated) {
    std::vector<std::string> names;
    for (const CLI::Option* o : app.get_options()) {
        if (!with_deprecated && is_deprecated(*o)) continue;  // deprecated spellings are accepted, never suggested
        for (const std::string& s : o->get_snames()) names.push_back("-" + s);
        for (const std::string& l : o->get_lnames()) names.push_back("--" + l);
    }
    for (const CLI::App* sub : app.get_subcommands([](const CLI::App*) { return true; }))
        names.push_back(sub->get_name());
    return names;
}

std::string parse_error_message(const CLI::App& root, const CLI::ParseError& error,
                                const std::vector<std::string>& args) {
    // The subcommand that was being parsed: the last one the command line named.
    const CLI::App* app = &root;
    for (const std::string& a : args) {
        for (const CLI::App* sub : root.get_subcommands([](const CLI::App*) { return true; })) {
            if (sub->get_name() == a) app = sub;
        }
    }
    std::string msg = fmt::format("error: {}\n", error.what());
    const std::vector<std::string> names = known_names(*app);
    const std::vector<std::string> accepted = known_names(*app, /*with_deprecated=*/true);
    for (const std::string& a : args) {
        const std::string word = a.substr(0, a.find('='));
        const bool is_flag = word.size() > 1 && word[0] == '-';
        if (app == &root) {
            // No subcommand was recognised: only the first word can be a misspelt one.
            if (is_flag || word.empty()) continue;
            if (const auto near = closest(word, names); !near.empty())
                msg += fmt::format("did you mean {} (for {})?\n", fmt::join(near, " or "), word);
            break;
        }
        if (!is_flag) continue;
        if (std::find(accepted.begin(), accepted.end(), word) != accepted.end()) continue;
        const std::vector<std::string> near = closest(word, names);
        if (!near.empty()) msg += fmt::format("did you mean {} (for {})?\n", fmt::join(near, " or "), word);
    }
    msg += "\n" + app->help(app == &root ? "" : root.get_name(), CLI::AppFormatMode::Normal);
    return msg;
}

}  // namespace orcd::cli
