#pragma once
// JSON Schema -> GBNF, for structured output. Supported, exactly:
//   type (object, array, string, number, integer, boolean, null, or a list of them; "json_object" = any object),
//   properties, required, additionalProperties (false, true or absent), enum, const, items, minItems, maxItems,
//   anyOf, oneOf, $ref (local: "#", "#/$defs/...", "#/definitions/..." or any local JSON pointer) with $defs /
//   definitions, string pattern (regex.h's subset), format (date, time, date-time, uuid), minLength, maxLength.
// Annotations (title, description, default, examples, $schema, $id, $comment, deprecated, readOnly, writeOnly) are
// ignored. Any other keyword is refused, naming it and its JSON pointer (ErrorCode::InvalidArgument): output must
// never silently violate the schema.
//
// The grammar produces a subset of the valid documents, chosen so that generation always ends:
//   - whitespace: at most one space, or one newline followed by up to 20 spaces/tabs, between tokens; none before
//     or after the top-level value (so a complete value ends generation);
//   - numbers: up to 16 integer digits, up to 16 fraction digits, an exponent of up to 2 digits;
//   - objects list the required properties first, then the optional ones, each in schema order; with
//     additionalProperties absent or true, only the declared properties are produced;
//   - oneOf is compiled as anyOf: exact when its branches are disjoint (as with distinct const/type tags);
//   - years 0001-9999 (year 0 is not a valid date);
//   - strings: any character (escapes \" \\ \/ \b \f \n \r \t and \u other than surrogates); formats: "date" has
//     days 01-28 in February, "time"/"date-time" follow RFC 3339 with no leap second, "uuid" is lower-case hex.
#include <string>
#include <string_view>

#include "grammar/grammar.h"

namespace orcd::grammar {

struct SchemaOptions {
    // Strings without maxLength get at most this many characters (0: unbounded), and the unbounded repetitions of a
    // pattern at most this many repeats. A subset of the valid documents, for callers that must bound output (a
    // model with random weights seldom closes a string on its own).
    uint32_t max_string_chars = 0;
};

// The GBNF text for a schema given as JSON text. Errors: InvalidArgument (unparsable JSON, an unsupported keyword,
// a bad value, a limit).
std::string json_schema_to_gbnf(std::string_view schema_json, const GrammarLimits& limits = {},
                                const SchemaOptions& options = {});

// Parses and compiles in one step.
Grammar compile_json_schema(std::string_view schema_json, const GrammarLimits& limits = {},
                            const SchemaOptions& options = {});

}  // namespace orcd::grammar
