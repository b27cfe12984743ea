// The tests (`x is name(args)`), with jinja2's definitions.
#include <cmath>
#include <fmt/format.h>
#include <unordered_map>

#include "template/builtins.h"
#include "template/text.h"

namespace orcd::tmpl {

namespace {

using TestFn = bool (*)(const Value&, CallArgs&);

const Value& need(const CallArgs& a, std::string_view test) {
    const Value* v = find_arg(a, 0, "other");
    if (!v) throw TemplateTypeError(fmt::format("test '{}' needs an argument", test));
    return *v;
}

int64_t int_value(const Value& v, std::string_view test) {
    if (v.is_int()) return v.as_int();
    if (v.is_bool()) return v.as_bool();
    throw TemplateTypeError(fmt::format("test '{}' needs an integer, not {}", test, v.type_name()));
}

const std::unordered_map<std::string_view, TestFn>& table() {
    static const std::unordered_map<std::string_view, TestFn> t = {
        {"defined", [](const Value& v, CallArgs&) { return !v.is_undefined(); }},
        {"undefined", [](const Value& v, CallArgs&) { return v.is_undefined(); }},
        {"none", [](const Value& v, CallArgs&) { return v.is_none(); }},
        {"boolean", [](const Value& v, CallArgs&) { return v.is_bool(); }},
        {"true", [](const Value& v, CallArgs&) { return v.is_bool() && v.as_bool(); }},
        {"false", [](const Value& v, CallArgs&) { return v.is_bool() && !v.as_bool(); }},
        {"integer", [](const Value& v, CallArgs&) { return v.is_int(); }},
        {"float", [](const Value& v, CallArgs&) { return v.is_float(); }},
        {"number", [](const Value& v, CallArgs&) { return v.is_number(); }},
        {"string", [](const Value& v, CallArgs&) { return v.is_string(); }},
        {"mapping", [](const Value& v, CallArgs&) { return v.is_dict(); }},
        {"sequence", [](const Value& v, CallArgs&) { return v.is_list() || v.is_string() || v.is_dict(); }},
        {"iterable",
         [](const Value& v, CallArgs&) { return v.is_list() || v.is_string() || v.is_dict() || v.is_undefined(); }},
        {"callable", [](const Value& v, CallArgs&) { return v.is_callable(); }},
        {"odd", [](const Value& v, CallArgs&) { return (int_value(v, "odd") & 1) != 0; }},
        {"even", [](const Value& v, CallArgs&) { return (int_value(v, "even") & 1) == 0; }},
        {"divisibleby",
         [](const Value& v, CallArgs& a) {
             const int64_t d = int_value(need(a, "divisibleby"), "divisibleby");
             if (d == 0) throw RenderError("integer division or modulo by zero");
             return int_value(v, "divisibleby") % d == 0;
         }},
        {"eq", [](const Value& v, CallArgs& a) { return equals(v, need(a, "eq")); }},
        {"ne", [](const Value& v, CallArgs& a) { return !equals(v, need(a, "ne")); }},
        {"lt", [](const Value& v, CallArgs& a) { return less_than(v, need(a, "lt")); }},
        {"le", [](const Value& v, CallArgs& a) { return !less_than(need(a, "le"), v); }},
        {"gt", [](const Value& v, CallArgs& a) { return less_than(need(a, "gt"), v); }},
        {"ge", [](const Value& v, CallArgs& a) { return !less_than(v, need(a, "ge")); }},
        {"in",
         [](const Value& v, CallArgs& a) {
             const Value& seq = need(a, "in");
             if (seq.is_string()) return v.is_string() && seq.str().find(v.str()) != std::string::npos;
             if (seq.is_dict()) return v.is_string() && seq.dict().find(v.str()) != nullptr;
             for (const auto& x : iterate(seq))
                 if (equals(v, x)) return true;
             return false;
         }},
        {"sameas",
         [](const Value& v, CallArgs& a) {
             const Value& o = need(a, "sameas");
             // Python's `is`: singletons compare by value; containers by identity, approximated by equality.
             if (v.is_none() || o.is_none() || v.is_bool() || o.is_bool()) return v.kind() == o.kind() && equals(v, o);
             return v.kind() == o.kind() && equals(v, o);
         }},
        {"lower", [](const Value& v, CallArgs&) { return v.is_string() && text::lower(v.str()) == v.str(); }},
        {"upper", [](const Value& v, CallArgs&) { return v.is_string() && text::upper(v.str()) == v.str(); }},
        {"escaped", [](const Value&, CallArgs&) { return false; }},
    };
    return t;
}

}  // namespace

bool has_test(std::string_view name) {
    static const std::unordered_map<std::string_view, std::string_view> aliases = {
        {"==", "eq"}, {"equalto", "eq"}, {"!=", "ne"},          {"<", "lt"}, {"lessthan", "lt"},
        {"<=", "le"}, {">", "gt"},       {"greaterthan", "gt"}, {">=", "ge"}};
    return table().count(name) > 0 || aliases.count(name) > 0;
}

bool apply_test(Interpreter&, std::string_view name, const Value& operand, CallArgs& args) {
    static const std::unordered_map<std::string_view, std::string_view> aliases = {
        {"==", "eq"}, {"equalto", "eq"}, {"!=", "ne"},          {"<", "lt"}, {"lessthan", "lt"},
        {"<=", "le"}, {">", "gt"},       {"greaterthan", "gt"}, {">=", "ge"}};
    if (const auto a = aliases.find(name); a != aliases.end()) name = a->second;
    const auto it = table().find(name);
    if (it == table().end()) throw RenderError(fmt::format("no test named '{}'", name));
    return it->second(operand, args);
}

}  // namespace orcd::tmpl
