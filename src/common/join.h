#pragma once
// Joins the items of a range into one readable string ("Q4_K, Q5_K, Q6_K"), each item turned into text by a
// projection. Error messages and listings across the tree build such lists; this is their one loop.
#include <string>
#include <string_view>

namespace orcd {

// `text(item)` must return something std::string can append (std::string, std::string_view, const char*).
template <class Range, class Text>
std::string join(const Range& items, std::string_view separator, Text text) {
    std::string out;
    bool first = true;
    for (const auto& item : items) {
        if (!first) out += separator;
        first = false;
        out += text(item);
    }
    return out;
}

}  // namespace orcd
