#include "tokenizer/bpe.h"

#include <algorithm>
#include <array>
#include <climits>
#include <cstring>

#include <fmt/format.h>

#include "common/error.h"
#include "tokenizer/unicode.h"

namespace orcd::tokenizer {

namespace {

struct ByteMaps {
    std::array<char32_t, 256> to_cp{};
    std::array<int, 324> to_byte{};  // code points used by the mapping are all below 256 + 68
};

const ByteMaps& byte_maps() {
    static const ByteMaps maps = [] {
        ByteMaps m;
        m.to_byte.fill(-1);
        int extra = 0;
        for (int b = 0; b < 256; ++b) {
            const bool printable = (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
            const char32_t cp = printable ? static_cast<char32_t>(b) : static_cast<char32_t>(256 + extra++);
            m.to_cp[b] = cp;
            m.to_byte[cp] = b;
        }
        return m;
    }();
    return maps;
}

// Symbols of one word while merging: a doubly linked list over an array, so that a merge is O(1).
struct Symbol {
    TokenId id;
    int32_t prev;
    int32_t next;
};

// A candidate merge of symbols[left] and its right neighbour. Ordered by rank, then position: equal pairs merge
// left to right, as the Hugging Face implementation does.
struct Candidate {
    int32_t rank;
    int32_t left;
    TokenId left_id;
    TokenId right_id;
    TokenId result;
    bool operator>(const Candidate& o) const { return rank != o.rank ? rank > o.rank : left > o.left; }
};

// A direct-mapped cache of word -> ids for one encode call (so it needs no lock: a Tokenizer is shared between
// threads). Like a CPU cache, a slot holds the last word that hashed to it; short words with few ids are the ones
// that repeat, longer ones are simply recomputed. Sized by the text, so short prompts pay almost nothing.
class WordCache {
public:
    static constexpr size_t kMaxWord = 22;
    static constexpr size_t kMaxIds = 8;

    explicit WordCache(size_t text_bytes) {
        size_t n = 256;
        while (n < text_bytes / 8 && n < (size_t{1} << 13)) n <<= 1;  // at most 512 KiB: stays in L2
        slots_.resize(n);
        mask_ = n - 1;
    }

    static uint64_t hash(std::string_view w) {
        uint64_t h = 0xcbf29ce484222325ull;  // FNV-1a: words are short, so a byte loop is cheapest
        for (char c : w) h = (h ^ static_cast<uint8_t>(c)) * 0x100000001b3ull;
        return h | 1;  // 0 marks an empty slot
    }

    // Appends the cached ids of `w` to out and returns true on a hit.
    bool lookup(std::string_view w, uint64_t h, std::vector<TokenId>& out) const {
        const Slot& s = slots_[h & mask_];
        if (s.hash != h || s.word_len != w.size() || std::memcmp(s.word, w.data(), w.size()) != 0) return false;
        out.insert(out.end(), s.ids, s.ids + s.n_ids);
        return true;
    }

    void store(std::string_view w, uint64_t h, const TokenId* ids, size_t n) {
        if (w.size() > kMaxWord || n > kMaxIds) return;
        Slot& s = slots_[h & mask_];
        s.hash = h;
        s.word_len = static_cast<uint8_t>(w.size());
        s.n_ids = static_cast<uint8_t>(n);
        std::memcpy(s.word, w.data(), w.size());
        std::memcpy(s.ids, ids, n * sizeof(TokenId));
    }

private:
    struct Slot {  // 64 bytes: one cache line
        uint64_t hash = 0;
        uint8_t word_len = 0;
        uint8_t n_ids = 0;
        char word[kMaxWord];
        TokenId ids[kMaxIds];
    };
    std::vector<Slot> slots_;
    size_t mask_ = 0;
};

}  // namespace

char32_t byte_to_codepoint(uint8_t b) { return byte_maps().to_cp[b]; }

int codepoint_to_byte(char32_t cp) {
    const auto& m = byte_maps();
    return cp < m.to_byte.size() ? m.to_byte[cp] : -1;
}

BpeModel::BpeModel(const Vocab& vocab, PreTokenizer pre, bool nfc) : pre_(pre), nfc_(nfc) {
    std::string sym;
    for (int b = 0; b < 256; ++b) {
        sym.clear();
        unicode::append_utf8(sym, byte_to_codepoint(static_cast<uint8_t>(b)));
        byte_token_[b] = vocab.find(sym);
        if (byte_token_[b] == kNoToken) {
            throw Error(ErrorCode::Tokenizer, fmt::format("byte-level BPE vocabulary has no token for byte 0x{:02X} "
                                                          "(expected the one-character token '{}')",
                                                          b, sym));
        }
    }
    // Token texts are in the byte alphabet; a code point outside it (an added token such as "<|im_start|>" is fine,
    // its characters are all in the alphabet) makes the token's bytes its raw UTF-8.
    decoded_.resize(vocab.size());
    std::vector<char32_t> cps;
    for (size_t id = 0; id < vocab.size(); ++id) {
        const std::string_view text = vocab.text(static_cast<TokenId>(id));
        const TokenType type = vocab.type(static_cast<TokenId>(id));
        std::string& out = decoded_[id];
        if (type == TokenType::UserDefined || type == TokenType::Control || type == TokenType::Unused) {
            out.assign(text);  // added tokens are stored as plain text, not in the byte alphabet
            continue;
        }
        cps.clear();
        unicode::decode_utf8(text, cps);
        bool mapped = true;
        for (char32_t cp : cps) mapped = mapped && codepoint_to_byte(cp) >= 0;
        if (!mapped) {
            out.assign(text);
            continue;
        }
        for (char32_t cp : cps) out.push_back(static_cast<char>(codepoint_to_byte(cp)));
    }

    const auto& merges = vocab.merges();
    size_t table = 2;
    unsigned log2 = 1;
    while (table * 3 < merges.size() * 5) {  // load factor <= 0.6
        table <<= 1;
        ++log2;
    }
    merges_.assign(table, MergeSlot{});
    shift_ = 64 - log2;
    std::string joined;
    for (size_t rank = 0; rank < merges.size(); ++rank) {
        const std::string& m = merges[rank];
        // "left right": the separator is the first space that is not the first character (a token never contains
        // ' ' itself, which the alphabet writes as 'Ġ').
        const size_t sp = m.find(' ', 1);
        if (sp == std::string::npos || sp + 1 >= m.size()) {
            throw Error(ErrorCode::Tokenizer, fmt::format("tokenizer.ggml.merges[{}] is '{}', expected two tokens "
                                                          "separated by one space",
                                                          rank, m));
        }
        const std::string_view left(m.data(), sp);
        const std::string_view right(m.data() + sp + 1, m.size() - sp - 1);
        const TokenId a = vocab.find(left);
        const TokenId b = vocab.find(right);
        joined.assign(left);
        joined.append(right);
        const TokenId r = vocab.find(joined);
        if (a == kNoToken || b == kNoToken || r == kNoToken) {
            throw Error(ErrorCode::Tokenizer, fmt::format("tokenizer.ggml.merges[{}] is '{}': expected both sides and "
                                                          "their concatenation to be tokens of the vocabulary",
                                                          rank, m));
        }
        const uint64_t key = pair_key(a, b);
        for (size_t i = slot_of(key);; i = (i + 1) & (merges_.size() - 1)) {
            if (merges_[i].key == key) break;  // a repeated merge: the first (best) rank wins
            if (merges_[i].key == kEmptyKey) {
                merges_[i] = MergeSlot{key, Merge{static_cast<int32_t>(rank), r}};
                break;
            }
        }
    }
    fill_byte_pairs();
}

void BpeModel::fill_byte_pairs() {
    byte_pairs_.assign(256 * 256, Merge{-1, kNoToken});
    for (int a = 0; a < 256; ++a) {
        for (int b = 0; b < 256; ++b) {
            if (const Merge* m = find_merge(byte_token_[a], byte_token_[b])) byte_pairs_[a * 256 + b] = *m;
        }
    }
}

const BpeModel::Merge* BpeModel::find_merge(TokenId a, TokenId b) const {
    const uint64_t key = pair_key(a, b);
    for (size_t i = slot_of(key);; i = (i + 1) & (merges_.size() - 1)) {
        const MergeSlot& s = merges_[i];
        if (s.key == key) return &s.merge;
        if (s.key == kEmptyKey) return nullptr;
    }
}

// Words of up to kSmallWord bytes (nearly all of them) merge in small arrays: each step applies the leftmost
// lowest-rank pair, which is the order the heap below produces, without the heap's bookkeeping. The two lookups a
// merge needs are independent, so both cache misses are started before either is waited on.
void BpeModel::encode_small(std::string_view word, std::vector<TokenId>& out) const {
    constexpr int32_t kNone = INT32_MAX;
    TokenId ids[kSmallWord];
    int32_t ranks[kSmallWord];    // ranks[i]: rank of merging ids[i] and ids[i + 1], kNone if they do not merge
    TokenId results[kSmallWord];  // the token that merge makes
    size_t n = word.size();
    for (size_t i = 0; i < n; ++i) ids[i] = byte_token_[static_cast<uint8_t>(word[i])];
    for (size_t i = 0; i + 1 < n; ++i) {
        const Merge& m = byte_pairs_[static_cast<uint8_t>(word[i]) * 256 + static_cast<uint8_t>(word[i + 1])];
        ranks[i] = m.rank >= 0 ? m.rank : kNone;
        results[i] = m.result;
    }
    auto update = [&](size_t i) {
        const Merge* m = find_merge(ids[i], ids[i + 1]);
        ranks[i] = m ? m->rank : kNone;
        results[i] = m ? m->result : kNoToken;
    };
    while (n > 1) {
        size_t best = 0;
        for (size_t i = 1; i + 1 < n; ++i) {
            if (ranks[i] < ranks[best]) best = i;
        }
        if (ranks[best] == kNone) break;
        ids[best] = results[best];
        for (size_t i = best + 1; i + 1 < n; ++i) ids[i] = ids[i + 1];
        for (size_t i = best + 1; i + 2 < n; ++i) {
            ranks[i] = ranks[i + 1];
            results[i] = results[i + 1];
        }
        --n;
        const bool left = best > 0;
        const bool right = best + 1 < n;
        if (left) __builtin_prefetch(&merges_[slot_of(pair_key(ids[best - 1], ids[best]))]);
        if (right) __builtin_prefetch(&merges_[slot_of(pair_key(ids[best], ids[best + 1]))]);
        if (left) update(best - 1);
        if (right) update(best);
    }
    out.insert(out.end(), ids, ids + n);
}

void BpeModel::encode_word(std::string_view word, std::vector<TokenId>& out) const {
    const auto n = static_cast<int32_t>(word.size());
    if (n == 0) return;
    if (n == 1) {
        out.push_back(byte_token_[static_cast<uint8_t>(word[0])]);
        return;
    }
    if (word.size() <= kSmallWord) {
        encode_small(word, out);
        return;
    }
    encode_word_heap(word, out);
}

void BpeModel::encode_word_heap(std::string_view word, std::vector<TokenId>& out) const {
    const auto n = static_cast<int32_t>(word.size());
    if (n == 0) return;  // a one-byte word needs no shortcut here: it has no pair, and its byte token is the answer
    thread_local std::vector<Symbol> symbols;
    thread_local std::vector<Candidate> heap;
    symbols.clear();
    heap.clear();
    for (int32_t i = 0; i < n; ++i) {
        symbols.push_back(
            {byte_token_[static_cast<uint8_t>(word[static_cast<size_t>(i)])], i - 1, i + 1 < n ? i + 1 : -1});
    }
    auto consider = [&](int32_t left) {
        if (left < 0) return;
        const int32_t right = symbols[left].next;
        if (right < 0) return;
        if (const Merge* m = find_merge(symbols[left].id, symbols[right].id)) {
            heap.push_back({m->rank, left, symbols[left].id, symbols[right].id, m->result});
            std::push_heap(heap.begin(), heap.end(), std::greater<>{});
        }
    };
    for (int32_t i = 0; i + 1 < n; ++i) {
        const Merge& m = byte_pairs_[static_cast<uint8_t>(word[static_cast<size_t>(i)]) * 256 +
                                     static_cast<uint8_t>(word[static_cast<size_t>(i) + 1])];
        if (m.rank >= 0) heap.push_back({m.rank, i, symbols[i].id, symbols[i + 1].id, m.result});
    }
    std::make_heap(heap.begin(), heap.end(), std::greater<>{});
    while (!heap.empty()) {
        std::pop_heap(heap.begin(), heap.end(), std::greater<>{});
        const Candidate c = heap.back();
        heap.pop_back();
        Symbol& l = symbols[c.left];
        // Stale candidates (a side has merged since) are recognised by their ids no longer matching.
        if (l.id != c.left_id || l.next < 0 || symbols[l.next].id != c.right_id) continue;
        const int32_t right = l.next;
        l.id = c.result;
        l.next = symbols[right].next;
        if (l.next >= 0) symbols[l.next].prev = c.left;
        symbols[right].id = kNoToken;
        consider(l.prev);
        consider(c.left);
    }
    for (int32_t i = 0; i >= 0; i = symbols[i].next) out.push_back(symbols[i].id);
}

void BpeModel::encode(std::string_view text, bool /*starts_segment*/, std::vector<TokenId>& out) const {
    thread_local std::vector<char32_t> cps;
    thread_local std::vector<uint32_t> offsets;
    thread_local std::vector<uint8_t> cls;
    thread_local std::vector<uint32_t> ends;
    std::string normalized;
    auto analyse = [&](std::string_view t) {
        cps.clear();
        offsets.clear();
        cls.clear();
        unicode::decode_utf8(t, cps, &offsets);
        cls.reserve(cps.size());
        uint8_t all = unicode::kNfcInert;
        for (char32_t cp : cps) {
            const uint8_t info = unicode::char_info(cp);
            all &= info;
            cls.push_back(info);
        }
        return all != 0;  // true: every code point is NFC-inert
    };
    if (!analyse(text) && nfc_) {
        normalized = unicode::nfc(text);
        text = normalized;
        analyse(text);
    }
    ends.clear();
    pretokenize(pre_, cps, cls, ends);

    WordCache cache(text.size());
    size_t start_cp = 0;
    for (uint32_t end_cp : ends) {
        const std::string_view word = text.substr(offsets[start_cp], offsets[end_cp] - offsets[start_cp]);
        start_cp = end_cp;
        if (word.size() > WordCache::kMaxWord) {
            encode_word(word, out);
            continue;
        }
        const uint64_t h = WordCache::hash(word);
        if (cache.lookup(word, h, out)) continue;
        const size_t first = out.size();
        encode_word(word, out);
        cache.store(word, h, out.data() + first, out.size() - first);
    }
}

void BpeModel::append_bytes(TokenId id, std::string& out) const { out.append(decoded_[static_cast<size_t>(id)]); }

}  // namespace orcd::tokenizer
