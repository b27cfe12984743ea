#pragma once
// Byte-level BPE (GPT-2, Qwen2): text -> NFC (Qwen) -> pre-tokenizer words -> each word's bytes mapped to GPT-2's
// printable byte alphabet -> merges applied by rank. Merges are looked up by token-id pairs, and within one encode
// call the ids of short words are cached, since natural text repeats its words.
#include <string>
#include <string_view>
#include <vector>

#include "tokenizer/model.h"
#include "tokenizer/pretokenize.h"

namespace orcd::tokenizer {

class BpeModel final : public Model {
public:
    // Throws Error(Tokenizer) when a merge is malformed or a byte of the alphabet has no token.
    BpeModel(const Vocab& vocab, PreTokenizer pre, bool nfc);

    void encode(std::string_view text, bool starts_segment, std::vector<TokenId>& out) const override;
    void append_bytes(TokenId id, std::string& out) const override;

    // Encodes one pre-tokenized word (its raw UTF-8 bytes), without the cache. Exposed for tests.
    void encode_word(std::string_view word, std::vector<TokenId>& out) const;
    // The same with the heap-based merge loop whatever the word's length (the short-word path is checked against it).
    void encode_word_heap(std::string_view word, std::vector<TokenId>& out) const;

private:
    struct Merge {
        int32_t rank;
        TokenId result;
    };
    // The merge table is an open-addressing hash table (linear probing, power-of-two size, load <= 1/2) keyed by the
    // pair of token ids: a lookup is one or two cache lines, where std::unordered_map's node chains cost several
    // misses, and lookups are most of the time spent on words not seen before.
    struct MergeSlot {
        uint64_t key = kEmptyKey;
        Merge merge{};
    };
    static constexpr uint64_t kEmptyKey = ~uint64_t{0};
    static uint64_t pair_key(TokenId a, TokenId b) {
        return (static_cast<uint64_t>(static_cast<uint32_t>(a)) << 32) | static_cast<uint32_t>(b);
    }
    size_t slot_of(uint64_t key) const { return static_cast<size_t>((key * 0x9E3779B97F4A7C15ull) >> shift_); }
    const Merge* find_merge(TokenId a, TokenId b) const;
    void fill_byte_pairs();
    static constexpr size_t kSmallWord = 48;
    void encode_small(std::string_view word, std::vector<TokenId>& out) const;

    PreTokenizer pre_;
    bool nfc_;
    TokenId byte_token_[256];           // byte -> token of its one-character alphabet symbol
    std::vector<std::string> decoded_;  // token id -> the bytes it stands for
    std::vector<MergeSlot> merges_;
    // Merges of two single-byte tokens, indexed by the bytes (rank -1: none): every word starts with these lookups,
    // and this table (512 KiB) stays in cache where the hash table does not.
    std::vector<Merge> byte_pairs_;
    unsigned shift_ = 63;  // 64 - log2(merges_.size())
};

// GPT-2's reversible byte <-> printable code point mapping (bytes that are printable Latin-1 map to themselves, the
// others to U+0100 onwards).
char32_t byte_to_codepoint(uint8_t b);
// The byte a code point stands for, or -1 when it is not in the alphabet.
int codepoint_to_byte(char32_t cp);

}  // namespace orcd::tokenizer
