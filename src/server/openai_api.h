#pragma once
// The OpenAI-compatible API: GET /v1/models, GET /v1/models/{id}, POST /v1/completions, POST /v1/chat/completions.
#include <memory>

#include "server/api_common.h"

namespace orcd::server {

class OpenAiApi : public Api {
public:
    using Api::Api;
    void models(const HttpRequest& req, const Ex& ex);
    void model(const HttpRequest& req, const Ex& ex);  // /v1/models/{id}
    void completions(const HttpRequest& req, const Ex& ex) { generate(req, ex, false); }
    void chat(const HttpRequest& req, const Ex& ex) { generate(req, ex, true); }

private:
    void generate(const HttpRequest& req, const Ex& ex, bool chat);
    nlohmann::json model_object() const;
};

}  // namespace orcd::server
