#include "grammar/matcher.h"

#include <algorithm>

namespace orcd::grammar {

Matcher::Matcher(std::shared_ptr<const Grammar> grammar)
    : grammar_(std::move(grammar)), space_(std::make_shared<StackSpace>(*grammar_)) {
    space_->start(stacks_);
}

bool Matcher::advance(uint8_t byte) {
    space_->advance(stacks_, byte, scratch_);
    if (scratch_.empty()) return false;
    stacks_.swap(scratch_);
    return true;
}

bool Matcher::advance(std::string_view bytes) {
    std::vector<Stack> cur = stacks_, next;
    for (char c : bytes) {
        space_->advance(cur, static_cast<uint8_t>(c), next);
        if (next.empty()) return false;
        cur.swap(next);
    }
    stacks_ = std::move(cur);
    return true;
}

bool Matcher::accepts() const {
    return std::any_of(stacks_.begin(), stacks_.end(), [](const Stack& s) { return s.accepting(); });
}

bool Matcher::can_continue() const {
    return std::any_of(stacks_.begin(), stacks_.end(), [](const Stack& s) { return !s.accepting(); });
}

void Matcher::reset() { space_->start(stacks_); }

bool matches(const std::shared_ptr<const Grammar>& grammar, std::string_view text) {
    Matcher m(grammar);
    return m.advance(text) && m.accepts();
}

}  // namespace orcd::grammar
