#pragma once
// The values a template computes with. They follow Python's data model, because chat templates are written against
// jinja2 running in Python: ints and floats are distinct, str() of a list prints Python's repr, dicts keep insertion
// order. Lists and dicts are immutable once built (the sandbox jinja2 runs in forbids mutation), so they are shared
// by pointer; a namespace() object is the one mutable container.
#include <cstdint>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

namespace orcd::tmpl {

class Value;
using List = std::vector<Value>;

// A dict with string keys in insertion order. Chat-template dicts are small, so lookup is linear.
struct Dict {
    std::vector<std::pair<std::string, Value>> items;
    const Value* find(std::string_view key) const;
    void set(std::string key, Value value);
};

// Arguments of a call: positional, then keyword (in source order).
struct CallArgs {
    std::vector<Value> positional;
    std::vector<std::pair<std::string, Value>> named;
};

struct Callable {
    std::string name;
    std::function<Value(CallArgs&)> fn;
};

struct UndefinedValue {
    std::string name;  // what was looked up, for error messages
};
struct NoneValue {};
struct Namespace {
    Dict attrs;
};

class Value {
public:
    enum class Kind { Undefined, None, Bool, Int, Float, String, List, Dict, Callable, Namespace };

    Value() : v_(UndefinedValue{}) {}
    static Value undefined(std::string name) { return Value(Storage(UndefinedValue{std::move(name)})); }
    static Value none() { return Value(Storage(NoneValue{})); }
    Value(bool b) : v_(b) {}
    Value(int64_t i) : v_(i) {}
    Value(int i) : v_(int64_t{i}) {}
    Value(double f) : v_(f) {}
    Value(std::string s) : v_(std::make_shared<const std::string>(std::move(s))) {}
    Value(const char* s) : Value(std::string(s)) {}
    Value(List l) : v_(std::make_shared<const List>(std::move(l))) {}
    // A tuple is a list that prints as Python prints a tuple: (1, 2) and (1,).
    static Value tuple(List l) {
        Value v(std::move(l));
        v.tuple_ = true;
        return v;
    }
    Value(Dict d) : v_(std::make_shared<const Dict>(std::move(d))) {}
    Value(Callable c) : v_(std::make_shared<const Callable>(std::move(c))) {}
    Value(std::shared_ptr<Namespace> ns) : v_(std::move(ns)) {}

    static Value from_json(const nlohmann::ordered_json& j);
    // Throws for values JSON cannot hold (callables, undefined).
    nlohmann::ordered_json to_json() const;

    Kind kind() const { return static_cast<Kind>(v_.index()); }
    bool is_undefined() const { return kind() == Kind::Undefined; }
    bool is_none() const { return kind() == Kind::None; }
    bool is_bool() const { return kind() == Kind::Bool; }
    bool is_int() const { return kind() == Kind::Int; }
    bool is_float() const { return kind() == Kind::Float; }
    bool is_number() const { return is_int() || is_float() || is_bool(); }
    bool is_string() const { return kind() == Kind::String; }
    bool is_list() const { return kind() == Kind::List; }
    bool is_tuple() const { return tuple_; }
    bool is_dict() const { return kind() == Kind::Dict; }
    bool is_callable() const { return kind() == Kind::Callable; }
    bool is_namespace() const { return kind() == Kind::Namespace; }

    bool as_bool() const { return std::get<bool>(v_); }
    int64_t as_int() const { return std::get<int64_t>(v_); }
    double as_float() const { return std::get<double>(v_); }
    // A number as double (bools count as 0/1, as in Python).
    double as_number() const;
    const std::string& str() const { return *std::get<StrPtr>(v_); }
    const List& list() const { return *std::get<ListPtr>(v_); }
    const Dict& dict() const { return *std::get<DictPtr>(v_); }
    const Callable& callable() const { return *std::get<CallPtr>(v_); }
    Namespace& ns() const { return *std::get<NsPtr>(v_); }
    const std::string& undefined_name() const { return std::get<UndefinedValue>(v_).name; }

    // Python's bool(x).
    bool truthy() const;
    // Python's str(x); undefined gives "".
    std::string to_str() const;
    // Python's repr(x).
    std::string repr() const;
    // The Python type name ("str", "NoneType", ...), for error messages.
    std::string_view type_name() const;

private:
    using StrPtr = std::shared_ptr<const std::string>;
    using ListPtr = std::shared_ptr<const List>;
    using DictPtr = std::shared_ptr<const Dict>;
    using CallPtr = std::shared_ptr<const Callable>;
    using NsPtr = std::shared_ptr<Namespace>;
    using Storage =
        std::variant<UndefinedValue, NoneValue, bool, int64_t, double, StrPtr, ListPtr, DictPtr, CallPtr, NsPtr>;
    explicit Value(Storage s) : v_(std::move(s)) {}

    Storage v_;
    bool tuple_ = false;
};

// Python's ==.
bool equals(const Value& a, const Value& b);
// Python's < for numbers, strings and lists; throws a TemplateTypeError for other kinds.
bool less_than(const Value& a, const Value& b);
// repr of a float as Python writes it ("1.0", "1e+16", "inf").
std::string float_repr(double f);

// Options of json.dumps(x, ensure_ascii=False, indent=..., separators=..., sort_keys=...).
struct JsonDumpOptions {
    int indent = -1;  // < 0: no indent
    std::string item_separator = ", ";
    std::string key_separator = ": ";
    bool sort_keys = false;
};
// json.dumps as Python writes it. Throws a TemplateTypeError for values JSON cannot hold.
std::string dumps(const Value& v, const JsonDumpOptions& options);

// A type error raised by an operation; the interpreter adds the template name and line.
struct TemplateTypeError : std::runtime_error {
    using std::runtime_error::runtime_error;
};

}  // namespace orcd::tmpl
