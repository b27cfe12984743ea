// libFuzzer target for the JSON Schema compiler (and the pattern translator and GBNF parser behind it): any bytes are
// compiled or refused with orcd::Error, within the limits of fuzz_grammar_common.h; compiled grammars are matched
// against the input too.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "fuzz_grammar_common.h"
#include "grammar/json_schema.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    const std::string_view text(reinterpret_cast<const char*>(data), size);
    try {
        // Half the inputs with bounded strings, as the end-to-end test compiles them.
        const orcd::grammar::SchemaOptions options{.max_string_chars = size % 2 ? 16u : 0u};
        fuzz_grammar::exercise(orcd::grammar::compile_json_schema(text, fuzz_grammar::limits(), options), text);
    } catch (const orcd::Error&) {}
    return 0;
}
