// The global functions jinja2's sandbox gives chat templates, as transformers sets them up.
#include <ctime>
#include <fmt/format.h>
#include <memory>

#include "template/builtins.h"

namespace orcd::tmpl {

namespace {

Value range_fn(Interpreter& in, CallArgs& a) {
    if (a.positional.empty() || a.positional.size() > 3) throw TemplateTypeError("range expected 1 to 3 arguments");
    int64_t start = 0, stop, step = 1;
    auto get = [](const Value& v) {
        if (v.is_int()) return v.as_int();
        if (v.is_bool()) return static_cast<int64_t>(v.as_bool());
        throw TemplateTypeError(fmt::format("'{}' object cannot be interpreted as an integer", v.type_name()));
    };
    if (a.positional.size() == 1) {
        stop = get(a.positional[0]);
    } else {
        start = get(a.positional[0]);
        stop = get(a.positional[1]);
        if (a.positional.size() == 3) step = get(a.positional[2]);
    }
    if (step == 0) throw RenderError("range() arg 3 must not be zero");
    // Count without overflow: work in long double-free unsigned arithmetic.
    __int128 n = 0;
    if (step > 0 && stop > start) n = (static_cast<__int128>(stop) - start + step - 1) / step;
    if (step < 0 && stop < start) n = (static_cast<__int128>(start) - stop - step - 1) / -step;
    if (n > in.options().limits.max_range)
        throw RenderError(
            fmt::format("range too big: the sandbox allows at most {} items", in.options().limits.max_range));
    List l;
    l.reserve(static_cast<size_t>(n));
    for (int64_t i = 0; i < static_cast<int64_t>(n); ++i) l.emplace_back(start + i * step);
    return Value(std::move(l));
}

Value strftime_fn(const std::string& date, CallArgs& a) {
    const Value* f = find_arg(a, 0, "format");
    if (!f || !f->is_string()) throw TemplateTypeError("strftime_now() needs a format string");
    std::tm tm{};
    if (!date.empty()) {
        int y = 0, m = 0, d = 0;
        if (std::sscanf(date.c_str(), "%d-%d-%d", &y, &m, &d) != 3)
            throw RenderError(fmt::format("bad date '{}', expected YYYY-MM-DD", date));
        tm.tm_year = y - 1900;
        tm.tm_mon = m - 1;
        tm.tm_mday = d;
        const std::time_t t = timegm(&tm);  // normalises and fills in the weekday and day of the year
        gmtime_r(&t, &tm);
    } else {
        const std::time_t t = std::time(nullptr);
        localtime_r(&t, &tm);
    }
    if (f->str().size() > 256) throw RenderError("strftime_now(): format longer than 256 bytes");
    char buf[4096];
    const size_t n = std::strftime(buf, sizeof buf, f->str().c_str(), &tm);
    return Value(std::string(buf, n));
}

}  // namespace

Dict make_globals(Interpreter& in) {
    Dict g;
    g.set("range", Value(Callable{"range", [&in](CallArgs& a) { return range_fn(in, a); }}));
    g.set("dict", Value(Callable{"dict", [](CallArgs& a) {
                                     Dict d;
                                     for (const auto& p : a.positional) {
                                         if (!p.is_dict()) throw TemplateTypeError("dict() takes keyword arguments");
                                         for (const auto& [k, v] : p.dict().items) d.set(k, v);
                                     }
                                     for (auto& [k, v] : a.named) d.set(k, v);
                                     return Value(std::move(d));
                                 }}));
    g.set("namespace", Value(Callable{"namespace", [](CallArgs& a) {
                                          auto ns = std::make_shared<Namespace>();
                                          for (const auto& p : a.positional)
                                              if (p.is_dict())
                                                  for (const auto& [k, v] : p.dict().items) ns->attrs.set(k, v);
                                          for (auto& [k, v] : a.named) ns->attrs.set(k, v);
                                          return Value(std::move(ns));
                                      }}));
    g.set("raise_exception",
          Value(Callable{"raise_exception", [](CallArgs& a) -> Value {
                             const Value* m = find_arg(a, 0, "message");
                             throw RenderError(m ? m->to_str() : std::string("raise_exception called"));
                         }}));
    const std::string date = in.options().date;
    g.set("strftime_now", Value(Callable{"strftime_now", [date](CallArgs& a) { return strftime_fn(date, a); }}));
    return g;
}

}  // namespace orcd::tmpl
