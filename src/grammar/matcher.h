#pragma once
// Matches bytes against a compiled grammar, one at a time, keeping every parse that is still alive (the grammar may
// be ambiguous). Copying a Matcher is cheap (its state is a short list of stacks; the frame arena is shared), which
// is how callers roll back or try a continuation without committing. Not safe for concurrent use: copies share the
// arena, so one thread at a time per family of copies.
#include <memory>
#include <span>
#include <string_view>
#include <vector>

#include "grammar/grammar.h"
#include "grammar/stacks.h"

namespace orcd::grammar {

class Matcher {
public:
    explicit Matcher(std::shared_ptr<const Grammar> grammar);

    // Consumes one byte. Returns false, leaving the state unchanged, when no parse accepts it.
    bool advance(uint8_t byte);
    // Consumes all bytes, or none (returns false and leaves the state unchanged).
    bool advance(std::string_view bytes);
    // True when the bytes so far form a complete sentence of the grammar.
    bool accepts() const;
    // True when some parse can take another byte.
    bool can_continue() const;
    // Back to the start of the grammar.
    void reset();

    const std::vector<Stack>& stacks() const { return stacks_; }
    const Grammar& grammar() const { return *grammar_; }
    StackSpace& space() const { return *space_; }

private:
    std::shared_ptr<const Grammar> grammar_;
    std::shared_ptr<StackSpace> space_;
    std::vector<Stack> stacks_;
    std::vector<Stack> scratch_;
};

// Convenience: whether the whole of `text` is a sentence of the grammar.
bool matches(const std::shared_ptr<const Grammar>& grammar, std::string_view text);

}  // namespace orcd::grammar
