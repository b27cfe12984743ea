#pragma once
// llama-server's tokenizer endpoints: POST /tokenize {"content", "add_special"?, "parse_special"?, "with_pieces"?}
// -> {"tokens": [...]} (with_pieces: [{"id", "piece"}]), and POST /detokenize {"tokens": [...]} -> {"content"}.
#include <memory>

#include "server/api_common.h"

namespace orcd::server {

class TokenizeApi {
public:
    explicit TokenizeApi(ServerContext& ctx) : ctx_(ctx) {}
    using Ex = std::shared_ptr<Exchange>;
    void tokenize(const HttpRequest& req, const Ex& ex);
    void detokenize(const HttpRequest& req, const Ex& ex);

private:
    ServerContext& ctx_;
};

}  // namespace orcd::server
