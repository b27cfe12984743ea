#include "tokenizer/detokenizer.h"

#include "tokenizer/tokenizer.h"
#include "tokenizer/unicode.h"

namespace orcd::tokenizer {

namespace {

bool strips_space(const Tokenizer& t, const DetokenizerOptions& o) {
    return o.strip_leading_space && t.kind() == Kind::SentencePiece && t.vocab().add_space_prefix;
}

}  // namespace

Detokenizer::Detokenizer(const Tokenizer& tokenizer, DetokenizerOptions options)
    : tokenizer_(tokenizer), options_(options), strip_pending_(strips_space(tokenizer, options)) {}

std::string Detokenizer::push(TokenId id) {
    const size_t before = pending_.size();
    tokenizer_.append_piece(id, options_.show_special, pending_);
    if (strip_pending_ && pending_.size() > before) {
        // The first token that produces text decides: its leading space (if any) is the one encoding added.
        if (pending_[before] == ' ') pending_.erase(before, 1);
        strip_pending_ = false;
    }
    return drain(false);
}

std::string Detokenizer::finish() {
    std::string out = drain(true);
    strip_pending_ = strips_space(tokenizer_, options_);
    return out;
}

std::string Detokenizer::drain(bool at_end) {
    std::string out;
    size_t i = 0;
    while (i < pending_.size()) {
        const auto b = static_cast<uint8_t>(pending_[i]);
        if (b < 0x80) {
            out.push_back(static_cast<char>(b));
            ++i;
            continue;
        }
        const unicode::Decoded d = unicode::decode_one(pending_, i);
        if (d.valid) {
            out.append(pending_, i, d.len);
        } else if (d.truncated && !at_end) {
            break;  // may complete with the next token
        } else {
            unicode::append_utf8(out, unicode::kReplacement);
        }
        i += d.len;
    }
    pending_.erase(0, i);
    return out;
}

}  // namespace orcd::tokenizer
