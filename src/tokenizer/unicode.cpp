#include "tokenizer/unicode.h"

#include <array>
#include <cstdlib>
#include <memory>

#include <utf8proc.h>

#include "common/error.h"

namespace orcd::tokenizer::unicode {

namespace {

// Sequence length announced by a lead byte (0: never a valid lead) and the allowed range of the second byte; the
// later bytes are always 80..BF. This is table 3-7 of the Unicode standard.
struct Lead {
    uint8_t len;
    uint8_t lo;
    uint8_t hi;
};

constexpr Lead lead_info(uint8_t b) {
    if (b < 0x80) return {1, 0, 0};
    if (b < 0xC2) return {0, 0, 0};
    if (b < 0xE0) return {2, 0x80, 0xBF};
    if (b == 0xE0) return {3, 0xA0, 0xBF};
    if (b == 0xED) return {3, 0x80, 0x9F};
    if (b < 0xF0) return {3, 0x80, 0xBF};
    if (b == 0xF0) return {4, 0x90, 0xBF};
    if (b < 0xF4) return {4, 0x80, 0xBF};
    if (b == 0xF4) return {4, 0x80, 0x8F};
    return {0, 0, 0};
}

}  // namespace

Decoded decode_one(std::string_view s, size_t i) {
    const auto b0 = static_cast<uint8_t>(s[i]);
    if (b0 < 0x80) return {b0, 1, true, false};
    const Lead lead = lead_info(b0);
    if (lead.len == 0) return {kReplacement, 1, false, false};
    char32_t cp = b0 & (0xFF >> (lead.len + 1));
    for (uint32_t k = 1; k < lead.len; ++k) {
        if (i + k >= s.size()) return {kReplacement, k, false, true};
        const auto b = static_cast<uint8_t>(s[i + k]);
        const uint8_t lo = k == 1 ? lead.lo : 0x80;
        const uint8_t hi = k == 1 ? lead.hi : 0xBF;
        if (b < lo || b > hi) return {kReplacement, k, false, false};
        cp = (cp << 6) | (b & 0x3F);
    }
    return {cp, lead.len, true, false};
}

void decode_utf8(std::string_view s, std::vector<char32_t>& out, std::vector<uint32_t>* offsets) {
    out.reserve(out.size() + s.size());
    for (size_t i = 0; i < s.size();) {
        const auto b = static_cast<uint8_t>(s[i]);
        if (b < 0x80) {
            out.push_back(b);
            if (offsets) offsets->push_back(static_cast<uint32_t>(i));
            ++i;
            continue;
        }
        const Decoded d = decode_one(s, i);
        out.push_back(d.valid ? d.cp : kReplacement);
        if (offsets) offsets->push_back(static_cast<uint32_t>(i));
        i += d.len;
    }
    if (offsets) offsets->push_back(static_cast<uint32_t>(s.size()));
}

namespace {

// Whether `hit` accepts the decoding of some sequence of s that starts at a byte >= first: the scan of
// is_valid_utf8 and needs_nfc. Bytes below `first` cannot start a sequence the caller looks for (ASCII, or
// continuation bytes and lead bytes of code points too small to matter); they are stepped over one at a time,
// without decoding.
template <typename Hit>
bool any_decoded(std::string_view s, uint8_t first, Hit hit) {
    for (size_t i = 0; i < s.size();) {
        if (static_cast<uint8_t>(s[i]) < first) {
            ++i;
            continue;
        }
        const Decoded d = decode_one(s, i);
        if (hit(d)) return true;
        i += d.len;
    }
    return false;
}

}  // namespace

bool is_valid_utf8(std::string_view s) {
    return !any_decoded(s, 0x80, [](const Decoded& d) { return !d.valid; });
}

std::string sanitize_utf8(std::string_view s) {
    if (is_valid_utf8(s)) return std::string(s);
    std::string out;
    out.reserve(s.size() + 8);
    for (size_t i = 0; i < s.size();) {
        const Decoded d = decode_one(s, i);
        if (d.valid) {
            out.append(s.substr(i, d.len));
        } else {
            append_utf8(out, kReplacement);
        }
        i += d.len;
    }
    return out;
}

namespace {

bool nfc_inert(char32_t cp, const utf8proc_property_t* p);

uint8_t classes_of(char32_t cp, const utf8proc_property_t* p) {
    switch (static_cast<utf8proc_category_t>(p->category)) {
        case UTF8PROC_CATEGORY_LU:
        case UTF8PROC_CATEGORY_LL:
        case UTF8PROC_CATEGORY_LT:
        case UTF8PROC_CATEGORY_LM:
        case UTF8PROC_CATEGORY_LO: return kLetter;
        case UTF8PROC_CATEGORY_ND:
        case UTF8PROC_CATEGORY_NL:
        case UTF8PROC_CATEGORY_NO: return kNumber;
        case UTF8PROC_CATEGORY_ZS:
        case UTF8PROC_CATEGORY_ZL:
        case UTF8PROC_CATEGORY_ZP: return kSpace;
        default: break;
    }
    // White_Space controls: TAB, LF, VT, FF, CR and NEL (category Cc, so not caught above).
    if ((cp >= 0x09 && cp <= 0x0D) || cp == 0x85) return kSpace;
    return 0;
}

uint8_t info_slow(char32_t cp) {
    const utf8proc_property_t* p = utf8proc_get_property(static_cast<utf8proc_int32_t>(cp));
    return static_cast<uint8_t>(classes_of(cp, p) | (nfc_inert(cp, p) ? kNfcInert : 0));
}

// The Latin-1 range is by far the most common input; its classes are computed once from utf8proc.
const std::array<uint8_t, 256>& latin1_info() {
    static const std::array<uint8_t, 256> table = [] {
        std::array<uint8_t, 256> t{};
        for (char32_t c = 0; c < 256; ++c) t[c] = info_slow(c);
        return t;
    }();
    return table;
}

}  // namespace

uint8_t char_info(char32_t cp) {
    if (cp < 256) return latin1_info()[cp];
    return info_slow(cp);
}

uint8_t classes(char32_t cp) { return char_info(cp) & (kLetter | kNumber | kSpace); }

namespace {

// A code point is inert for NFC when normalization can neither change it nor combine it with its neighbours: a
// starter (canonical combining class 0) without a canonical decomposition that is never the second character of a
// composition. Such a code point is a boundary: NFC(x + c + y) == NFC(x) + c + NFC(y). Composition seconds are marked
// in utf8proc's comb_index (>= 0x8000); Hangul vowel and trailing jamo compose algorithmically, outside that table,
// so their ranges (from the Hangul composition algorithm, Unicode section 3.12) are checked here.
bool nfc_inert(char32_t cp, const utf8proc_property_t* p) {
    if (cp < 0x300) return true;
    if ((cp >= 0x1161 && cp <= 0x1175) || (cp >= 0x11A8 && cp <= 0x11C2)) return false;
    if (p->combining_class != 0) return false;
    if (p->decomp_type == 0 && p->decomp_seqindex != UINT16_MAX) return false;  // canonical decomposition
    if (p->comb_index != UINT16_MAX && p->comb_index >= 0x8000) return false;   // second of a composition
    return true;
}

bool nfc_inert(char32_t cp) {
    return cp < 0x300 || nfc_inert(cp, utf8proc_get_property(static_cast<utf8proc_int32_t>(cp)));
}

std::string utf8proc_nfc(std::string_view s) {
    utf8proc_uint8_t* mapped = nullptr;
    const utf8proc_ssize_t n =
        utf8proc_map(reinterpret_cast<const utf8proc_uint8_t*>(s.data()), static_cast<utf8proc_ssize_t>(s.size()),
                     &mapped, static_cast<utf8proc_option_t>(UTF8PROC_STABLE | UTF8PROC_COMPOSE));
    if (n < 0) {
        // Only reachable if a caller passed unsanitized bytes: a programming error, reported rather than hidden.
        throw Error(ErrorCode::Internal, std::string("NFC normalization failed: ") + utf8proc_errmsg(n));
    }
    std::unique_ptr<utf8proc_uint8_t, decltype(&std::free)> holder(mapped, &std::free);
    return std::string(reinterpret_cast<const char*>(mapped), static_cast<size_t>(n));
}

}  // namespace

bool needs_nfc(std::string_view s) {
    // Every code point >= U+0300 (below it, all are inert) starts with a byte >= 0xCC; continuation bytes are below it.
    return any_decoded(s, 0xCC, [](const Decoded& d) { return !nfc_inert(d.cp); });
}

std::string nfc(std::string_view s) {
    if (!needs_nfc(s)) return std::string(s);
    std::vector<char32_t> cps;
    std::vector<uint32_t> offsets;
    decode_utf8(s, cps, &offsets);
    std::string out;
    out.reserve(s.size());
    size_t copied = 0;  // bytes of s already in out
    for (size_t i = 0; i < cps.size();) {
        if (nfc_inert(cps[i])) {
            ++i;
            continue;
        }
        // A span: the inert starter before the run (it may compose with the run) through the run's end.
        const size_t begin = i > 0 ? i - 1 : 0;
        size_t end = i + 1;
        while (end < cps.size() && !nfc_inert(cps[end])) ++end;
        out.append(s.substr(copied, offsets[begin] - copied));
        out += utf8proc_nfc(s.substr(offsets[begin], offsets[end] - offsets[begin]));
        copied = offsets[end];
        i = end;
    }
    out.append(s.substr(copied));
    return out;
}

}  // namespace orcd::tokenizer::unicode
