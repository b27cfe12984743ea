#include "grammar/json_schema.h"

#include <fmt/format.h>

#include <map>
#include <nlohmann/json.hpp>
#include <set>

#include "common/error.h"
#include "grammar/gbnf.h"
#include "grammar/gbnf_text.h"
#include "grammar/regex.h"

namespace orcd::grammar {

namespace {

using Json = nlohmann::ordered_json;

// Shared rules, written once when first used. `char` is one JSON string character; regex.h's output refers to it.
const std::map<std::string, std::string> kCommonRules = {
    {"ws", R"(( " " | "\n" [ \t]{0,20} )?)"},
    // \u escapes leave out the surrogates, so a decoded string has exactly one code point per `char`.
    {"char", R"([^"\\\x00-\x1f] | "\\" ( ["\\/bfnrt] | "u" )"
             R"(( [0-9a-cA-CefEF] [0-9a-fA-F]{3} | [dD] [0-7] [0-9a-fA-F]{2} ) ))"},
    {"string", R"("\"" char* "\"")"},
    {"integer", R"("-"? ( "0" | [1-9] [0-9]{0,15} ))"},
    {"number", R"(integer ( "." [0-9]{1,16} )? ( [eE] [-+]? [0-9]{1,2} )?)"},
    {"boolean", R"("true" | "false")"},
    {"null", R"("null")"},
    {"value", R"(object | array | string | number | boolean | null)"},
    {"object", R"("{" ws ( string ws ":" ws value ws ( "," ws string ws ":" ws value ws )* )? "}")"},
    {"array", R"("[" ws ( value ws ( "," ws value ws )* )? "]")"},
    // Days per month (February to 28, no leap-year arithmetic); years 0001-9999.
    {"date", R"(( [1-9] [0-9]{3} | "0" ( [1-9] [0-9]{2} | "0" ( [1-9] [0-9] | "0" [1-9] ) ) ) "-" )"
             R"(( ( "0" [13578] | "1" [02] ) "-" ( "0" [1-9] | [12] [0-9] | "3" [01] ) )"
             R"(| ( "0" [469] | "11" ) "-" ( "0" [1-9] | [12] [0-9] | "30" ) )"
             R"(| "02-" ( "0" [1-9] | "1" [0-9] | "2" [0-8] ) ))"},
    {"time", R"(( [01] [0-9] | "2" [0-3] ) ":" [0-5] [0-9] ":" [0-5] [0-9] ( "." [0-9]{1,6} )? )"
             R"(( "Z" | [+-] ( [01] [0-9] | "2" [0-3] ) ":" [0-5] [0-9] ))"},
    {"date-time", R"(date "T" time)"},
    {"uuid", R"([0-9a-f]{8} "-" [0-9a-f]{4} "-" [0-9a-f]{4} "-" [0-9a-f]{4} "-" [0-9a-f]{12})"},
};
// What each shared rule uses, so that using one pulls in the rest.
const std::map<std::string, std::vector<std::string>> kCommonDeps = {
    {"string", {"char"}},
    {"number", {"integer"}},
    {"value", {"object", "array", "string", "number", "boolean", "null"}},
    {"object", {"ws", "string", "value"}},
    {"array", {"ws", "value"}},
    {"date-time", {"date", "time"}},
};

const std::set<std::string> kAnnotations = {"title", "description", "default",    "examples", "$schema",
                                            "$id",   "$comment",    "deprecated", "readOnly", "writeOnly"};
const std::set<std::string> kSupported = {"type",      "properties",  "required", "additionalProperties",
                                          "enum",      "const",       "items",    "minItems",
                                          "maxItems",  "anyOf",       "oneOf",    "$ref",
                                          "$defs",     "definitions", "pattern",  "format",
                                          "minLength", "maxLength"};

std::string escape_pointer_token(const std::string& s) {
    std::string out;
    for (char c : s) {
        if (c == '~')
            out += "~0";
        else if (c == '/')
            out += "~1";
        else
            out += c;
    }
    return out;
}

class SchemaCompiler {
public:
    SchemaCompiler(const Json& root, const GrammarLimits& limits, const SchemaOptions& options)
        : root_(root), limits_(limits), options_(options) {}

    std::string compile() {
        const std::string top = visit(root_, "", 0);
        std::string out = "root ::= " + top + "\n";
        for (const auto& [name, body] : rules_) out.append(name).append(" ::= ").append(body).append("\n");
        if (out.size() > limits_.max_source_bytes) {
            throw Error(ErrorCode::InvalidArgument,
                        fmt::format("schema compiles to a grammar of {} bytes, over the limit of {} bytes", out.size(),
                                    limits_.max_source_bytes));
        }
        return out;
    }

private:
    [[noreturn]] static void fail(const std::string& pointer, const std::string& what) {
        throw Error(ErrorCode::InvalidArgument,
                    fmt::format("JSON schema at '{}': {}", pointer.empty() ? "#" : "#" + pointer, what));
    }

    std::string use(const std::string& name) {
        std::vector<std::string> work{name};
        while (!work.empty()) {
            const std::string n = work.back();
            work.pop_back();
            if (rules_.count(n)) continue;
            rules_[n] = kCommonRules.at(n);
            if (n == "string" && options_.max_string_chars > 0) {
                rules_[n] = fmt::format(R"("\"" char{{0,{}}} "\"")", options_.max_string_chars);
            }
            if (auto it = kCommonDeps.find(n); it != kCommonDeps.end()) {
                work.insert(work.end(), it->second.begin(), it->second.end());
            }
        }
        return name;
    }

    std::string add_rule(const std::string& pointer, std::string body) {
        std::string name = "s";
        for (char c : pointer) {
            const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
            if (name.size() < 40) name += ok ? c : '-';
        }
        name += fmt::format("-{}", ++n_rules_);
        if (n_rules_ > limits_.max_rules) fail(pointer, fmt::format("more than {} rules", limits_.max_rules));
        rules_[name] = std::move(body);
        return name;
    }

    static std::string literal(const Json& value) { return gbnf_literal(value.dump()); }

    uint32_t count(const Json& s, const std::string& pointer, const char* key) {
        const Json& v = s.at(key);
        if (!v.is_number_integer() && !v.is_number_unsigned()) {
            fail(pointer, fmt::format("'{}' must be an integer", key));
        }
        if (v.is_number_integer() && v.get<int64_t>() < 0) fail(pointer, fmt::format("'{}' must be >= 0", key));
        const uint64_t n = v.get<uint64_t>();
        if (n > limits_.max_repetition) {
            fail(pointer, fmt::format("'{}' of {} is above the supported limit of {}", key, n, limits_.max_repetition));
        }
        return static_cast<uint32_t>(n);
    }

    static bool value_has_type(const Json& v, const std::string& type) {
        if (type == "string") return v.is_string();
        if (type == "integer") return v.is_number_integer() || v.is_number_unsigned();
        if (type == "number") return v.is_number();
        if (type == "boolean") return v.is_boolean();
        if (type == "null") return v.is_null();
        if (type == "object" || type == "json_object") return v.is_object();
        if (type == "array") return v.is_array();
        return false;
    }

    std::vector<std::string> types_of(const Json& s, const std::string& pointer) {
        std::vector<std::string> types;
        if (!s.contains("type")) return types;
        const Json& t = s["type"];
        if (t.is_string()) {
            types.push_back(t.get<std::string>());
        } else if (t.is_array() && !t.empty()) {
            for (const auto& x : t) {
                if (!x.is_string()) fail(pointer + "/type", "type names must be strings");
                types.push_back(x.get<std::string>());
            }
        } else {
            fail(pointer + "/type", "'type' must be a string or a non-empty array of strings");
        }
        static const std::set<std::string> known = {"object",  "array",   "string", "number",
                                                    "integer", "boolean", "null",   "json_object"};
        for (const auto& x : types) {
            if (!known.count(x)) fail(pointer + "/type", fmt::format("unknown type '{}'", x));
        }
        return types;
    }

    std::string visit(const Json& s, const std::string& pointer, uint32_t depth) {
        if (depth > limits_.max_nesting) fail(pointer, fmt::format("nested deeper than {}", limits_.max_nesting));
        if (s.is_boolean()) {
            if (!s.get<bool>()) fail(pointer, "the schema 'false' matches nothing");
            return use("value");
        }
        if (!s.is_object()) fail(pointer, "a schema must be an object or a boolean");
        bool constraining = false;
        for (const auto& [key, _] : s.items()) {
            if (kAnnotations.count(key)) continue;
            if (!kSupported.count(key)) {
                fail(pointer + "/" + escape_pointer_token(key), fmt::format("unsupported keyword '{}'", key));
            }
            if (key != "$defs" && key != "definitions") constraining = true;
        }
        if (!constraining) return use("value");
        auto siblings_except = [&](std::initializer_list<const char*> allowed) {
            for (const auto& [key, _] : s.items()) {
                if (kAnnotations.count(key) || key == "$defs" || key == "definitions") continue;
                bool ok = false;
                for (const char* a : allowed) ok = ok || key == a;
                if (!ok) return key;
            }
            return std::string();
        };

        if (s.contains("$ref")) {
            if (auto k = siblings_except({"$ref"}); !k.empty()) {
                fail(pointer, fmt::format("'{}' next to '$ref' is not supported", k));
            }
            return visit_ref(s["$ref"], pointer, depth);
        }
        for (const char* key : {"anyOf", "oneOf"}) {
            if (!s.contains(key)) continue;
            if (auto k = siblings_except({key}); !k.empty()) {
                fail(pointer, fmt::format("'{}' next to '{}' is not supported", k, key));
            }
            const Json& list = s[key];
            if (!list.is_array() || list.empty()) fail(pointer + "/" + key, "must be a non-empty array of schemas");
            std::string body;
            for (size_t i = 0; i < list.size(); ++i) {
                body += (i ? " | " : "") + visit(list[i], fmt::format("{}/{}/{}", pointer, key, i), depth + 1);
            }
            return add_rule(pointer, body);
        }
        const std::vector<std::string> types = types_of(s, pointer);
        if (s.contains("const") || s.contains("enum")) {
            if (auto k = siblings_except({"const", "enum", "type"}); !k.empty()) {
                fail(pointer, fmt::format("'{}' next to 'const'/'enum' is not supported", k));
            }
            std::vector<Json> values;
            if (s.contains("enum")) {
                const Json& e = s["enum"];
                if (!e.is_array() || e.empty()) fail(pointer + "/enum", "must be a non-empty array");
                if (e.size() > limits_.max_enum_values) {
                    fail(pointer + "/enum",
                         fmt::format("{} values exceed the limit of {}", e.size(), limits_.max_enum_values));
                }
                values.assign(e.begin(), e.end());
            }
            if (s.contains("const")) {
                // const and enum together: the const value, if enum lists it.
                const Json& c = s["const"];
                if (s.contains("enum") && std::find(values.begin(), values.end(), c) == values.end())
                    values.clear();
                else
                    values = {c};
            }
            std::string body;
            for (const auto& v : values) {
                bool typed = types.empty();
                for (const auto& t : types) typed = typed || value_has_type(v, t);
                if (typed) body += (body.empty() ? "" : " | ") + literal(v);
            }
            if (body.empty()) fail(pointer, "no value of 'enum'/'const' satisfies the schema");
            return add_rule(pointer, body);
        }
        std::vector<std::string> kinds = types;
        if (kinds.empty()) {
            // No type: the keywords present say which kind they constrain; a schema with keywords of several kinds
            // (legal JSON Schema) is refused rather than guessed.
            auto has_any = [&](std::initializer_list<const char*> keys) {
                for (const char* k : keys)
                    if (s.contains(k)) return true;
                return false;
            };
            if (has_any({"properties", "required", "additionalProperties"})) kinds.push_back("object");
            if (has_any({"items", "minItems", "maxItems"})) kinds.push_back("array");
            if (has_any({"pattern", "format", "minLength", "maxLength"})) kinds.push_back("string");
            if (kinds.size() != 1) fail(pointer, "a schema without 'type' must constrain exactly one kind of value");
        }
        std::string body;
        for (const auto& kind : kinds) {
            body += (body.empty() ? "" : " | ") + visit_kind(s, kind, pointer, depth);
        }
        return add_rule(pointer, body);
    }

    std::string visit_ref(const Json& ref, const std::string& pointer, uint32_t depth) {
        if (!ref.is_string()) fail(pointer + "/$ref", "'$ref' must be a string");
        const std::string target = ref.get<std::string>();
        if (target.empty() || target[0] != '#') {
            fail(pointer + "/$ref", fmt::format("only local references ('#...') are supported, not '{}'", target));
        }
        if (auto it = refs_.find(target); it != refs_.end()) return it->second;
        const Json* node = &root_;
        if (target.size() > 1) {
            try {
                node = &root_.at(Json::json_pointer(target.substr(1)));
            } catch (const std::exception&) {
                fail(pointer + "/$ref", fmt::format("reference '{}' does not resolve", target));
            }
        }
        // The rule is named before its body is compiled, so recursive references close the loop.
        std::string name = add_rule(target.substr(1), "\"\"");
        refs_[target] = name;
        rules_[name] = visit(*node, target.substr(1), depth + 1);
        return name;
    }

    std::string visit_kind(const Json& s, const std::string& kind, const std::string& pointer, uint32_t depth) {
        if (kind == "string") return visit_string(s, pointer);
        if (kind == "number" || kind == "integer" || kind == "boolean" || kind == "null") return use(kind);
        if (kind == "json_object") return use("object");
        if (kind == "array") return visit_array(s, pointer, depth);
        return visit_object(s, pointer, depth);
    }

    std::string visit_string(const Json& s, const std::string& pointer) {
        use("char");
        const bool has_len = s.contains("minLength") || s.contains("maxLength");
        if (s.contains("pattern")) {
            if (has_len || s.contains("format")) {
                fail(pointer, "'pattern' together with 'minLength'/'maxLength'/'format' is not supported");
            }
            if (!s["pattern"].is_string()) fail(pointer + "/pattern", "'pattern' must be a string");
            try {
                const std::string& pattern = s["pattern"].get_ref<const std::string&>();
                return "\"\\\"\" " + regex_to_gbnf(pattern, limits_, options_.max_string_chars) + " \"\\\"\"";
            } catch (const Error& e) {
                fail(pointer + "/pattern", e.what());
            }
        }
        if (s.contains("format")) {
            if (has_len) fail(pointer, "'format' together with 'minLength'/'maxLength' is not supported");
            if (!s["format"].is_string()) fail(pointer + "/format", "'format' must be a string");
            const std::string f = s["format"].get<std::string>();
            if (f != "date" && f != "time" && f != "date-time" && f != "uuid") {
                fail(pointer + "/format",
                     fmt::format("unsupported format '{}' (supported: date, time, date-time, uuid)", f));
            }
            return "\"\\\"\" " + use(f) + " \"\\\"\"";
        }
        if (!has_len) return use("string");
        const uint32_t min = s.contains("minLength") ? count(s, pointer, "minLength") : 0;
        uint32_t max = s.contains("maxLength") ? count(s, pointer, "maxLength") : UINT32_MAX;
        if (max < min) fail(pointer, "'maxLength' is below 'minLength'");
        if (max == UINT32_MAX && options_.max_string_chars > 0) max = std::max(min, options_.max_string_chars);
        return max == UINT32_MAX ? fmt::format("\"\\\"\" char{{{},}} \"\\\"\"", min)
                                 : fmt::format("\"\\\"\" char{{{},{}}} \"\\\"\"", min, max);
    }

    std::string visit_array(const Json& s, const std::string& pointer, uint32_t depth) {
        use("ws");
        const std::string item = s.contains("items") ? visit(s["items"], pointer + "/items", depth + 1) : use("value");
        const uint32_t min = s.contains("minItems") ? count(s, pointer, "minItems") : 0;
        const uint32_t max = s.contains("maxItems") ? count(s, pointer, "maxItems") : UINT32_MAX;
        if (max < min) fail(pointer, "'maxItems' is below 'minItems'");
        if (max == 0) return "\"[\" ws \"]\"";
        const std::string more = max == UINT32_MAX ? fmt::format("{{{},}}", min ? min - 1 : 0)
                                                   : fmt::format("{{{},{}}}", min ? min - 1 : 0, max - 1);
        std::string list = fmt::format("{} ws ( \",\" ws {} ws ){}", item, item, more);
        return min == 0 ? fmt::format("\"[\" ws ( {} )? \"]\"", list) : fmt::format("\"[\" ws {} \"]\"", list);
    }

    std::string visit_object(const Json& s, const std::string& pointer, uint32_t depth) {
        use("ws");
        bool additional = true;
        if (s.contains("additionalProperties")) {
            const Json& a = s["additionalProperties"];
            if (a.is_boolean()) {
                additional = a.get<bool>();
            } else if (!(a.is_object() && a.empty())) {
                fail(pointer + "/additionalProperties", "only 'false', 'true' or '{}' is supported");
            }
        }
        std::vector<std::string> required;
        if (s.contains("required")) {
            const Json& r = s["required"];
            if (!r.is_array()) fail(pointer + "/required", "'required' must be an array of strings");
            for (const auto& x : r) {
                if (!x.is_string()) fail(pointer + "/required", "'required' must be an array of strings");
                if (std::find(required.begin(), required.end(), x.get<std::string>()) == required.end()) {
                    required.push_back(x.get<std::string>());
                }
            }
        }
        const Json empty = Json::object();
        const Json& props = s.contains("properties") ? s["properties"] : empty;
        if (!props.is_object()) fail(pointer + "/properties", "'properties' must be an object");
        if (props.empty() && required.empty()) return additional ? use("object") : "\"{\" ws \"}\"";
        if (props.size() > limits_.max_enum_values) fail(pointer + "/properties", "too many properties");

        auto kv = [&](const std::string& name) {
            std::string value;
            if (props.contains(name)) {
                value = visit(props[name], pointer + "/properties/" + escape_pointer_token(name), depth + 1);
            } else if (additional) {
                value = use("value");  // required but not described: any value
            } else {
                fail(pointer + "/required", fmt::format("'{}' is required but additionalProperties is false and it "
                                                        "has no schema in 'properties'",
                                                        name));
            }
            return add_rule(pointer + "/properties/" + escape_pointer_token(name),
                            gbnf_literal(Json(name).dump()) + " ws \":\" ws " + value);
        };
        std::vector<std::string> req_rules, opt_rules;
        for (const auto& name : required) req_rules.push_back(kv(name));
        for (const auto& [name, _] : props.items()) {
            if (std::find(required.begin(), required.end(), name) == required.end()) opt_rules.push_back(kv(name));
        }
        std::string body;
        if (!req_rules.empty()) {
            for (size_t i = 0; i < req_rules.size(); ++i) body += (i ? " \",\" ws " : "") + req_rules[i] + " ws";
            for (const auto& o : opt_rules) body += " ( \",\" ws " + o + " ws )?";
            return "\"{\" ws " + body + " \"}\"";
        }
        // Only optional properties: the first one present opens the list, each later one brings its comma.
        // tail_i is "( , kv_i )? tail_{i+1}", so the grammar stays linear in the number of properties.
        std::vector<std::string> tails(opt_rules.size() + 1);
        for (size_t i = opt_rules.size(); i-- > 0;) {
            std::string t = "( \",\" ws " + opt_rules[i] + " ws )?";
            if (!tails[i + 1].empty()) t += " " + tails[i + 1];
            tails[i] = add_rule(pointer + "/tail", t);
        }
        for (size_t i = 0; i < opt_rules.size(); ++i) {
            body += (i ? " | " : "") + opt_rules[i] + " ws" + (i + 1 < opt_rules.size() ? " " + tails[i + 1] : "");
        }
        return "\"{\" ws ( " + body + " )? \"}\"";
    }

    const Json& root_;
    const GrammarLimits& limits_;
    const SchemaOptions& options_;
    std::map<std::string, std::string> rules_;
    std::map<std::string, std::string> refs_;
    size_t n_rules_ = 0;
};

}  // namespace

std::string json_schema_to_gbnf(std::string_view schema_json, const GrammarLimits& limits,
                                const SchemaOptions& options) {
    if (schema_json.size() > limits.max_source_bytes) {
        throw Error(ErrorCode::InvalidArgument, fmt::format("JSON schema of {} bytes exceeds the limit of {} bytes",
                                                            schema_json.size(), limits.max_source_bytes));
    }
    // Depth is bounded before parsing: nlohmann's parser is iterative, but the compiler walks the schema
    // recursively, bounded by max_nesting; a document nested far deeper is refused up front.
    uint32_t depth = 0, max_depth = 0;
    bool in_string = false, escaped = false;
    for (char c : schema_json) {
        if (in_string) {
            if (escaped)
                escaped = false;
            else if (c == '\\')
                escaped = true;
            else if (c == '"')
                in_string = false;
        } else if (c == '"') {
            in_string = true;
        } else if (c == '{' || c == '[') {
            max_depth = std::max(max_depth, ++depth);
        } else if ((c == '}' || c == ']') && depth > 0) {
            --depth;
        }
    }
    // Each schema level is an object inside "properties"/"items"/...: two JSON levels per schema level.
    if (max_depth > 2 * limits.max_nesting + 4) {
        throw Error(ErrorCode::InvalidArgument, fmt::format("JSON schema nested {} levels deep, over the limit of {}",
                                                            max_depth, 2 * limits.max_nesting + 4));
    }
    Json schema;
    try {
        schema = Json::parse(schema_json);
    } catch (const nlohmann::json::exception& e) {
        // parse_error for bad syntax, out_of_range for a number past double's range (1e99999), found by the fuzzer.
        throw Error(ErrorCode::InvalidArgument, fmt::format("JSON schema is not valid JSON: {}", e.what()));
    }
    return SchemaCompiler(schema, limits, options).compile();
}

Grammar compile_json_schema(std::string_view schema_json, const GrammarLimits& limits, const SchemaOptions& options) {
    return parse_gbnf(json_schema_to_gbnf(schema_json, limits, options), limits);
}

}  // namespace orcd::grammar
