#pragma once
// The help group of the deprecated flag spellings (options.h): --help lists them under this heading, so that a user
// sees which spellings are going away; `orcd reference flags` and the did-you-mean suggestions leave them out.
#include <CLI/CLI.hpp>
#include <string_view>

namespace orcd::cli {

inline constexpr std::string_view kDeprecatedGroup = "Deprecated (removed in the next release)";

inline bool is_deprecated(const CLI::Option& o) { return o.get_group() == kDeprecatedGroup; }

}  // namespace orcd::cli
