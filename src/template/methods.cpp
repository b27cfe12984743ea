// Attribute, item and slice access, iteration, and the Python methods of str, dict and list that templates call.
#include <fmt/format.h>

#include "template/builtins.h"
#include "template/text.h"

namespace orcd::tmpl {

namespace {

std::string_view type_label(const Value& v) {
    switch (v.kind()) {
        case Value::Kind::Dict: return "dict object";
        case Value::Kind::List: return "list object";
        case Value::Kind::String: return "str object";
        case Value::Kind::None: return "None";
        default: return v.type_name();
    }
}

Value undefined_attr(const Value& obj, std::string_view name) {
    return Value::undefined(fmt::format("'{}' has no attribute '{}'", type_label(obj), name));
}

[[noreturn]] void unsafe(const Value& obj, std::string_view name) {
    throw RenderError(
        fmt::format("access to attribute '{}' of '{}' object is unsafe (templates cannot modify their "
                    "inputs)",
                    name, obj.type_name()));
}

const std::string* opt_str(const CallArgs& a, size_t pos, std::string_view name, std::string_view method) {
    const Value* v = find_arg(a, pos, name);
    if (!v || v->is_none()) return nullptr;
    if (!v->is_string())
        throw TemplateTypeError(fmt::format("{}() argument must be str or None, not {}", method, v->type_name()));
    return &v->str();
}

const std::string& req_str(const CallArgs& a, size_t pos, std::string_view name, std::string_view method) {
    const Value* v = find_arg(a, pos, name);
    if (!v) throw TemplateTypeError(fmt::format("{}() missing required argument '{}'", method, name));
    if (!v->is_string())
        throw TemplateTypeError(fmt::format("{}() argument must be str, not {}", method, v->type_name()));
    return v->str();
}

Value str_list(std::vector<std::string> parts) {
    List l;
    l.reserve(parts.size());
    for (auto& p : parts) l.emplace_back(std::move(p));
    return Value(std::move(l));
}

// str.startswith / endswith: a prefix or a tuple of prefixes.
bool affix_match(const std::string& s, const Value& affix, bool start) {
    auto one = [&](const Value& a) {
        if (!a.is_string())
            throw TemplateTypeError(fmt::format("{}with first arg must be str or a tuple of str, not {}",
                                                start ? "starts" : "ends", a.type_name()));
        const std::string& x = a.str();
        if (x.size() > s.size()) return false;
        return start ? s.compare(0, x.size(), x) == 0 : s.compare(s.size() - x.size(), x.size(), x) == 0;
    };
    if (affix.is_list()) {
        for (const auto& a : affix.list())
            if (one(a)) return true;
        return false;
    }
    return one(affix);
}

template <typename Pred>
bool all_cps(const std::string& s, Pred p) {
    const auto cps = text::decode(s);
    if (cps.empty()) return false;
    for (char32_t c : cps)
        if (!p(c)) return false;
    return true;
}

Value bind_method(const Value& self, std::string name, std::function<Value(const Value&, CallArgs&)> fn) {
    return Value(Callable{std::move(name), [self, fn = std::move(fn)](CallArgs& a) { return fn(self, a); }});
}

Value str_method(const Value& self, std::string_view name) {
    using Fn = std::function<Value(const Value&, CallArgs&)>;
    Fn fn;
    if (name == "strip" || name == "lstrip" || name == "rstrip") {
        const bool left = name != "rstrip", right = name != "lstrip";
        fn = [left, right, m = std::string(name)](const Value& s, CallArgs& a) {
            return Value(text::strip(s.str(), opt_str(a, 0, "chars", m), left, right));
        };
    } else if (name == "split" || name == "rsplit") {
        const bool r = name == "rsplit";
        fn = [r, m = std::string(name)](const Value& s, CallArgs& a) {
            const std::string* sep = opt_str(a, 0, "sep", m);
            const int64_t maxsplit = int_arg(a, 1, "maxsplit", -1);
            if (sep && sep->empty()) throw RenderError("empty separator");
            return str_list(r ? text::rsplit(s.str(), sep, maxsplit) : text::split(s.str(), sep, maxsplit));
        };
    } else if (name == "splitlines") {
        fn = [](const Value& s, CallArgs&) { return str_list(text::splitlines(s.str())); };
    } else if (name == "startswith" || name == "endswith") {
        const bool start = name == "startswith";
        fn = [start](const Value& s, CallArgs& a) {
            const Value* affix = find_arg(a, 0, "prefix");
            if (!affix) throw TemplateTypeError("startswith/endswith takes at least 1 argument");
            return Value(affix_match(s.str(), *affix, start));
        };
    } else if (name == "upper") {
        fn = [](const Value& s, CallArgs&) { return Value(text::upper(s.str())); };
    } else if (name == "lower") {
        fn = [](const Value& s, CallArgs&) { return Value(text::lower(s.str())); };
    } else if (name == "title") {
        fn = [](const Value& s, CallArgs&) { return Value(text::title(s.str())); };
    } else if (name == "capitalize") {
        fn = [](const Value& s, CallArgs&) { return Value(text::capitalize(s.str())); };
    } else if (name == "replace") {
        fn = [](const Value& s, CallArgs& a) {
            return Value(text::replace(s.str(), req_str(a, 0, "old", "replace"), req_str(a, 1, "new", "replace"),
                                       int_arg(a, 2, "count", -1)));
        };
    } else if (name == "find" || name == "rfind" || name == "index" || name == "rindex" || name == "count") {
        fn = [m = std::string(name)](const Value& s, CallArgs& a) {
            const std::string& sub = req_str(a, 0, "sub", m);
            const std::string& str = s.str();
            if (m == "count") {
                if (sub.empty()) return Value(static_cast<int64_t>(text::length(str) + 1));
                int64_t n = 0;
                for (size_t p = str.find(sub); p != std::string::npos; p = str.find(sub, p + sub.size())) ++n;
                return Value(n);
            }
            const size_t p = (m == "rfind" || m == "rindex") ? str.rfind(sub) : str.find(sub);
            if (p == std::string::npos) {
                if (m == "index" || m == "rindex") throw RenderError("substring not found");
                return Value(int64_t{-1});
            }
            return Value(static_cast<int64_t>(text::length(std::string_view(str).substr(0, p))));
        };
    } else if (name == "join") {
        fn = [](const Value& s, CallArgs& a) {
            const Value* seq = find_arg(a, 0, "iterable");
            if (!seq) throw TemplateTypeError("join() takes exactly one argument");
            std::string out;
            bool first = true;
            for (const auto& x : iterate(*seq)) {
                if (!x.is_string())
                    throw TemplateTypeError(
                        fmt::format("sequence item: expected str instance, {} found", x.type_name()));
                if (!first) out += s.str();
                first = false;
                out += x.str();
            }
            return Value(std::move(out));
        };
    } else if (name == "removeprefix" || name == "removesuffix") {
        const bool prefix = name == "removeprefix";
        fn = [prefix](const Value& s, CallArgs& a) {
            const std::string& x = req_str(a, 0, "affix", prefix ? "removeprefix" : "removesuffix");
            const std::string& str = s.str();
            if (affix_match(str, Value(x), prefix))
                return Value(prefix ? str.substr(x.size()) : str.substr(0, str.size() - x.size()));
            return s;
        };
    } else if (name == "isdigit" || name == "isnumeric" || name == "isdecimal") {
        fn = [](const Value& s, CallArgs&) {
            return Value(all_cps(s.str(), [](char32_t c) { return c >= '0' && c <= '9'; }));
        };
    } else if (name == "isspace") {
        fn = [](const Value& s, CallArgs&) { return Value(all_cps(s.str(), text::is_space)); };
    } else if (name == "isalpha" || name == "isalnum") {
        const bool num = name == "isalnum";
        fn = [num](const Value& s, CallArgs&) {
            return Value(all_cps(s.str(), [num](char32_t c) {
                if (num && c >= '0' && c <= '9') return true;
                if (c < 0x80) return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
                return text::upper(text::encode({c})) != text::lower(text::encode({c}));
            }));
        };
    } else if (name == "isupper" || name == "islower") {
        const bool up = name == "isupper";
        fn = [up](const Value& s, CallArgs&) {
            const std::string& str = s.str();
            const std::string u = text::upper(str), l = text::lower(str);
            if (u == l) return Value(false);  // no cased characters
            return Value(up ? str == u : str == l);
        };
    } else if (name == "format") {
        // str.format with automatic ({}) and positional ({0}) fields, which is what templates use.
        fn = [](const Value& s, CallArgs& a) {
            const std::string& f = s.str();
            std::string out;
            size_t next = 0;
            for (size_t i = 0; i < f.size(); ++i) {
                if (f[i] == '{' && i + 1 < f.size() && f[i + 1] == '{') {
                    out += '{';
                    ++i;
                } else if (f[i] == '}' && i + 1 < f.size() && f[i + 1] == '}') {
                    out += '}';
                    ++i;
                } else if (f[i] == '{') {
                    const size_t close = f.find('}', i);
                    if (close == std::string::npos) throw RenderError("format(): single '{' encountered");
                    const std::string field = f.substr(i + 1, close - i - 1);
                    const Value* v = nullptr;
                    if (field.empty()) {
                        v = next < a.positional.size() ? &a.positional[next] : nullptr;
                        ++next;
                    } else if (std::isdigit(static_cast<unsigned char>(field[0]))) {
                        const size_t k = std::stoul(field);
                        v = k < a.positional.size() ? &a.positional[k] : nullptr;
                    } else {
                        for (const auto& [key, val] : a.named)
                            if (key == field) v = &val;
                    }
                    if (!v) throw RenderError(fmt::format("format(): no argument for field '{{{}}}'", field));
                    out += v->to_str();
                    i = close;
                } else {
                    out += f[i];
                }
            }
            return Value(std::move(out));
        };
    } else {
        return Value();
    }
    return bind_method(self, std::string(name), std::move(fn));
}

Value dict_method(const Value& self, std::string_view name) {
    if (name == "items") {
        return bind_method(self, "items", [](const Value& d, CallArgs&) {
            List l;
            for (const auto& [k, v] : d.dict().items) l.push_back(Value::tuple(List{Value(k), v}));
            return Value(std::move(l));
        });
    }
    if (name == "keys") {
        return bind_method(self, "keys", [](const Value& d, CallArgs&) {
            List l;
            for (const auto& kv : d.dict().items) l.emplace_back(kv.first);
            return Value(std::move(l));
        });
    }
    if (name == "values") {
        return bind_method(self, "values", [](const Value& d, CallArgs&) {
            List l;
            for (const auto& kv : d.dict().items) l.push_back(kv.second);
            return Value(std::move(l));
        });
    }
    if (name == "get") {
        return bind_method(self, "get", [](const Value& d, CallArgs& a) {
            const Value* key = find_arg(a, 0, "key");
            if (!key) throw TemplateTypeError("get expected at least 1 argument, got 0");
            Value fallback = arg_or(a, 1, "default", Value::none());
            if (!key->is_string()) return fallback;
            const Value* v = d.dict().find(key->str());
            return v ? *v : fallback;
        });
    }
    if (name == "copy") return bind_method(self, "copy", [](const Value& d, CallArgs&) { return d; });
    if (name == "update" || name == "pop" || name == "popitem" || name == "setdefault" || name == "clear")
        unsafe(self, name);
    return Value();
}

Value list_method(const Value& self, std::string_view name) {
    if (name == "index" || name == "count") {
        const bool count = name == "count";
        return bind_method(self, std::string(name), [count](const Value& l, CallArgs& a) {
            const Value* x = find_arg(a, 0, "value");
            if (!x) throw TemplateTypeError("list method takes exactly one argument");
            int64_t n = 0;
            for (size_t i = 0; i < l.list().size(); ++i) {
                if (!equals(l.list()[i], *x)) continue;
                if (!count) return Value(static_cast<int64_t>(i));
                ++n;
            }
            if (!count) throw RenderError(fmt::format("{} is not in list", x->repr()));
            return Value(n);
        });
    }
    if (name == "copy") return bind_method(self, "copy", [](const Value& l, CallArgs&) { return l; });
    if (name == "append" || name == "extend" || name == "insert" || name == "pop" || name == "remove" ||
        name == "sort" || name == "reverse" || name == "clear")
        unsafe(self, name);
    return Value();
}

int64_t normalize_index(int64_t i, int64_t len) { return i < 0 ? i + len : i; }

}  // namespace

const Value* find_arg(const CallArgs& args, size_t pos, std::string_view name) {
    if (pos < args.positional.size()) return &args.positional[pos];
    for (const auto& [k, v] : args.named)
        if (k == name) return &v;
    return nullptr;
}

Value arg_or(const CallArgs& args, size_t pos, std::string_view name, Value fallback) {
    const Value* v = find_arg(args, pos, name);
    if (v) return *v;
    return fallback;  // moved out: a by-value parameter returned as is
}

int64_t int_arg(const CallArgs& args, size_t pos, std::string_view name, int64_t fallback) {
    const Value* v = find_arg(args, pos, name);
    if (!v || v->is_none()) return fallback;
    if (v->is_int()) return v->as_int();
    if (v->is_bool()) return v->as_bool() ? 1 : 0;
    throw TemplateTypeError(fmt::format("argument '{}' must be an integer, not {}", name, v->type_name()));
}

void require_defined(const Value& v) {
    if (!v.is_undefined()) return;
    const std::string& hint = v.undefined_name();
    if (hint.find(' ') != std::string::npos) throw RenderError(hint);
    throw RenderError(fmt::format("'{}' is undefined", hint));
}

Value get_attr(const Value& obj, std::string_view name) {
    if (obj.is_undefined()) require_defined(obj);
    if (!name.empty() && name[0] == '_') throw RenderError(fmt::format("access to attribute '{}' is unsafe", name));
    switch (obj.kind()) {
        case Value::Kind::Dict: {
            Value m = dict_method(obj, name);
            if (!m.is_undefined()) return m;
            const Value* v = obj.dict().find(name);
            return v ? *v : undefined_attr(obj, name);
        }
        case Value::Kind::Namespace: {
            const Value* v = obj.ns().attrs.find(name);
            return v ? *v : undefined_attr(obj, name);
        }
        case Value::Kind::String: {
            Value m = str_method(obj, name);
            return m.is_undefined() ? undefined_attr(obj, name) : m;
        }
        case Value::Kind::List: {
            Value m = list_method(obj, name);
            return m.is_undefined() ? undefined_attr(obj, name) : m;
        }
        default: return undefined_attr(obj, name);
    }
}

Value get_item(const Value& obj, const Value& key) {
    if (obj.is_undefined()) require_defined(obj);
    if (obj.is_dict()) {
        if (key.is_string()) {
            const Value* v = obj.dict().find(key.str());
            if (v) return *v;
            return get_attr(obj, key.str());
        }
        return Value::undefined(fmt::format("'dict object' has no attribute {}", key.repr()));
    }
    if (obj.is_namespace() && key.is_string()) return get_attr(obj, key.str());
    if ((obj.is_list() || obj.is_string()) && (key.is_int() || key.is_bool())) {
        const int64_t raw = key.is_bool() ? key.as_bool() : key.as_int();
        if (obj.is_list()) {
            const auto len = static_cast<int64_t>(obj.list().size());
            const int64_t i = normalize_index(raw, len);
            if (i < 0 || i >= len) return Value::undefined(fmt::format("list index {} out of range", raw));
            return obj.list()[static_cast<size_t>(i)];
        }
        const auto cps = text::decode(obj.str());
        const auto len = static_cast<int64_t>(cps.size());
        const int64_t i = normalize_index(raw, len);
        if (i < 0 || i >= len) return Value::undefined(fmt::format("string index {} out of range", raw));
        return Value(text::encode({cps[static_cast<size_t>(i)]}));
    }
    if (key.is_string()) return get_attr(obj, key.str());
    return Value::undefined(fmt::format("'{}' has no item {}", type_label(obj), key.repr()));
}

Value get_slice(const Value& obj, const Value* start, const Value* stop, const Value* step) {
    require_defined(obj);
    auto as_index = [](const Value* v, const char* what) -> std::optional<int64_t> {
        if (!v || v->is_none()) return std::nullopt;
        if (v->is_int()) return v->as_int();
        if (v->is_bool()) return v->as_bool() ? 1 : 0;
        throw TemplateTypeError(fmt::format("slice {} must be an integer or None, not {}", what, v->type_name()));
    };
    const int64_t st = as_index(step, "step").value_or(1);
    if (st == 0) throw RenderError("slice step cannot be zero");
    std::vector<char32_t> cps;
    int64_t len;
    if (obj.is_list()) {
        len = static_cast<int64_t>(obj.list().size());
    } else if (obj.is_string()) {
        cps = text::decode(obj.str());
        len = static_cast<int64_t>(cps.size());
    } else {
        throw TemplateTypeError(fmt::format("'{}' object is not subscriptable", obj.type_name()));
    }
    // Python's slice.indices().
    auto clamp = [&](std::optional<int64_t> v, int64_t dflt) {
        if (!v) return dflt;
        int64_t x = *v;
        if (x < 0) {
            x += len;
            if (x < 0) x = st < 0 ? -1 : 0;
        } else if (x >= len) {
            x = st < 0 ? len - 1 : len;
        }
        return x;
    };
    const int64_t b = clamp(as_index(start, "start"), st < 0 ? len - 1 : 0);
    const int64_t e = clamp(as_index(stop, "stop"), st < 0 ? -1 : len);
    std::vector<int64_t> idx;
    // Steps are taken only while they stay inside [b, e), so a huge step cannot overflow.
    if (st > 0)
        for (int64_t i = b; i < e; i = (e - i > st) ? i + st : e) idx.push_back(i);
    else
        for (int64_t i = b; i > e; i = (i - e > -st) ? i + st : e) idx.push_back(i);
    if (obj.is_list()) {
        List out;
        out.reserve(idx.size());
        for (int64_t i : idx) out.push_back(obj.list()[static_cast<size_t>(i)]);
        return Value(std::move(out));
    }
    std::vector<char32_t> out;
    out.reserve(idx.size());
    for (int64_t i : idx) out.push_back(cps[static_cast<size_t>(i)]);
    return Value(text::encode(out));
}

List iterate(const Value& v) {
    switch (v.kind()) {
        case Value::Kind::Undefined: return {};
        case Value::Kind::List: return v.list();
        case Value::Kind::Dict: {
            List keys;
            for (const auto& kv : v.dict().items) keys.emplace_back(kv.first);
            return keys;
        }
        case Value::Kind::String: {
            List chars;
            for (char32_t c : text::decode(v.str())) chars.emplace_back(text::encode({c}));
            return chars;
        }
        default: throw TemplateTypeError(fmt::format("'{}' object is not iterable", v.type_name()));
    }
}

}  // namespace orcd::tmpl
