#pragma once
// Exact-text lookup of a vocabulary's tokens: an open-addressing table of (hash tag, id) pairs over the token texts.
// Tokenizers ask it for every candidate merge (SentencePiece: two per merge and one per symbol), so it is the
// tokenizer's hottest path. A node-based std::unordered_map costs a bucket, a node and the key's bytes per probe
// (three dependent cache misses); here a probe reads one 8-byte slot, and a matching tag one token text (short texts
// sit inside their std::string).
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace orcd::tokenizer {

class TextIndex {
public:
    TextIndex() = default;
    // Indexes the texts. It keeps texts.data(): the vector must not be resized or its strings changed while the index
    // is used (moving the vector keeps its buffer, so it may move). A text that appears twice resolves to its lowest
    // id.
    explicit TextIndex(const std::vector<std::string>& texts);

    // The id of `text`, or -1.
    int32_t find(std::string_view text) const;

private:
    // The slot of `text` (hash h), or the empty slot where it would go.
    uint64_t probe(uint64_t h, std::string_view text) const;

    struct Slot {
        uint32_t tag;  // the hash's upper half: most probes of a slot with another text stop here
        int32_t id;    // -1: empty
    };
    const std::string* texts_ = nullptr;
    std::vector<Slot> slots_;
    uint64_t mask_ = 0;
};

}  // namespace orcd::tokenizer
