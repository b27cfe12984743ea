#include "template/value.h"

#include <charconv>
#include <cmath>
#include <fmt/format.h>

#include "template/text.h"

namespace orcd::tmpl {

const Value* Dict::find(std::string_view key) const {
    for (const auto& [k, v] : items)
        if (k == key) return &v;
    return nullptr;
}

void Dict::set(std::string key, Value value) {
    for (auto& [k, v] : items) {
        if (k == key) {
            v = std::move(value);
            return;
        }
    }
    items.emplace_back(std::move(key), std::move(value));
}

Value Value::from_json(const nlohmann::ordered_json& j) {
    switch (j.type()) {
        case nlohmann::ordered_json::value_t::null: return none();
        case nlohmann::ordered_json::value_t::boolean: return Value(j.get<bool>());
        case nlohmann::ordered_json::value_t::number_integer: return Value(j.get<int64_t>());
        case nlohmann::ordered_json::value_t::number_unsigned: {
            const auto u = j.get<uint64_t>();
            if (u > static_cast<uint64_t>(INT64_MAX)) return Value(static_cast<double>(u));
            return Value(static_cast<int64_t>(u));
        }
        case nlohmann::ordered_json::value_t::number_float: return Value(j.get<double>());
        case nlohmann::ordered_json::value_t::string: return Value(j.get<std::string>());
        case nlohmann::ordered_json::value_t::array: {
            List l;
            l.reserve(j.size());
            for (const auto& e : j) l.push_back(from_json(e));
            return Value(std::move(l));
        }
        case nlohmann::ordered_json::value_t::object: {
            Dict d;
            d.items.reserve(j.size());
            for (const auto& [k, e] : j.items()) d.items.emplace_back(k, from_json(e));
            return Value(std::move(d));
        }
        default: return undefined("");
    }
}

nlohmann::ordered_json Value::to_json() const {
    switch (kind()) {
        case Kind::None: return nullptr;
        case Kind::Bool: return as_bool();
        case Kind::Int: return as_int();
        case Kind::Float: return as_float();
        case Kind::String: return str();
        case Kind::List: {
            auto j = nlohmann::ordered_json::array();
            for (const auto& e : list()) j.push_back(e.to_json());
            return j;
        }
        case Kind::Dict:
        case Kind::Namespace: {
            auto j = nlohmann::ordered_json::object();
            for (const auto& [k, e] : (is_dict() ? dict() : ns().attrs).items) j[k] = e.to_json();
            return j;
        }
        default: throw TemplateTypeError(fmt::format("Object of type {} is not JSON serializable", type_name()));
    }
}

double Value::as_number() const {
    if (is_int()) return static_cast<double>(as_int());
    if (is_bool()) return as_bool() ? 1.0 : 0.0;
    return as_float();
}

bool Value::truthy() const {
    switch (kind()) {
        case Kind::Undefined:
        case Kind::None: return false;
        case Kind::Bool: return as_bool();
        case Kind::Int: return as_int() != 0;
        case Kind::Float: return as_float() != 0.0;
        case Kind::String: return !str().empty();
        case Kind::List: return !list().empty();
        case Kind::Dict: return !dict().items.empty();
        default: return true;
    }
}

std::string float_repr(double f) {
    if (std::isnan(f)) return "nan";
    if (std::isinf(f)) return f < 0 ? "-inf" : "inf";
    if (f == 0.0) return std::signbit(f) ? "-0.0" : "0.0";
    char buf[64];
    const auto res = std::to_chars(buf, buf + sizeof buf, f, std::chars_format::scientific);
    const std::string sci(buf, res.ptr);  // shortest round-trip digits, e.g. "-1.2345e+17"
    const size_t epos = sci.find('e');
    std::string mant = sci.substr(0, epos);
    const int exp = std::stoi(sci.substr(epos + 1));
    std::string sign;
    if (mant[0] == '-') {
        sign = "-";
        mant.erase(0, 1);
    }
    std::string digits;
    for (char c : mant)
        if (c != '.') digits += c;
    if (exp >= -4 && exp < 16) {
        std::string out;
        if (exp >= 0) {
            if (static_cast<int>(digits.size()) <= exp + 1) {
                out = digits + std::string(static_cast<size_t>(exp) + 1 - digits.size(), '0') + ".0";
            } else {
                out =
                    digits.substr(0, static_cast<size_t>(exp) + 1) + "." + digits.substr(static_cast<size_t>(exp) + 1);
            }
        } else {
            out = "0." + std::string(static_cast<size_t>(-exp - 1), '0') + digits;
        }
        return sign + out;
    }
    std::string out = digits.substr(0, 1);
    if (digits.size() > 1) out += "." + digits.substr(1);
    return sign + out + fmt::format("e{}{:02d}", exp < 0 ? '-' : '+', std::abs(exp));
}

std::string Value::to_str() const {
    switch (kind()) {
        case Kind::Undefined: return "";
        case Kind::String: return str();
        default: return repr();
    }
}

std::string Value::repr() const {
    switch (kind()) {
        case Kind::Undefined: return "";
        case Kind::None: return "None";
        case Kind::Bool: return as_bool() ? "True" : "False";
        case Kind::Int: return std::to_string(as_int());
        case Kind::Float: return float_repr(as_float());
        case Kind::String: return text::repr(str());
        case Kind::List: {
            std::string out = tuple_ ? "(" : "[";
            for (size_t i = 0; i < list().size(); ++i) {
                if (i) out += ", ";
                out += list()[i].repr();
            }
            if (tuple_) return out + (list().size() == 1 ? ",)" : ")");
            return out + "]";
        }
        case Kind::Dict: {
            std::string out = "{";
            bool first = true;
            for (const auto& [k, v] : dict().items) {
                if (!first) out += ", ";
                first = false;
                out += text::repr(k) + ": " + v.repr();
            }
            return out + "}";
        }
        case Kind::Callable: return fmt::format("<function {}>", callable().name);
        case Kind::Namespace: {
            std::string out = "<Namespace {";
            bool first = true;
            for (const auto& [k, v] : ns().attrs.items) {
                if (!first) out += ", ";
                first = false;
                out += text::repr(k) + ": " + v.repr();
            }
            return out + "}>";
        }
    }
    return "";
}

std::string_view Value::type_name() const {
    switch (kind()) {
        case Kind::Undefined: return "Undefined";
        case Kind::None: return "NoneType";
        case Kind::Bool: return "bool";
        case Kind::Int: return "int";
        case Kind::Float: return "float";
        case Kind::String: return "str";
        case Kind::List: return "list";
        case Kind::Dict: return "dict";
        case Kind::Callable: return "function";
        case Kind::Namespace: return "Namespace";
    }
    return "object";
}

bool equals(const Value& a, const Value& b) {
    if (a.is_number() && b.is_number()) {
        if (a.is_float() || b.is_float()) return a.as_number() == b.as_number();
        const int64_t x = a.is_bool() ? a.as_bool() : a.as_int();
        const int64_t y = b.is_bool() ? b.as_bool() : b.as_int();
        return x == y;
    }
    if (a.kind() != b.kind()) return false;
    switch (a.kind()) {
        case Value::Kind::Undefined:
        case Value::Kind::None: return true;
        case Value::Kind::String: return a.str() == b.str();
        case Value::Kind::List: {
            if (a.list().size() != b.list().size()) return false;
            for (size_t i = 0; i < a.list().size(); ++i)
                if (!equals(a.list()[i], b.list()[i])) return false;
            return true;
        }
        case Value::Kind::Dict: {
            if (a.dict().items.size() != b.dict().items.size()) return false;
            for (const auto& [k, v] : a.dict().items) {
                const Value* o = b.dict().find(k);
                if (!o || !equals(v, *o)) return false;
            }
            return true;
        }
        case Value::Kind::Callable: return &a.callable() == &b.callable();
        case Value::Kind::Namespace: return &a.ns() == &b.ns();
        default: return false;
    }
}

bool less_than(const Value& a, const Value& b) {
    if (a.is_number() && b.is_number()) {
        if (a.is_float() || b.is_float()) return a.as_number() < b.as_number();
        const int64_t x = a.is_bool() ? a.as_bool() : a.as_int();
        const int64_t y = b.is_bool() ? b.as_bool() : b.as_int();
        return x < y;
    }
    if (a.is_string() && b.is_string()) {
        // Python compares code points; UTF-8 byte order is the same order.
        return a.str() < b.str();
    }
    if (a.is_list() && b.is_list()) {
        const auto& x = a.list();
        const auto& y = b.list();
        for (size_t i = 0; i < x.size() && i < y.size(); ++i) {
            if (equals(x[i], y[i])) continue;
            return less_than(x[i], y[i]);
        }
        return x.size() < y.size();
    }
    throw TemplateTypeError(
        fmt::format("'<' not supported between instances of '{}' and '{}'", a.type_name(), b.type_name()));
}

namespace {

// JSON's short escapes, which json.dumps writes; the other control characters are written as \u00XX.
constexpr text::CharEscape kJsonEscapes[] = {{'"', "\\\""}, {'\\', "\\\\"}, {'\n', "\\n"}, {'\r', "\\r"},
                                             {'\t', "\\t"}, {'\b', "\\b"},  {'\f', "\\f"}};

void dump_string(std::string& out, std::string_view s) {
    out += '"';
    for (char ch : s) {
        const auto c = static_cast<unsigned char>(ch);
        if (const std::string_view* esc = text::find_escape(kJsonEscapes, ch))
            out += *esc;
        else if (c < 0x20)
            out += fmt::format("\\u{:04x}", static_cast<unsigned>(c));
        else
            out += ch;
    }
    out += '"';
}

void dump(std::string& out, const Value& v, const JsonDumpOptions& o, int level, int depth) {
    if (depth > 512) throw TemplateTypeError("tojson: value nested too deeply");
    auto newline = [&](int lvl) {
        if (o.indent < 0) return;
        out += '\n';
        out.append(static_cast<size_t>(o.indent) * static_cast<size_t>(lvl), ' ');
    };
    switch (v.kind()) {
        case Value::Kind::None: out += "null"; return;
        case Value::Kind::Bool: out += v.as_bool() ? "true" : "false"; return;
        case Value::Kind::Int: out += std::to_string(v.as_int()); return;
        case Value::Kind::Float: {
            const double f = v.as_float();
            out += std::isnan(f) ? "NaN" : std::isinf(f) ? (f < 0 ? "-Infinity" : "Infinity") : float_repr(f);
            return;
        }
        case Value::Kind::String: dump_string(out, v.str()); return;
        case Value::Kind::List: {
            if (v.list().empty()) {
                out += "[]";
                return;
            }
            out += '[';
            bool first = true;
            for (const auto& e : v.list()) {
                if (!first) out += o.item_separator;
                first = false;
                newline(level + 1);
                dump(out, e, o, level + 1, depth + 1);
            }
            newline(level);
            out += ']';
            return;
        }
        case Value::Kind::Dict:
        case Value::Kind::Namespace: {
            const Dict& d = v.is_dict() ? v.dict() : v.ns().attrs;
            if (d.items.empty()) {
                out += "{}";
                return;
            }
            std::vector<const std::pair<std::string, Value>*> items;
            for (const auto& it : d.items) items.push_back(&it);
            if (o.sort_keys)
                std::stable_sort(items.begin(), items.end(), [](auto* a, auto* b) { return a->first < b->first; });
            out += '{';
            bool first = true;
            for (const auto* it : items) {
                if (!first) out += o.item_separator;
                first = false;
                newline(level + 1);
                dump_string(out, it->first);
                out += o.key_separator;
                dump(out, it->second, o, level + 1, depth + 1);
            }
            newline(level);
            out += '}';
            return;
        }
        default: throw TemplateTypeError(fmt::format("Object of type {} is not JSON serializable", v.type_name()));
    }
}

}  // namespace

std::string dumps(const Value& v, const JsonDumpOptions& options) {
    std::string out;
    dump(out, v, options, 0, 0);
    return out;
}

}  // namespace orcd::tmpl
