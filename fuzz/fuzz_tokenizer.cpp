// libFuzzer target for the tokenizers: any bytes must encode to valid ids under every shared vocabulary (byte-level
// BPE with the qwen2 and gpt-2 pre-tokenizers, SentencePiece), and decode back to the input, read as UTF-8 with
// U+FFFD for invalid bytes (NFC for Qwen). The streaming detokenizer must give the same text in valid UTF-8 pieces.
// The first input byte picks the vocabulary and the flags; the rest is the text.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "gguf/file.h"
#include "tokenizer/detokenizer.h"
#include "tokenizer/tokenizer.h"
#include "tokenizer/unicode.h"

namespace {

using namespace orcd::tokenizer;

struct Loaded {
    std::vector<std::unique_ptr<Tokenizer>> tokenizers;
};

const Loaded& loaded() {
    static const Loaded l = [] {
        const char* env = std::getenv("ORCD_SHARED_DIR");
        const std::filesystem::path shared = env ? env : ORCD_SHARED_DIR;
        Loaded out;
        for (const char* name : {"ggml-vocab-qwen2.5.gguf", "ggml-vocab-gpt-2.gguf", "ggml-vocab-llama-spm.gguf",
                                 "ggml-vocab-phi-3.gguf"}) {
            const auto file = orcd::gguf::File::open(shared / "models" / "vocab" / name);
            out.tokenizers.push_back(std::make_unique<Tokenizer>(Tokenizer::from_gguf(file)));
        }
        return out;
    }();
    return l;
}

[[noreturn]] void fail(const char* what, std::string_view input) {
    std::fprintf(stderr, "fuzz_tokenizer: %s (input of %zu bytes)\n", what, input.size());
    std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    if (size == 0) return 0;
    const Loaded& l = loaded();
    const uint8_t selector = data[0];
    const Tokenizer& tok = *l.tokenizers[selector % l.tokenizers.size()];
    const bool parse_special = (selector >> 2) & 1;
    const bool add_special = (selector >> 3) & 1;
    const std::string_view text(reinterpret_cast<const char*>(data + 1), size - 1);

    const std::vector<TokenId> ids = tok.encode(text, add_special, parse_special);
    for (TokenId id : ids) {
        if (!tok.vocab().valid(id)) fail("encode produced an id outside the vocabulary", text);
    }

    // Streaming equals whole decoding; every piece is valid UTF-8.
    Detokenizer d(tok, {.show_special = true, .strip_leading_space = true});
    std::string streamed;
    for (TokenId id : ids) {
        const std::string piece = d.push(id);
        if (!unicode::is_valid_utf8(piece)) fail("detokenizer emitted invalid UTF-8", text);
        streamed += piece;
    }
    streamed += d.finish();
    const std::string decoded = tok.decode(ids, /*show_special=*/true);
    if (streamed != decoded) fail("streamed text differs from decode()", text);

    // Round trip of plain text (no special tokens parsed, none added). SentencePiece turns a literal U+2581 into a
    // space on decoding, as the reference does, so such inputs are excluded from the comparison.
    if (!parse_special && !add_special) {
        std::string expected = unicode::sanitize_utf8(text);
        if (tok.kind_name() == "bpe/qwen2") expected = unicode::nfc(expected);
        const bool spm = tok.kind() == Kind::SentencePiece;
        if (!(spm && expected.find("\xE2\x96\x81") != std::string::npos) && decoded != expected) {
            fail("decode(encode(text)) differs from the text", text);
        }
    }
    return 0;
}
