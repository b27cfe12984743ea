// libFuzzer target for the tool-call parsers (model output is untrusted text): every format parses any bytes, whole
// and streamed in two pieces, without a crash; the streamed content plus the held-back rest never exceeds the input.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "toolcall/toolcall.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    using namespace orcd::toolcall;
    const std::string_view text(reinterpret_cast<const char*>(data), size);
    for (Format f : {Format::Hermes, Format::Llama3, Format::Mistral}) {
        const Parsed whole = parse(f, text);
        if (whole.content.size() > text.size()) std::abort();
        StreamSplitter s(f);
        std::string streamed = s.push(text.substr(0, size / 2));
        streamed += s.push(text.substr(size / 2));
        const Parsed rest = s.finish();
        if (streamed.size() + rest.content.size() > text.size()) std::abort();
        if (rest.calls.size() != whole.calls.size() && streamed.empty()) std::abort();
    }
    return 0;
}
