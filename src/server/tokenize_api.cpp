#include "server/tokenize_api.h"

#include <fmt/format.h>

#include "common/error.h"
#include "server/requests.h"

namespace orcd::server {

using json = nlohmann::json;

namespace {

// Every key known, each of the right type: a misspelt "add_specials" would silently change the count.
std::optional<std::string> check_fields(const json& body, std::initializer_list<std::pair<const char*, bool>> known) {
    if (!body.is_object()) return "(body): expected a JSON object";
    for (auto it = body.begin(); it != body.end(); ++it) {
        bool found = false;
        for (const auto& [name, is_bool] : known) {
            if (it.key() != name) continue;
            found = true;
            if (is_bool && !it->is_boolean()) return fmt::format("{}: expected true or false", name);
        }
        if (!found) return fmt::format("{}: unknown field", it.key());
    }
    return std::nullopt;
}

}  // namespace

void TokenizeApi::tokenize(const HttpRequest& req, const Ex& ex) {
    auto parsed = read_json_body(req, nullptr);
    if (auto* refused = std::get_if<HttpResponse>(&parsed)) return ex->reply(std::move(*refused));
    const json& body = std::get<json>(parsed);
    auto bad = [&](const std::string& msg) { ex->reply(api_error(req.path, 400, "INVALID_REQUEST", msg)); };
    if (auto why = check_fields(
            body, {{"content", false}, {"add_special", true}, {"parse_special", true}, {"with_pieces", true}})) {
        return bad(*why);
    }
    if (!body.contains("content") || !body["content"].is_string()) return bad("content: expected a string");
    const std::string& text = body["content"].get_ref<const std::string&>();
    if (utf8_length(text) > kMaxPromptChars) {
        return bad(fmt::format("content: expected at most {} characters", kMaxPromptChars));
    }
    // llama-server's defaults: no BOS, special tokens written in the text parsed.
    const auto ids = ctx_.service.tokenize(text, body.value("add_special", false), body.value("parse_special", true));
    json tokens = json::array();
    if (body.value("with_pieces", false)) {
        for (int32_t id : ids) tokens.push_back({{"id", id}, {"piece", ctx_.service.token_piece(id)}});
    } else {
        tokens = ids;
    }
    ex->reply(json_response(200, {{"tokens", std::move(tokens)}}));
}

void TokenizeApi::detokenize(const HttpRequest& req, const Ex& ex) {
    auto parsed = read_json_body(req, nullptr);
    if (auto* refused = std::get_if<HttpResponse>(&parsed)) return ex->reply(std::move(*refused));
    const json& body = std::get<json>(parsed);
    auto bad = [&](const std::string& msg) { ex->reply(api_error(req.path, 400, "INVALID_REQUEST", msg)); };
    if (auto why = check_fields(body, {{"tokens", false}})) return bad(*why);
    if (!body.contains("tokens") || !body["tokens"].is_array()) return bad("tokens: expected an array of token ids");
    std::vector<int32_t> ids;
    for (size_t i = 0; i < body["tokens"].size(); ++i) {
        const json& t = body["tokens"][i];
        if (!t.is_number_integer() || t.get<int64_t>() < 0 || t.get<int64_t>() >= ctx_.service.info().vocab_size) {
            return bad(fmt::format("tokens[{}]: expected a token id in [0, {}), found {}", i,
                                   ctx_.service.info().vocab_size, t.dump()));
        }
        ids.push_back(t.get<int32_t>());
    }
    try {
        ex->reply(json_response(200, {{"content", ctx_.service.detokenize(ids)}}));
    } catch (const Error& e) {
        bad(e.what());
    }
}

}  // namespace orcd::server
