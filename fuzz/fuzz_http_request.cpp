// libFuzzer target for the HTTP request path: the bytes a client sends, read with the transport's own steps (Beast's
// parser with the header budget and body limit, then the framing rules). Any input must give a request, a refusal or
// "need more", never a crash, and a request must respect the limits; pipelined requests are read one after another.
#include <cstddef>
#include <cstdint>
#include <string_view>
#include <variant>

#include "server/http_parse.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    using namespace orcd::server;
    TransportLimits limits;
    limits.max_header_bytes = 4096;  // small limits reach the refusals with small inputs
    limits.max_body_bytes = 8192;
    limits.max_target_bytes = 1024;
    std::string_view bytes(reinterpret_cast<const char*>(data), size);
    for (int i = 0; i < 64 && !bytes.empty(); ++i) {
        auto r = parse_request(bytes, limits);
        auto* p = std::get_if<Parsed>(&r);
        if (!p) break;
        if (p->request.body.size() > limits.max_body_bytes || p->request.target.size() > limits.max_target_bytes ||
            p->consumed == 0 || p->consumed > bytes.size()) {
            __builtin_trap();
        }
        bytes.remove_prefix(p->consumed);
    }
    return 0;
}
