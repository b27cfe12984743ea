#pragma once
// The built-in chat page's files (index.html, app.js, style.css in this folder), compiled into the binary by
// cmake/embed_files.cmake so that the page needs nothing from outside the worker.
#include <optional>
#include <span>
#include <string_view>

namespace orcd::server::webui {

struct Asset {
    std::string_view url;           // "/", "/webui/app.js", ...
    std::string_view content_type;  // with charset
    std::string_view body;
};

std::span<const Asset> assets();

// The asset served at `url` (the path only, no query), or nullopt.
inline std::optional<Asset> find_asset(std::string_view url) {
    for (const Asset& a : assets()) {
        if (a.url == url) return a;
    }
    return std::nullopt;
}

// Headers every asset is served with: a policy that lets the page load only its own files and talk only to its own
// origin, and forbids framing (clickjacking) and content sniffing.
inline constexpr std::string_view kContentSecurityPolicy =
    "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; "
    "base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

}  // namespace orcd::server::webui
