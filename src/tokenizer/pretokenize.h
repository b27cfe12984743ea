#pragma once
// Pre-tokenizers of the byte-level BPE models: they cut text into the "words" that BPE then encodes one by one. Each is
// a hand-written matcher equivalent to the model's regular expression (leftmost alternative first, greedy, with the
// backtracking those particular expressions need), because a general regex engine with Unicode classes is both slower
// and a dependency we do not otherwise need.
#include <cstdint>
#include <span>
#include <string_view>
#include <vector>

namespace orcd::tokenizer {

enum class PreTokenizer {
    // GPT-2:  's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
    Gpt2,
    // Qwen2:  (?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|
    //         \s+(?!\S)|\s+
    Qwen2,
};

// Splits `cps` (code points, with their classes from unicode::classes) into consecutive words; appends each word's
// end index (exclusive, in code points) to `ends`. Every code point belongs to exactly one word.
void pretokenize(PreTokenizer kind, std::span<const char32_t> cps, std::span<const uint8_t> cls,
                 std::vector<uint32_t>& ends);

}  // namespace orcd::tokenizer
