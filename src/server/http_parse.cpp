#include "server/http_parse.h"

#include <fmt/format.h>

#include <algorithm>
#include <boost/beast/http.hpp>

namespace orcd::server {

namespace http = boost::beast::http;

namespace {

std::string lower(std::string_view s) {
    std::string out(s);
    for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return out;
}

std::string trim(std::string_view s) {
    while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
    while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
    return std::string(s);
}

}  // namespace

const std::string& HttpRequest::header(std::string_view name) const {
    static const std::string kEmpty;
    for (const auto& [k, v] : headers) {
        if (k == name) return v;
    }
    return kEmpty;
}

bool HttpRequest::has_header(std::string_view name) const {
    return std::any_of(headers.begin(), headers.end(), [&](const auto& h) { return h.first == name; });
}

void configure_parser(BeastParser& parser, const TransportLimits& limits) {
    parser.header_limit(static_cast<std::uint32_t>(std::min<size_t>(limits.max_header_bytes, UINT32_MAX)));
    parser.body_limit(limits.max_body_bytes);
}

RefusedRequest refusal_for(boost::beast::error_code ec, const std::string& path, const TransportLimits& limits) {
    if (ec == http::error::header_limit) {
        return {
            Refusal::HeadersTooLarge, "",
            fmt::format("the request line and headers exceed {} bytes (--max-header-bytes)", limits.max_header_bytes)};
    }
    if (ec == http::error::body_limit) {
        return {Refusal::BodyTooLarge, path,
                fmt::format("the request body exceeds {} bytes (--max-body-bytes)", limits.max_body_bytes)};
    }
    return {Refusal::MalformedRequest, path, fmt::format("malformed HTTP request: {}", ec.message())};
}

std::variant<HttpRequest, RefusedRequest> finish_request(BeastParser& parser, const TransportLimits& limits,
                                                         bool& keep_alive) {
    auto& msg = parser.get();
    HttpRequest req;
    req.method = std::string(msg.method_string());
    req.target = std::string(msg.target());
    req.path = req.target.substr(0, req.target.find('?'));
    size_t content_lengths = 0;
    size_t transfer_encodings = 0;
    for (const auto& f : msg) {
        req.headers.emplace_back(lower(f.name_string()), std::string(f.value()));
        content_lengths += req.headers.back().first == "content-length";
        transfer_encodings += req.headers.back().first == "transfer-encoding";
    }
    req.body = std::move(msg.body());
    keep_alive = msg.keep_alive();
    if (req.target.size() > limits.max_target_bytes) {
        return RefusedRequest{Refusal::TargetTooLong, "",
                              fmt::format("the request target is {} bytes; at most {} are accepted", req.target.size(),
                                          limits.max_target_bytes)};
    }
    // Framing that two parsers could read differently is refused outright (request smuggling): "chunked" alone as
    // the transfer coding, once, never with a Content-Length; and one Content-Length.
    if (transfer_encodings > 0 &&
        (transfer_encodings != 1 || content_lengths > 0 || lower(trim(req.header("transfer-encoding"))) != "chunked")) {
        return RefusedRequest{Refusal::MalformedRequest, req.path,
                              "Transfer-Encoding must be exactly 'chunked', once, and without Content-Length"};
    }
    if (content_lengths > 1) {
        return RefusedRequest{Refusal::MalformedRequest, req.path, "more than one Content-Length header"};
    }
    return req;
}

std::variant<Parsed, RefusedRequest, Incomplete> parse_request(std::string_view bytes, const TransportLimits& limits) {
    BeastParser parser;
    configure_parser(parser, limits);
    parser.eager(true);
    size_t used = 0;
    boost::beast::error_code ec;
    while (used < bytes.size() && !parser.is_done()) {
        const size_t n = parser.put(boost::asio::buffer(bytes.data() + used, bytes.size() - used), ec);
        if (ec == http::error::need_more) {
            // Beast wants the whole header in one buffer; it has it all already: more bytes must come.
            ec = {};
            break;
        }
        if (ec) return refusal_for(ec, std::string(parser.get().target()), limits);
        if (n == 0) break;
        used += n;
    }
    if (!parser.is_done()) {
        // The transport's reads stop at the header budget as well: a header that cannot end within it is refused.
        if (!parser.is_header_done() && bytes.size() >= limits.max_header_bytes) {
            return refusal_for(http::error::header_limit, "", limits);
        }
        return Incomplete{};
    }
    Parsed p;
    auto r = finish_request(parser, limits, p.keep_alive);
    if (auto* refused = std::get_if<RefusedRequest>(&r)) return *refused;
    p.request = std::move(std::get<HttpRequest>(r));
    p.consumed = used;
    return p;
}

}  // namespace orcd::server
