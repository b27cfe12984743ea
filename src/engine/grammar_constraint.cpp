#include "engine/grammar_constraint.h"

#include "grammar/gbnf.h"
#include "grammar/json_schema.h"

namespace orcd::engine {

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
    auto g = std::make_shared<const grammar::Grammar>(grammar::parse_gbnf(gbnf));
    return std::make_shared<grammar::TokenMasker>(std::move(g), std::move(vocab));
}

std::shared_ptr<grammar::TokenMasker> constraint_from_json_schema(std::string_view schema,
                                                                  std::shared_ptr<const grammar::TokenVocabulary> vocab,
                                                                  const grammar::SchemaOptions& options) {
    auto g = std::make_shared<const grammar::Grammar>(grammar::compile_json_schema(schema, {}, options));
    return std::make_shared<grammar::TokenMasker>(std::move(g), std::move(vocab));
}

}  // namespace orcd::engine
