#pragma once
// Reading one HTTP/1.1 request with the transport's limits: Beast's parser (header budget, body limit, chunked
// decoding, Content-Length syntax), then the framing rules Beast leaves to the server (request smuggling, target
// length). Internal to the transport (it includes Beast); the fuzzer drives the same steps through parse_request().
#include <boost/beast/core/error.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/string_body.hpp>
#include <string>
#include <string_view>
#include <variant>

#include "server/transport.h"

namespace orcd::server {

using BeastParser = boost::beast::http::request_parser<boost::beast::http::string_body>;

struct RefusedRequest {
    Refusal why;
    std::string path;    // "" when the request line was not read
    std::string detail;  // which limit or rule, and the flag that changes it
};

void configure_parser(BeastParser& parser, const TransportLimits& limits);
// The refusal for a parser error (`ec` is not end-of-stream, a reset or a timeout: those drop the connection).
RefusedRequest refusal_for(boost::beast::error_code ec, const std::string& path, const TransportLimits& limits);
// The parsed message as an HttpRequest, or the framing rule it breaks. `keep_alive` is the message's own wish.
std::variant<HttpRequest, RefusedRequest> finish_request(BeastParser& parser, const TransportLimits& limits,
                                                         bool& keep_alive);

// One request from the start of `bytes`, all steps at once. `consumed` is the bytes it took; nullopt-like
// Incomplete when more bytes are needed.
struct Incomplete {};
struct Parsed {
    HttpRequest request;
    size_t consumed = 0;
    bool keep_alive = false;
};
std::variant<Parsed, RefusedRequest, Incomplete> parse_request(std::string_view bytes, const TransportLimits& limits);

}  // namespace orcd::server
