// libFuzzer target for the JSON request decoding: the pre-scan (nesting depth, number range), then nlohmann's
// parser, then the worker API's and the OpenAI API's field checks. Any input must be accepted or refused with a
// named field, never crash; a body that passed the pre-scan is never nested deeper than the limit.
#include <cstddef>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string_view>
#include <vector>

#include "server/json_guard.h"
#include "server/requests.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    using namespace orcd::server;
    const std::string_view text(reinterpret_cast<const char*>(data), size);
    if (prescan_json(text)) return 0;
    nlohmann::json body;
    try {
        body = nlohmann::json::parse(text);
    } catch (const nlohmann::json::exception&) {
        return 0;
    }
    std::vector<FieldError> errors;
    (void)parse_execute(body, 4096, errors);
    errors.clear();
    (void)parse_openai(body, true, 4096, errors);
    errors.clear();
    (void)parse_openai(body, false, 4096, errors);
    return 0;
}
