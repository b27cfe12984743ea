// The filters (`x | name(args)`), with jinja2's semantics for the values chat templates pass them.
#include <algorithm>
#include <cmath>
#include <fmt/format.h>
#include <unordered_map>

#include "template/builtins.h"
#include "template/text.h"

namespace orcd::tmpl {

namespace {

using FilterFn = Value (*)(Interpreter&, const Value&, CallArgs&);

// `attribute` arguments may be dotted ("function.name") or an integer index.
Value attribute_of(const Value& v, const Value& attribute) {
    if (attribute.is_int()) return get_item(v, attribute);
    if (!attribute.is_string()) return get_item(v, attribute);
    Value cur = v;
    size_t pos = 0;
    const std::string& path = attribute.str();
    while (true) {
        const size_t dot = path.find('.', pos);
        const std::string part = path.substr(pos, dot == std::string::npos ? std::string::npos : dot - pos);
        if (cur.is_undefined()) return cur;
        cur = !part.empty() && std::all_of(part.begin(), part.end(), ::isdigit)
                  ? get_item(cur, Value(static_cast<int64_t>(std::stoll(part))))
                  : get_item(cur, Value(part));
        if (dot == std::string::npos) return cur;
        pos = dot + 1;
    }
}

std::string str_of(const Value& v) { return v.to_str(); }

Value f_tojson(Interpreter&, const Value& v, CallArgs& a) {
    JsonDumpOptions o;
    const Value* indent = find_arg(a, 0, "indent");
    if (indent && !indent->is_none()) {
        if (!indent->is_int()) throw TemplateTypeError("tojson: indent must be an integer");
        o.indent = static_cast<int>(std::clamp<int64_t>(indent->as_int(), 0, 64));
        o.item_separator = ",";
    }
    if (const Value* sep = find_arg(a, 99, "separators"); sep && sep->is_list() && sep->list().size() == 2) {
        o.item_separator = sep->list()[0].to_str();
        o.key_separator = sep->list()[1].to_str();
    }
    if (const Value* sk = find_arg(a, 99, "sort_keys")) o.sort_keys = sk->truthy();
    require_defined(v);
    return Value(dumps(v, o));
}

Value f_trim(Interpreter&, const Value& v, CallArgs& a) {
    const Value* chars = find_arg(a, 0, "chars");
    const std::string* c = chars && chars->is_string() ? &chars->str() : nullptr;
    return Value(text::strip(str_of(v), c, true, true));
}

Value f_join(Interpreter&, const Value& v, CallArgs& a) {
    const std::string sep = arg_or(a, 0, "d", Value("")).to_str();
    const Value* attr = find_arg(a, 1, "attribute");
    std::string out;
    bool first = true;
    for (const auto& x : iterate(v)) {
        if (!first) out += sep;
        first = false;
        out += (attr ? attribute_of(x, *attr) : x).to_str();
    }
    return Value(std::move(out));
}

Value f_length(Interpreter&, const Value& v, CallArgs&) {
    switch (v.kind()) {
        case Value::Kind::Undefined: return Value(int64_t{0});
        case Value::Kind::String: return Value(static_cast<int64_t>(text::length(v.str())));
        case Value::Kind::List: return Value(static_cast<int64_t>(v.list().size()));
        case Value::Kind::Dict: return Value(static_cast<int64_t>(v.dict().items.size()));
        default: throw TemplateTypeError(fmt::format("object of type '{}' has no len()", v.type_name()));
    }
}

Value f_items(Interpreter&, const Value& v, CallArgs&) {
    if (v.is_undefined()) return Value(List{});
    if (!v.is_dict())
        throw TemplateTypeError(fmt::format("can only get item pairs from a mapping, not {}", v.type_name()));
    List l;
    for (const auto& [k, x] : v.dict().items) l.push_back(Value::tuple(List{Value(k), x}));
    return Value(std::move(l));
}

// select / reject / selectattr / rejectattr share one body.
Value select_impl(Interpreter& in, const Value& v, CallArgs& a, bool by_attr, bool keep_if) {
    size_t next = 0;
    Value attr;
    if (by_attr) {
        const Value* at = find_arg(a, next++, "attribute");
        if (!at) throw TemplateTypeError("selectattr/rejectattr need an attribute name");
        attr = *at;
    }
    const Value* test = next < a.positional.size() ? &a.positional[next] : nullptr;
    CallArgs test_args;
    for (size_t i = next + 1; i < a.positional.size(); ++i) test_args.positional.push_back(a.positional[i]);
    List out;
    for (const auto& x : iterate(v)) {
        in.count_iteration();
        const Value subject = by_attr ? attribute_of(x, attr) : x;
        bool ok;
        if (test) {
            CallArgs ta = test_args;
            ok = in.test(test->to_str(), subject, ta);
        } else {
            ok = subject.truthy();
        }
        if (ok == keep_if) out.push_back(x);
    }
    return Value(std::move(out));
}

Value f_selectattr(Interpreter& in, const Value& v, CallArgs& a) { return select_impl(in, v, a, true, true); }
Value f_rejectattr(Interpreter& in, const Value& v, CallArgs& a) { return select_impl(in, v, a, true, false); }
Value f_select(Interpreter& in, const Value& v, CallArgs& a) { return select_impl(in, v, a, false, true); }
Value f_reject(Interpreter& in, const Value& v, CallArgs& a) { return select_impl(in, v, a, false, false); }

Value f_map(Interpreter& in, const Value& v, CallArgs& a) {
    List out;
    const Value* attr = find_arg(a, 99, "attribute");
    if (attr) {
        const Value* dflt = find_arg(a, 99, "default");
        for (const auto& x : iterate(v)) {
            in.count_iteration();
            Value r = attribute_of(x, *attr);
            out.push_back(r.is_undefined() && dflt ? *dflt : r);
        }
        return Value(std::move(out));
    }
    if (a.positional.empty()) throw TemplateTypeError("map() needs a filter name or attribute=");
    const std::string name = a.positional[0].to_str();
    CallArgs rest;
    rest.positional.assign(a.positional.begin() + 1, a.positional.end());
    rest.named = a.named;
    for (const auto& x : iterate(v)) {
        in.count_iteration();
        CallArgs fa = rest;
        out.push_back(in.filter(name, x, fa));
    }
    return Value(std::move(out));
}

Value f_default(Interpreter&, const Value& v, CallArgs& a) {
    Value dflt = arg_or(a, 0, "default_value", Value(""));
    const bool boolean = arg_or(a, 1, "boolean", Value(false)).truthy();
    if (v.is_undefined() || (boolean && !v.truthy())) return dflt;
    return v;
}

Value f_upper(Interpreter&, const Value& v, CallArgs&) { return Value(text::upper(str_of(v))); }
Value f_lower(Interpreter&, const Value& v, CallArgs&) { return Value(text::lower(str_of(v))); }
Value f_capitalize(Interpreter&, const Value& v, CallArgs&) { return Value(text::capitalize(str_of(v))); }
// jinja2's title filter (not str.title): a word starts after whitespace, '-', or an opening bracket.
Value f_title(Interpreter&, const Value& v, CallArgs&) {
    const auto cps = text::decode(str_of(v));
    std::string out;
    bool start = true;
    for (char32_t c : cps) {
        const bool sep = text::is_space(c) || c == '-' || c == '(' || c == '{' || c == '[' || c == '<';
        const std::string one = text::encode({c});
        out += sep ? one : start ? text::upper(one) : text::lower(one);
        start = sep;
    }
    return Value(std::move(out));
}
Value f_string(Interpreter&, const Value& v, CallArgs&) { return Value(str_of(v)); }
Value f_safe(Interpreter&, const Value& v, CallArgs&) { return v; }

Value f_replace(Interpreter&, const Value& v, CallArgs& a) {
    const Value* old = find_arg(a, 0, "old");
    const Value* with = find_arg(a, 1, "new");
    if (!old || !with) throw TemplateTypeError("replace() needs the old and new strings");
    return Value(text::replace(str_of(v), old->to_str(), with->to_str(), int_arg(a, 2, "count", -1)));
}

Value f_indent(Interpreter&, const Value& v, CallArgs& a) {
    const Value width = arg_or(a, 0, "width", Value(int64_t{4}));
    const bool first = arg_or(a, 1, "first", Value(false)).truthy();
    const bool blank = arg_or(a, 2, "blank", Value(false)).truthy();
    std::string ind;
    if (width.is_string()) {
        ind = width.str();
    } else {
        const int64_t w = width.is_int() ? width.as_int() : 4;
        ind.assign(static_cast<size_t>(std::clamp<int64_t>(w, 0, 1024)), ' ');
    }
    // jinja2 appends a newline before splitting, so a trailing newline yields no extra line.
    const std::vector<std::string> lines = text::splitlines(str_of(v) + "\n");
    std::string rv;
    if (blank) {
        for (size_t i = 0; i < lines.size(); ++i) rv += (i ? "\n" + ind : "") + lines[i];
    } else {
        for (size_t i = 0; i < lines.size(); ++i) {
            if (i == 0) {
                rv = lines[0];
            } else {
                rv += "\n";
                if (!lines[i].empty()) rv += ind;
                rv += lines[i];
            }
        }
    }
    if (first) rv = ind + rv;
    return Value(std::move(rv));
}

Value f_first(Interpreter&, const Value& v, CallArgs&) {
    const List l = iterate(v);
    return l.empty() ? Value::undefined("No first item, sequence was empty.") : l.front();
}

Value f_last(Interpreter&, const Value& v, CallArgs&) {
    const List l = iterate(v);
    return l.empty() ? Value::undefined("No last item, sequence was empty.") : l.back();
}

Value f_list(Interpreter&, const Value& v, CallArgs&) { return Value(iterate(v)); }

Value f_unique(Interpreter&, const Value& v, CallArgs& a) {
    const bool case_sensitive = arg_or(a, 0, "case_sensitive", Value(false)).truthy();
    const Value* attr = find_arg(a, 1, "attribute");
    List out, seen;
    for (const auto& x : iterate(v)) {
        Value key = attr ? attribute_of(x, *attr) : x;
        if (!case_sensitive && key.is_string()) key = Value(text::lower(key.str()));
        bool dup = false;
        for (const auto& s : seen)
            if (equals(s, key)) dup = true;
        if (dup) continue;
        seen.push_back(key);
        out.push_back(x);
    }
    return Value(std::move(out));
}

Value f_int(Interpreter&, const Value& v, CallArgs& a) {
    const int64_t dflt = int_arg(a, 0, "default", 0);
    if (v.is_int()) return v;
    if (v.is_bool()) return Value(int64_t{v.as_bool()});
    if (v.is_float()) {
        if (!std::isfinite(v.as_float())) return Value(dflt);
        return Value(static_cast<int64_t>(v.as_float()));
    }
    if (v.is_string()) {
        const std::string s = text::strip(v.str(), nullptr, true, true);
        try {
            size_t used = 0;
            const long long x = std::stoll(s, &used, 10);
            if (used == s.size()) return Value(static_cast<int64_t>(x));
            const double d = std::stod(s, &used);
            if (used == s.size() && std::isfinite(d)) return Value(static_cast<int64_t>(d));
        } catch (const std::exception&) {}
    }
    return Value(dflt);
}

Value f_float(Interpreter&, const Value& v, CallArgs& a) {
    Value dflt = arg_or(a, 0, "default", Value(0.0));
    if (v.is_number()) return Value(v.as_number());
    if (v.is_string()) {
        try {
            size_t used = 0;
            const std::string s = text::strip(v.str(), nullptr, true, true);
            const double d = std::stod(s, &used);
            if (used == s.size()) return Value(d);
        } catch (const std::exception&) {}
    }
    return dflt;
}

Value f_abs(Interpreter&, const Value& v, CallArgs&) {
    if (v.is_int()) {
        if (v.as_int() == INT64_MIN) throw RenderError("integer overflow");
        return Value(v.as_int() < 0 ? -v.as_int() : v.as_int());
    }
    if (v.is_float()) return Value(std::fabs(v.as_float()));
    throw TemplateTypeError(fmt::format("bad operand type for abs(): '{}'", v.type_name()));
}

Value f_round(Interpreter&, const Value& v, CallArgs& a) {
    if (!v.is_number()) throw TemplateTypeError("round() needs a number");
    const int64_t precision = int_arg(a, 0, "precision", 0);
    const std::string method = arg_or(a, 1, "method", Value("common")).to_str();
    const double scale = std::pow(10.0, static_cast<double>(precision));
    const double x = v.as_number() * scale;
    double r;
    if (method == "ceil")
        r = std::ceil(x);
    else if (method == "floor")
        r = std::floor(x);
    else
        r = std::nearbyint(x);  // Python's round(): half to even
    return Value(r / scale);
}

Value f_reverse(Interpreter&, const Value& v, CallArgs&) {
    if (v.is_string()) {
        auto cps = text::decode(v.str());
        std::reverse(cps.begin(), cps.end());
        return Value(text::encode(cps));
    }
    List l = iterate(v);
    std::reverse(l.begin(), l.end());
    return Value(std::move(l));
}

bool sort_less(const Value& a, const Value& b, bool case_sensitive) {
    if (!case_sensitive && a.is_string() && b.is_string()) return text::lower(a.str()) < text::lower(b.str());
    return less_than(a, b);
}

Value f_sort(Interpreter&, const Value& v, CallArgs& a) {
    const bool reverse = arg_or(a, 0, "reverse", Value(false)).truthy();
    const bool cs = arg_or(a, 1, "case_sensitive", Value(false)).truthy();
    const Value* attr = find_arg(a, 2, "attribute");
    List l = iterate(v);
    std::stable_sort(l.begin(), l.end(), [&](const Value& x, const Value& y) {
        const Value kx = attr ? attribute_of(x, *attr) : x;
        const Value ky = attr ? attribute_of(y, *attr) : y;
        return reverse ? sort_less(ky, kx, cs) : sort_less(kx, ky, cs);
    });
    return Value(std::move(l));
}

Value f_dictsort(Interpreter&, const Value& v, CallArgs& a) {
    if (!v.is_dict()) throw TemplateTypeError("dictsort needs a mapping");
    const bool cs = arg_or(a, 0, "case_sensitive", Value(false)).truthy();
    const bool by_value = arg_or(a, 1, "by", Value("key")).to_str() == "value";
    const bool reverse = arg_or(a, 2, "reverse", Value(false)).truthy();
    List l;
    for (const auto& [k, x] : v.dict().items) l.push_back(Value::tuple(List{Value(k), x}));
    std::stable_sort(l.begin(), l.end(), [&](const Value& x, const Value& y) {
        const Value& kx = x.list()[by_value ? 1 : 0];
        const Value& ky = y.list()[by_value ? 1 : 0];
        return reverse ? sort_less(ky, kx, cs) : sort_less(kx, ky, cs);
    });
    return Value(std::move(l));
}

Value f_sum(Interpreter&, const Value& v, CallArgs& a) {
    const Value* attr = find_arg(a, 0, "attribute");
    Value acc = arg_or(a, 1, "start", Value(int64_t{0}));
    for (const auto& x : iterate(v)) {
        const Value y = attr ? attribute_of(x, *attr) : x;
        if (!acc.is_number() || !y.is_number())
            throw TemplateTypeError(
                fmt::format("unsupported operand type(s) for +: '{}' and '{}'", acc.type_name(), y.type_name()));
        if (acc.is_float() || y.is_float()) {
            acc = Value(acc.as_number() + y.as_number());
        } else {
            int64_t r = 0;
            if (__builtin_add_overflow(acc.is_bool() ? int64_t{acc.as_bool()} : acc.as_int(),
                                       y.is_bool() ? int64_t{y.as_bool()} : y.as_int(), &r))
                throw RenderError("integer overflow in sum()");
            acc = Value(r);
        }
    }
    return acc;
}

Value minmax(const Value& v, CallArgs& a, bool want_max) {
    const bool cs = arg_or(a, 0, "case_sensitive", Value(false)).truthy();
    const Value* attr = find_arg(a, 1, "attribute");
    const List l = iterate(v);
    if (l.empty()) return Value::undefined("No aggregated item, sequence was empty.");
    size_t best = 0;
    for (size_t i = 1; i < l.size(); ++i) {
        const Value ki = attr ? attribute_of(l[i], *attr) : l[i];
        const Value kb = attr ? attribute_of(l[best], *attr) : l[best];
        if (want_max ? sort_less(kb, ki, cs) : sort_less(ki, kb, cs)) best = i;
    }
    return l[best];
}

Value f_min(Interpreter&, const Value& v, CallArgs& a) { return minmax(v, a, false); }
Value f_max(Interpreter&, const Value& v, CallArgs& a) { return minmax(v, a, true); }

// Runs of word characters (Python's \w: letters, digits, underscore).
Value f_wordcount(Interpreter&, const Value& v, CallArgs&) {
    int64_t n = 0;
    bool in_word = false;
    for (char32_t c : text::decode(str_of(v))) {
        const bool w = c == '_' || text::is_alnum(c);
        if (w && !in_word) ++n;
        in_word = w;
    }
    return Value(n);
}

Value f_center(Interpreter&, const Value& v, CallArgs& a) {
    const std::string s = str_of(v);
    const int64_t width = std::min<int64_t>(int_arg(a, 0, "width", 80), 1 << 20);
    const auto len = static_cast<int64_t>(text::length(s));
    if (width <= len) return Value(s);
    const int64_t total = width - len;
    const int64_t left = total / 2 + (total & width & 1);  // Python's str.center
    return Value(std::string(static_cast<size_t>(left), ' ') + s + std::string(static_cast<size_t>(total - left), ' '));
}

// What Jinja's escape filter (markupsafe) writes for the five HTML-special characters.
constexpr text::CharEscape kHtmlEscapes[] = {
    {'&', "&amp;"}, {'<', "&lt;"}, {'>', "&gt;"}, {'"', "&#34;"}, {'\'', "&#39;"}};

Value f_escape(Interpreter&, const Value& v, CallArgs&) {
    std::string out;
    for (char c : str_of(v)) {
        if (const std::string_view* esc = text::find_escape(kHtmlEscapes, c))
            out += *esc;
        else
            out += c;
    }
    return Value(std::move(out));
}

Value f_attr(Interpreter&, const Value& v, CallArgs& a) {
    const Value* name = find_arg(a, 0, "name");
    if (!name || !name->is_string()) throw TemplateTypeError("attr() needs an attribute name");
    return get_attr(v, name->str());
}

Value f_batch(Interpreter& in, const Value& v, CallArgs& a) {
    const int64_t n = int_arg(a, 0, "linecount", 1);
    if (n <= 0) throw RenderError("batch(): the size must be positive");
    const Value* fill = find_arg(a, 1, "fill_with");
    List out, cur;
    for (const auto& x : iterate(v)) {
        in.count_iteration();
        cur.push_back(x);
        if (static_cast<int64_t>(cur.size()) == n) {
            out.emplace_back(std::move(cur));
            cur.clear();
        }
    }
    if (!cur.empty()) {
        if (fill)
            while (static_cast<int64_t>(cur.size()) < n) cur.push_back(*fill);
        out.emplace_back(std::move(cur));
    }
    return Value(std::move(out));
}

Value f_format(Interpreter&, const Value& v, CallArgs& a) {
    // "%s, %s" | format(a, b): Python's % formatting.
    std::string out;
    const std::string f = str_of(v);
    size_t next = 0;
    for (size_t i = 0; i < f.size(); ++i) {
        if (f[i] != '%') {
            out += f[i];
            continue;
        }
        if (++i >= f.size()) throw RenderError("format(): incomplete format");
        if (f[i] == '%') {
            out += '%';
            continue;
        }
        if (next >= a.positional.size()) throw TemplateTypeError("not enough arguments for format string");
        const Value& x = a.positional[next++];
        if (f[i] == 'r')
            out += x.repr();
        else if (f[i] == 'd' || f[i] == 'i')
            out += std::to_string(x.is_float() ? static_cast<int64_t>(x.as_float()) : x.is_int() ? x.as_int() : 0);
        else
            out += x.to_str();
    }
    return Value(std::move(out));
}

const std::unordered_map<std::string_view, FilterFn>& table() {
    static const std::unordered_map<std::string_view, FilterFn> t = {
        {"tojson", f_tojson},
        {"trim", f_trim},
        {"join", f_join},
        {"length", f_length},
        {"count", f_length},
        {"items", f_items},
        {"selectattr", f_selectattr},
        {"rejectattr", f_rejectattr},
        {"select", f_select},
        {"reject", f_reject},
        {"map", f_map},
        {"default", f_default},
        {"d", f_default},
        {"upper", f_upper},
        {"lower", f_lower},
        {"capitalize", f_capitalize},
        {"title", f_title},
        {"string", f_string},
        {"safe", f_safe},
        {"replace", f_replace},
        {"indent", f_indent},
        {"first", f_first},
        {"last", f_last},
        {"list", f_list},
        {"unique", f_unique},
        {"int", f_int},
        {"float", f_float},
        {"abs", f_abs},
        {"round", f_round},
        {"reverse", f_reverse},
        {"sort", f_sort},
        {"dictsort", f_dictsort},
        {"sum", f_sum},
        {"min", f_min},
        {"max", f_max},
        {"wordcount", f_wordcount},
        {"center", f_center},
        {"escape", f_escape},
        {"e", f_escape},
        {"forceescape", f_escape},
        {"attr", f_attr},
        {"batch", f_batch},
        {"format", f_format},
    };
    return t;
}

}  // namespace

Value apply_filter(Interpreter& in, std::string_view name, const Value& operand, CallArgs& args) {
    const auto& t = table();
    const auto it = t.find(name);
    if (it == t.end()) throw RenderError(fmt::format("no filter named '{}'", name));
    return it->second(in, operand, args);
}

}  // namespace orcd::tmpl
