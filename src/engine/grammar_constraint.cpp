#include "engine/grammar_constraint.h"

#include <fmt/format.h>

#include <functional>
#include <list>
#include <mutex>
#include <string>
#include <utility>

#include "grammar/gbnf.h"
#include "grammar/json_schema.h"

namespace orcd::engine {

namespace {

// The most recently used constraints, newest first. Keyed by everything the masker depends on: the vocabulary (by
// address: the cached masker holds the vocabulary, so the address cannot be reused while the entry lives), the kind
// and options, and the text.
class SharedConstraints {
public:
    std::shared_ptr<grammar::TokenMasker> get(const std::string& key,
                                              const std::function<std::shared_ptr<grammar::TokenMasker>()>& make) {
        {
            std::lock_guard lock(mu_);
            for (auto it = entries_.begin(); it != entries_.end(); ++it) {
                if (it->first == key) {
                    entries_.splice(entries_.begin(), entries_, it);
                    return entries_.front().second;
                }
            }
        }
        // Compiled outside the lock (a big schema takes milliseconds); two requests racing on a new text may both
        // compile it, and the later one finds the first's entry and uses it.
        std::shared_ptr<grammar::TokenMasker> made = make();
        std::lock_guard lock(mu_);
        for (const auto& [k, m] : entries_) {
            if (k == key) return m;
        }
        entries_.emplace_front(key, made);
        if (entries_.size() > kSharedConstraints) entries_.pop_back();
        return made;
    }

private:
    std::mutex mu_;
    std::list<std::pair<std::string, std::shared_ptr<grammar::TokenMasker>>> entries_;
};

SharedConstraints& shared_constraints() {
    static SharedConstraints c;
    return c;
}

std::string constraint_key(char kind, const grammar::TokenVocabulary* vocab, uint32_t max_string_chars,
                           std::string_view text) {
    return fmt::format("{}:{}:{}:{}", kind, static_cast<const void*>(vocab), max_string_chars, text);
}

}  // namespace

std::shared_ptr<const grammar::TokenVocabulary> grammar_vocabulary(const tokenizer::Tokenizer& tokenizer) {
    const tokenizer::Vocab& vocab = tokenizer.vocab();
    std::vector<std::string> bytes(vocab.size());
    std::vector<grammar::TokenClass> classes(vocab.size(), grammar::TokenClass::Bytes);
    for (size_t i = 0; i < vocab.size(); ++i) {
        const auto id = static_cast<tokenizer::TokenId>(i);
        if (vocab.is_end_of_generation(id)) {
            classes[i] = grammar::TokenClass::End;
        } else if (tokenizer.is_special(id)) {
            classes[i] = grammar::TokenClass::Never;
        } else {
            tokenizer.append_piece(id, /*show_special=*/false, bytes[i]);
        }
    }
    return std::make_shared<const grammar::TokenVocabulary>(std::move(bytes), std::move(classes));
}

std::shared_ptr<grammar::TokenMasker> constraint_from_gbnf(std::string_view gbnf,
                                                           std::shared_ptr<const grammar::TokenVocabulary> vocab) {
    return shared_constraints().get(constraint_key('g', vocab.get(), 0, gbnf), [&] {
        auto g = std::make_shared<const grammar::Grammar>(grammar::parse_gbnf(gbnf));
        return std::make_shared<grammar::TokenMasker>(std::move(g), vocab);
    });
}

std::shared_ptr<grammar::TokenMasker> constraint_from_json_schema(std::string_view schema,
                                                                  std::shared_ptr<const grammar::TokenVocabulary> vocab,
                                                                  const grammar::SchemaOptions& options) {
    return shared_constraints().get(constraint_key('j', vocab.get(), options.max_string_chars, schema), [&] {
        auto g = std::make_shared<const grammar::Grammar>(grammar::compile_json_schema(schema, {}, options));
        return std::make_shared<grammar::TokenMasker>(std::move(g), vocab);
    });
}

}  // namespace orcd::engine
