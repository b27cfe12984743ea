// libFuzzer target for the GBNF parser: any bytes either compile (then a matcher runs over them) or are refused with
// orcd::Error; never a crash, a hang or unbounded memory (the limits in fuzz_grammar_common.h bound both).
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "fuzz_grammar_common.h"
#include "grammar/gbnf.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    const std::string_view text(reinterpret_cast<const char*>(data), size);
    try {
        fuzz_grammar::exercise(orcd::grammar::parse_gbnf(text, fuzz_grammar::limits()), text);
    } catch (const orcd::Error&) {}
    return 0;
}
