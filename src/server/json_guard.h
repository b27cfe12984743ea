#pragma once
// A check of a JSON request body before it is parsed, in one pass without recursion: the nesting depth is bounded
// (a tree of ten million '[' would take a gigabyte to build, and freeing or printing it recurses), and every number
// must fit a double (1e400 would otherwise fail deep inside the parser with no field named).
#include <cstddef>
#include <optional>
#include <string_view>

#include "server/requests.h"

namespace orcd::server {

inline constexpr size_t kMaxJsonDepth = 64;

// nullopt when the text passes (it may still be invalid JSON: the parser decides that); otherwise the field where
// the check failed ("messages[0].content", "(body)" at the top) and what was found.
std::optional<FieldError> prescan_json(std::string_view text, size_t max_depth = kMaxJsonDepth);

}  // namespace orcd::server
