#pragma once
// Grammar-constrained generation: what the engine needs to build a constraint for a request. A TokenMasker holds a
// compiled grammar together with one tokenizer's vocabulary and caches its per-position token splits, so a server
// keeps one per (grammar, model) and shares it between the requests that use it.
#include <memory>
#include <string_view>

#include "grammar/grammar.h"
#include "grammar/json_schema.h"
#include "grammar/token_mask.h"
#include "grammar/token_vocab.h"
#include "tokenizer/tokenizer.h"

namespace orcd::engine {

inline constexpr size_t kSharedConstraints = 8;

// Each token's bytes as the tokenizer writes them (byte-level BPE and SentencePiece alike: Tokenizer::append_piece);
// end-of-generation tokens are End; control tokens and tokens without bytes are Never.
std::shared_ptr<const grammar::TokenVocabulary> grammar_vocabulary(const tokenizer::Tokenizer& tokenizer);

// A constraint from GBNF text or a JSON Schema (json_schema.h), for a vocabulary. Errors: InvalidArgument with the
// grammar's or schema's message.
//
// The same text, options and vocabulary give the same shared TokenMasker while it is among the last
// kSharedConstraints used: its cache of per-head splits is what makes a mask cheap (a head first met costs a walk of
// the whole vocabulary), and a server builds a constraint per request, so without sharing every request would start
// cold. A masker is safe to share (TokenMasker::fill locks its cache; each request has its own matcher). Memory: at
// most kSharedConstraints maskers of at most TokenMasker::kMaxCachedHeads splits each.
std::shared_ptr<grammar::TokenMasker> constraint_from_gbnf(std::string_view gbnf,
                                                           std::shared_ptr<const grammar::TokenVocabulary> vocab);
std::shared_ptr<grammar::TokenMasker> constraint_from_json_schema(std::string_view schema,
                                                                  std::shared_ptr<const grammar::TokenVocabulary> vocab,
                                                                  const grammar::SchemaOptions& options = {});

}  // namespace orcd::engine
