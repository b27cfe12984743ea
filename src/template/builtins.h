#pragma once
// The builtins a template can call, each in its own file: filters (filters.cpp), tests (tests.cpp), attribute and
// method lookup on values (methods.cpp) and the global functions (globals.cpp). They throw RenderError or
// TemplateTypeError; the interpreter adds the template name and line.
#include <optional>
#include <string_view>

#include "template/interpreter.h"
#include "template/value.h"

namespace orcd::tmpl {

// Throws RenderError "no filter named 'x'" for an unknown name.
Value apply_filter(Interpreter& in, std::string_view name, const Value& operand, CallArgs& args);
bool apply_test(Interpreter& in, std::string_view name, const Value& operand, CallArgs& args);
bool has_test(std::string_view name);

// `obj.name` as jinja2 resolves it: a method of the value's Python type, else a dict key / namespace attribute,
// else undefined. Throws for an attribute of an undefined value.
Value get_attr(const Value& obj, std::string_view name);
// `obj[key]`: a dict key, list or string index (negative counts from the end), else undefined.
Value get_item(const Value& obj, const Value& key);
// obj[start:stop:step] with Python's rules; nulls are omitted parts.
Value get_slice(const Value& obj, const Value* start, const Value* stop, const Value* step);

// The iteration of `for x in v`: list items, dict keys, string characters; undefined iterates as empty. Throws for
// values Python cannot iterate (none, numbers).
List iterate(const Value& v);
// Raises "'x' is undefined" when v is undefined (for operations jinja2's Undefined refuses).
void require_defined(const Value& v);

// The global functions (range, dict, namespace, raise_exception, strftime_now) as callables.
Dict make_globals(Interpreter& in);

// Argument access for builtins: positional index `pos` or keyword `name`, else `fallback`.
const Value* find_arg(const CallArgs& args, size_t pos, std::string_view name);
Value arg_or(const CallArgs& args, size_t pos, std::string_view name, Value fallback);
int64_t int_arg(const CallArgs& args, size_t pos, std::string_view name, int64_t fallback);

}  // namespace orcd::tmpl
