#pragma once
// llama-server's tokenizer endpoints: POST /tokenize {"content", "add_special"?, "parse_special"?, "with_pieces"?}
// -> {"tokens": [...]} (with_pieces: [{"id", "piece"}]), and POST /detokenize {"tokens": [...]} -> {"content"}.
#include <memory>

#include "server/api_common.h"

namespace orcd::server {

class TokenizeApi : public Api {
public:
    using Api::Api;
    void tokenize(const HttpRequest& req, const Ex& ex);
    void detokenize(const HttpRequest& req, const Ex& ex);
};

}  // namespace orcd::server
