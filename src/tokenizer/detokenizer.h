#pragma once
// Streaming ids -> text. A token may end in the middle of a UTF-8 sequence (byte-level BPE and byte-fallback tokens
// split multi-byte characters); the detokenizer holds such bytes back until the sequence completes, so every string
// it returns is valid UTF-8 and the concatenation of its outputs equals Tokenizer::decode of the same ids.
#include <string>

#include "tokenizer/vocab.h"

namespace orcd::tokenizer {

class Tokenizer;

struct DetokenizerOptions {
    bool show_special = false;  // write control/unknown/unused tokens as their text instead of skipping them
    // SentencePiece: drop the space that encoding prepends, from the first text the stream produces. Right for a
    // whole decoded input; a continuation (generated text after a prompt) keeps it off.
    bool strip_leading_space = false;
};

class Detokenizer {
public:
    Detokenizer(const Tokenizer& tokenizer, DetokenizerOptions options = {});

    // Adds one token; returns the text that became complete (possibly empty). Invalid byte sequences become U+FFFD as
    // soon as they are known to be invalid; a sequence that may still complete is held back.
    std::string push(TokenId id);
    // Ends the stream: returns what was held back, with an incomplete final sequence as U+FFFD. The detokenizer can
    // then be reused for a new stream.
    std::string finish();
    // Bytes currently held back (0..3).
    size_t pending() const { return pending_.size(); }

private:
    std::string drain(bool at_end);

    const Tokenizer& tokenizer_;
    DetokenizerOptions options_;
    bool strip_pending_;
    std::string pending_;
};

}  // namespace orcd::tokenizer
