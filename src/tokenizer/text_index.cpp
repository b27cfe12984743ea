#include "tokenizer/text_index.h"

#include <functional>

namespace orcd::tokenizer {

namespace {

uint64_t hash_of(std::string_view s) { return std::hash<std::string_view>{}(s); }

}  // namespace

TextIndex::TextIndex(const std::vector<std::string>& texts) : texts_(texts.data()) {
    // At most half full: linear probes stay short (about 1.5 slots for a hit, 2.5 for a miss).
    uint64_t capacity = 16;
    while (capacity < 2 * static_cast<uint64_t>(texts.size())) capacity *= 2;
    slots_.assign(capacity, Slot{0, -1});
    mask_ = capacity - 1;
    for (size_t i = 0; i < texts.size(); ++i) {
        const uint64_t h = hash_of(texts[i]);
        Slot& s = slots_[probe(h, texts[i])];
        if (s.id < 0) s = Slot{static_cast<uint32_t>(h >> 32), static_cast<int32_t>(i)};  // a duplicate keeps the first
    }
}

uint64_t TextIndex::probe(uint64_t h, std::string_view text) const {
    const auto tag = static_cast<uint32_t>(h >> 32);
    for (uint64_t at = h & mask_;; at = (at + 1) & mask_) {
        const Slot s = slots_[at];
        if (s.id < 0 || (s.tag == tag && texts_[s.id] == text)) return at;
    }
}

int32_t TextIndex::find(std::string_view text) const {
    if (slots_.empty()) return -1;
    return slots_[probe(hash_of(text), text)].id;  // an empty slot's id is -1
}

}  // namespace orcd::tokenizer
