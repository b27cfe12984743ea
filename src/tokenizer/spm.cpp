#include "tokenizer/spm.h"

#include <cstdio>
#include <algorithm>

#include <fmt/format.h>

#include "common/error.h"
#include "tokenizer/unicode.h"

namespace orcd::tokenizer {

namespace {

constexpr std::string_view kSpaceMarker = "\xE2\x96\x81";  // U+2581 LOWER ONE EIGHTH BLOCK, SentencePiece's space

struct Symbol {
    uint32_t start;  // byte offset in the escaped text
    uint32_t len;    // 0 once merged into its left neighbour
    int32_t prev;
    int32_t next;
};

struct Bigram {
    float score;
    int32_t left;
    int32_t right;
    uint32_t len;  // combined length when queued; a different current length means the candidate is stale
    // Highest score first; among equal scores the leftmost, as SentencePiece and llama.cpp order them.
    bool operator<(const Bigram& o) const { return score != o.score ? score < o.score : left > o.left; }
};

// The first "▁" at or after `from` (at least 1) that follows another character, or npos: where a word starts.
size_t next_word_start(std::string_view text, size_t from) {
    for (size_t at = text.find(kSpaceMarker, from); at != std::string_view::npos;
         at = text.find(kSpaceMarker, at + 1)) {
        if (!text.substr(0, at).ends_with(kSpaceMarker)) return at;
    }
    return std::string_view::npos;
}

}  // namespace

// Buffers reused from word to word of one encode call.
struct SpmModel::Scratch {
    std::vector<Symbol> symbols;
    std::vector<Bigram> queue;
};

SpmModel::SpmModel(const Vocab& vocab, Walk walk) : vocab_(vocab) {
    for (int b = 0; b < 256; ++b) {
        const std::string name = fmt::format("<0x{:02X}>", b);
        byte_token_[b] = vocab.find(name);
        if (byte_token_[b] == kNoToken) {
            throw Error(ErrorCode::Tokenizer,
                        fmt::format("SentencePiece vocabulary has no byte-fallback token '{}'", name));
        }
    }
    // Whether the text can be encoded word by word (encode): no token holds another character followed by "▁".
    words_merge_apart_ = walk == Walk::WordByWordWhereExact;
    for (size_t id = 0; id < vocab.size() && words_merge_apart_; ++id) {
        words_merge_apart_ = next_word_start(vocab.text(static_cast<TokenId>(id)), 1) == std::string_view::npos;
    }
    decoded_.resize(vocab.size());
    for (size_t id = 0; id < vocab.size(); ++id) {
        const std::string_view text = vocab.text(static_cast<TokenId>(id));
        std::string& out = decoded_[id];
        if (vocab.type(static_cast<TokenId>(id)) == TokenType::Byte) {
            // "<0xXX>": the byte itself.
            unsigned value = 0;
            if (text.size() == 6 && std::sscanf(std::string(text).c_str(), "<0x%02X>", &value) == 1) {
                out.push_back(static_cast<char>(value));
                continue;
            }
        }
        for (size_t pos = 0; pos < text.size();) {
            if (text.substr(pos, kSpaceMarker.size()) == kSpaceMarker) {
                out.push_back(' ');
                pos += kSpaceMarker.size();
            } else {
                out.push_back(text[pos++]);
            }
        }
    }
}

void SpmModel::encode(std::string_view raw, bool starts_segment, std::vector<TokenId>& out) const {
    std::string text;
    text.reserve(raw.size() + 16);
    if (starts_segment && vocab_.add_space_prefix) text.append(kSpaceMarker);
    for (char c : raw) {
        if (c == ' ') {
            text.append(kSpaceMarker);
        } else {
            text.push_back(c);
        }
    }
    if (text.empty()) return;
    Scratch scratch;
    if (!words_merge_apart_) {
        encode_escaped(text, 0, text.size(), scratch, out);
        return;
    }
    // Word by word: a word starts at a "▁" that follows another character (a run of "▁" stays with the word after
    // it). No token holds such a pair (checked in the constructor), so no merge crosses that point, and the merges on
    // each side are the ones the whole text would make there, in the same order: the same tokens, from heaps of a
    // word's size instead of the whole text's.
    const std::string_view all(text);
    size_t begin = 0;
    for (size_t at = next_word_start(all, 1); at != std::string_view::npos; at = next_word_start(all, at + 1)) {
        encode_escaped(all, begin, at, scratch, out);
        begin = at;
    }
    encode_escaped(all, begin, all.size(), scratch, out);
}

void SpmModel::encode_escaped(std::string_view text, size_t begin, size_t end, Scratch& scratch,
                              std::vector<TokenId>& out) const {
    // One symbol per UTF-8 character (the text is valid UTF-8 here).
    std::vector<Symbol>& symbols = scratch.symbols;
    symbols.clear();
    for (size_t i = begin; i < end;) {
        const uint32_t len = unicode::decode_one(text, i).len;
        const auto index = static_cast<int32_t>(symbols.size());
        symbols.push_back({static_cast<uint32_t>(i), len, index - 1, -1});
        if (index > 0) symbols[index - 1].next = index;
        i += len;
    }

    std::vector<Bigram>& queue = scratch.queue;  // a max-heap
    queue.clear();
    auto consider = [&](int32_t left, int32_t right) {
        if (left < 0 || right < 0) return;
        const uint32_t len = symbols[left].len + symbols[right].len;
        const TokenId id = vocab_.find(text.substr(symbols[left].start, len));
        if (id == kNoToken) return;
        queue.push_back({vocab_.score(id), left, right, len});
        std::push_heap(queue.begin(), queue.end());
    };
    for (size_t i = 1; i < symbols.size(); ++i) consider(static_cast<int32_t>(i - 1), static_cast<int32_t>(i));

    while (!queue.empty()) {
        std::pop_heap(queue.begin(), queue.end());
        const Bigram b = queue.back();
        queue.pop_back();
        Symbol& l = symbols[b.left];
        Symbol& r = symbols[b.right];
        if (l.len == 0 || r.len == 0 || l.len + r.len != b.len) continue;
        l.len += r.len;
        r.len = 0;
        l.next = r.next;
        if (r.next >= 0) symbols[r.next].prev = b.left;
        consider(l.prev, b.left);
        consider(b.left, l.next);
    }

    for (int32_t i = 0; i >= 0; i = symbols[i].next) {
        const std::string_view piece = text.substr(symbols[i].start, symbols[i].len);
        const TokenId id = vocab_.find(piece);
        if (id != kNoToken) {
            out.push_back(id);
        } else {
            // Only single characters get here (every merge forms a token); the vocabulary lacks them.
            for (char c : piece) out.push_back(byte_token_[static_cast<uint8_t>(c)]);
        }
    }
}

void SpmModel::append_bytes(TokenId id, std::string& out) const { out.append(decoded_[static_cast<size_t>(id)]); }

}  // namespace orcd::tokenizer
