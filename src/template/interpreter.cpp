#include "template/interpreter.h"

#include <cmath>
#include <fmt/format.h>

#include "common/error.h"
#include "template/builtins.h"
#include "template/text.h"

namespace orcd::tmpl {

namespace {

// Python's integer arithmetic has no overflow; ours refuses instead of wrapping.
int64_t checked(bool overflow, int64_t v) {  // callers compute `overflow` first: argument order is unspecified
    if (overflow) throw RenderError("integer overflow (the result does not fit in 64 bits)");
    return v;
}

int64_t floor_div(int64_t a, int64_t b) {
    if (b == 0) throw RenderError("integer division or modulo by zero");
    if (a == INT64_MIN && b == -1) throw RenderError("integer overflow (the result does not fit in 64 bits)");
    int64_t q = a / b;
    if ((a % b != 0) && ((a < 0) != (b < 0))) --q;
    return q;
}

int64_t py_mod(int64_t a, int64_t b) {
    if (b == 0) throw RenderError("integer division or modulo by zero");
    if (b == -1) return 0;
    int64_t r = a % b;
    if (r != 0 && ((r < 0) != (b < 0))) r += b;
    return r;
}

[[noreturn]] void unsupported(std::string_view op, const Value& a, const Value& b) {
    throw TemplateTypeError(
        fmt::format("unsupported operand type(s) for {}: '{}' and '{}'", op, a.type_name(), b.type_name()));
}

int64_t int_of(const Value& v) { return v.is_bool() ? (v.as_bool() ? 1 : 0) : v.as_int(); }

// Python's `%` formatting of a string with %s, %d, %i, %r, %f and %%; `args` is a tuple or one value.
std::string percent_format(const std::string& fmtstr, const Value& args) {
    List items = args.is_list() ? args.list() : List{args};
    size_t next = 0;
    std::string out;
    for (size_t i = 0; i < fmtstr.size(); ++i) {
        if (fmtstr[i] != '%') {
            out += fmtstr[i];
            continue;
        }
        if (++i >= fmtstr.size()) throw RenderError("incomplete format");
        const char c = fmtstr[i];
        if (c == '%') {
            out += '%';
            continue;
        }
        if (next >= items.size()) throw TemplateTypeError("not enough arguments for format string");
        const Value& v = items[next++];
        if (c == 's') {
            out += v.to_str();
        } else if (c == 'r') {
            out += v.repr();
        } else if (c == 'd' || c == 'i') {
            if (!v.is_number())
                throw TemplateTypeError(fmt::format("%{} format: a real number is required, not {}", c, v.type_name()));
            out += std::to_string(v.is_float() ? static_cast<int64_t>(v.as_float()) : int_of(v));
        } else if (c == 'f') {
            if (!v.is_number()) throw TemplateTypeError("must be real number, not " + std::string(v.type_name()));
            out += fmt::format("{:.6f}", v.as_number());
        } else {
            throw RenderError(fmt::format("unsupported format character '{}'", c));
        }
    }
    if (next < items.size()) throw TemplateTypeError("not all arguments converted during string formatting");
    return out;
}

}  // namespace

Interpreter::DepthGuard::DepthGuard(Interpreter& i) : in(i) {
    if (++in.depth_ > in.options_.limits.max_depth)
        throw RenderError(
            fmt::format("template nested or recursing too deeply (more than {} levels)", in.options_.limits.max_depth));
}

Interpreter::Interpreter(std::string_view template_name, const RenderOptions& options)
    : name_(template_name), options_(options) {}

std::string Interpreter::render(const Body& body, const Dict& context) {
    deadline_ = std::chrono::steady_clock::now() + options_.limits.max_time;
    frames_.clear();
    frames_.emplace_back();
    for (auto& [k, v] : make_globals(*this).items) frames_[0][k] = v;
    for (const auto& [k, v] : context.items) frames_[0][k] = v;
    frames_.emplace_back();
    frame_base_ = 1;
    std::string out;
    try {
        exec_body(body, out);
    } catch (const Error&) {
        throw;
    } catch (const std::exception& e) {
        throw Error(ErrorCode::ChatTemplate, fmt::format("template {} line {}: {}", name_, line_, e.what()));
    }
    return out;
}

void Interpreter::check_time() {
    if (std::chrono::steady_clock::now() > deadline_)
        throw RenderError(
            fmt::format("rendering took longer than the limit of {} ms", options_.limits.max_time.count()));
}

void Interpreter::count_iteration() {
    if (++iterations_ > options_.limits.max_loop_iterations)
        throw RenderError(fmt::format("more than {} loop iterations", options_.limits.max_loop_iterations));
    if ((iterations_ & 255) == 0) check_time();
}

void Interpreter::check_size(const Value& v) const {
    if (v.is_string() && v.str().size() > options_.limits.max_value_bytes)
        throw RenderError(fmt::format("a string grew past the limit of {} bytes", options_.limits.max_value_bytes));
    if (v.is_list() && v.list().size() > options_.limits.max_value_bytes / 8)
        throw RenderError(fmt::format("a list grew past the limit of {} items", options_.limits.max_value_bytes / 8));
}

void Interpreter::append_output(std::string& out, std::string_view s) const {
    if (out.size() + s.size() > options_.limits.max_output_bytes)
        throw RenderError(fmt::format("output exceeds the limit of {} bytes", options_.limits.max_output_bytes));
    out.append(s);
}

Value Interpreter::lookup(const std::string& name) const {
    for (size_t i = frames_.size(); i-- > frame_base_;) {
        auto it = frames_[i].find(name);
        if (it != frames_[i].end()) return it->second;
    }
    for (size_t i : {size_t{1}, size_t{0}}) {
        if (i >= frame_base_) continue;  // already searched
        auto it = frames_[i].find(name);
        if (it != frames_[i].end()) return it->second;
    }
    return Value::undefined(name);
}

void Interpreter::assign(const std::string& name, Value v) { frames_.back()[name] = std::move(v); }

Interpreter::Flow Interpreter::exec_body(const Body& body, std::string& out) {
    for (const auto& n : body) {
        const Flow f = exec(*n, out);
        if (f != Flow::Normal) return f;
    }
    return Flow::Normal;
}

Interpreter::Flow Interpreter::exec(const Node& n, std::string& out) {
    DepthGuard guard(*this);
    line_ = n.line;
    switch (n.kind) {
        case Node::Kind::Text: append_output(out, n.text); break;
        case Node::Kind::Output: {
            const Value v = eval(*n.expr);
            append_output(out, v.to_str());
            break;
        }
        case Node::Kind::If:
            for (size_t i = 0; i < n.conditions.size(); ++i) {
                line_ = n.conditions[i]->line;
                if (eval(*n.conditions[i]).truthy()) return exec_body(n.bodies[i], out);
            }
            return exec_body(n.else_body, out);
        case Node::Kind::For: exec_for(n, out); break;
        case Node::Kind::Set: exec_set(n); break;
        case Node::Kind::SetBlock: {
            assign(n.targets[0], filtered_block(n));
            break;
        }
        case Node::Kind::Macro: assign(n.text, make_macro(n)); break;
        case Node::Kind::CallBlock: {
            const Expr& call = *n.expr;
            const Value callee = eval(*call.args[0]);
            CallArgs args;
            eval_args(call, 1, args);
            const Value caller = make_macro(n, &n);
            if (callee.is_callable()) {
                // A macro called from a call block sees `caller`; pass it as a keyword the macro picks up.
                args.named.emplace_back("caller", caller);
            }
            const Value result = this->call(callee, args);
            append_output(out, result.to_str());
            break;
        }
        case Node::Kind::FilterBlock: {
            append_output(out, filtered_block(n).to_str());
            break;
        }
        case Node::Kind::Break:
        case Node::Kind::Continue:
            if (loop_depth_ == 0) throw RenderError("'break' or 'continue' outside of a loop");
            return n.kind == Node::Kind::Break ? Flow::Break : Flow::Continue;
        case Node::Kind::Generation: return exec_body(n.body, out);
    }
    return Flow::Normal;
}

void Interpreter::exec_for(const Node& n, std::string& out) {
    const Value seq = eval(*n.expr);
    List items = iterate(seq);
    if (n.cond) {
        // `for x in xs if cond`: filtered before loop.* counts.
        List kept;
        for (auto& item : items) {
            count_iteration();
            frames_.emplace_back();
            try {
                if (n.targets.size() == 1) {
                    assign(n.targets[0], item);
                } else {
                    const List parts = iterate(item);
                    for (size_t t = 0; t < n.targets.size() && t < parts.size(); ++t) assign(n.targets[t], parts[t]);
                }
                const bool keep = eval(*n.cond).truthy();
                frames_.pop_back();
                if (keep) kept.push_back(item);
            } catch (...) {
                frames_.pop_back();
                throw;
            }
        }
        items = std::move(kept);
    }
    if (items.empty()) {
        exec_body(n.else_body, out);
        return;
    }
    const auto len = static_cast<int64_t>(items.size());
    ++loop_depth_;
    struct LoopDepth {
        int& d;
        ~LoopDepth() { --d; }
    } loop_guard{loop_depth_};
    // jinja2 marks the loop as iterated at the end of a body that ran to completion, so a loop whose every pass
    // ended in `break` or `continue` still runs its else block; reproduced as is.
    bool completed_pass = false;
    for (int64_t i = 0; i < len; ++i) {
        count_iteration();
        Dict loop;
        loop.items.reserve(12);
        loop.set("index", Value(i + 1));
        loop.set("index0", Value(i));
        loop.set("revindex", Value(len - i));
        loop.set("revindex0", Value(len - i - 1));
        loop.set("first", Value(i == 0));
        loop.set("last", Value(i == len - 1));
        loop.set("length", Value(len));
        loop.set("depth", Value(1));
        loop.set("depth0", Value(0));
        loop.set("previtem", i > 0 ? items[static_cast<size_t>(i - 1)] : Value::undefined("previtem"));
        loop.set("nextitem", i + 1 < len ? items[static_cast<size_t>(i + 1)] : Value::undefined("nextitem"));
        loop.set("cycle", Value(Callable{"loop.cycle", [i](CallArgs& a) -> Value {
                                             if (a.positional.empty())
                                                 throw RenderError("loop.cycle() needs at least one value");
                                             return a.positional[static_cast<size_t>(i) % a.positional.size()];
                                         }}));
        frames_.emplace_back();
        Flow f;
        try {
            const Value& item = items[static_cast<size_t>(i)];
            if (n.targets.size() == 1) {
                assign(n.targets[0], item);
            } else {
                const List parts = iterate(item);
                if (parts.size() != n.targets.size())
                    throw RenderError(
                        fmt::format("cannot unpack {} values into {} loop variables", parts.size(), n.targets.size()));
                for (size_t t = 0; t < n.targets.size(); ++t) assign(n.targets[t], parts[t]);
            }
            assign("loop", Value(std::move(loop)));
            f = exec_body(n.body, out);
        } catch (...) {
            frames_.pop_back();
            throw;
        }
        frames_.pop_back();
        if (f == Flow::Normal) completed_pass = true;
        if (f == Flow::Break) break;
    }
    if (!completed_pass) exec_body(n.else_body, out);
}

void Interpreter::exec_set(const Node& n) {
    Value v = eval(*n.expr);
    if (!n.attr.empty()) {
        const Value target = lookup(n.targets[0]);
        if (!target.is_namespace())
            throw RenderError(fmt::format("cannot assign attribute '{}' on '{}': only a namespace() can be changed",
                                          n.attr, n.targets[0]));
        target.ns().attrs.set(n.attr, std::move(v));
        return;
    }
    if (n.targets.size() == 1) {
        assign(n.targets[0], std::move(v));
        return;
    }
    const List parts = iterate(v);
    if (parts.size() != n.targets.size())
        throw RenderError(fmt::format("cannot unpack {} values into {} names", parts.size(), n.targets.size()));
    for (size_t t = 0; t < n.targets.size(); ++t) assign(n.targets[t], parts[t]);
}

Value Interpreter::make_macro(const Node& n, const Node* caller_of) {
    const Node* node = &n;
    std::string name = caller_of ? "caller" : n.text;
    // A macro closes over the loop and macro variables visible where it is defined (the top level and the globals
    // stay live: a macro sees top-level names set after its definition, as in jinja2).
    auto closure = std::make_shared<Frame>();
    for (size_t i = std::max<size_t>(frame_base_, 2); i < frames_.size(); ++i)
        for (const auto& [k, v] : frames_[i]) (*closure)[k] = v;
    return Value(Callable{std::move(name), [this, node, closure](CallArgs& args) -> Value {
                              Value caller = Value::undefined("caller");
                              for (auto it = args.named.begin(); it != args.named.end(); ++it) {
                                  if (it->first == "caller") {
                                      bool declared = false;
                                      for (const auto& p : node->params)
                                          if (p.first == "caller") declared = true;
                                      if (!declared) {
                                          caller = it->second;
                                          args.named.erase(it);
                                      }
                                      break;
                                  }
                              }
                              return call_macro(*node, args, caller, *closure);
                          }});
}

Value Interpreter::call_macro(const Node& n, CallArgs& args, const Value& caller, const Frame& closure) {
    if (++call_depth_ > options_.limits.max_call_depth) {
        --call_depth_;
        throw RenderError(
            fmt::format("macro calls nested more than {} deep (runaway recursion?)", options_.limits.max_call_depth));
    }
    check_time();
    const size_t saved_base = frame_base_;
    const int saved_loop_depth = loop_depth_;
    const int saved_line = line_;
    frames_.push_back(closure);
    frame_base_ = frames_.size() - 1;
    frames_.emplace_back();
    loop_depth_ = 0;
    std::string out;
    try {
        Frame& f = frames_.back();
        std::vector<bool> set(n.params.size(), false);
        List varargs;
        for (size_t i = 0; i < args.positional.size(); ++i) {
            if (i < n.params.size()) {
                f[n.params[i].first] = args.positional[i];
                set[i] = true;
            } else {
                varargs.push_back(args.positional[i]);
            }
        }
        Dict kwargs;
        for (auto& [k, v] : args.named) {
            bool found = false;
            for (size_t i = 0; i < n.params.size(); ++i) {
                if (n.params[i].first == k) {
                    if (set[i]) throw RenderError(fmt::format("macro '{}' got multiple values for '{}'", n.text, k));
                    f[k] = v;
                    set[i] = true;
                    found = true;
                }
            }
            if (!found) kwargs.set(k, v);
        }
        for (size_t i = 0; i < n.params.size(); ++i) {
            if (set[i]) continue;
            f[n.params[i].first] = n.params[i].second ? eval(*n.params[i].second) : Value::undefined(n.params[i].first);
        }
        f["varargs"] = Value(std::move(varargs));
        f["kwargs"] = Value(std::move(kwargs));
        if (!caller.is_undefined()) f["caller"] = caller;
        exec_body(n.body, out);
    } catch (...) {
        frames_.resize(frame_base_);
        frame_base_ = saved_base;
        loop_depth_ = saved_loop_depth;
        --call_depth_;
        throw;
    }
    frames_.resize(frame_base_);
    frame_base_ = saved_base;
    loop_depth_ = saved_loop_depth;
    line_ = saved_line;
    --call_depth_;
    return Value(std::move(out));
}

Value Interpreter::call(const Value& callee, CallArgs& args) {
    if (callee.is_undefined()) {
        require_defined(callee);
    }
    if (!callee.is_callable()) throw TemplateTypeError(fmt::format("'{}' object is not callable", callee.type_name()));
    Value r = callee.callable().fn(args);
    check_size(r);
    return r;
}

Value Interpreter::filter(std::string_view name, const Value& operand, CallArgs& args) {
    Value r = apply_filter(*this, name, operand, args);
    check_size(r);
    return r;
}

bool Interpreter::test(std::string_view name, const Value& operand, CallArgs& args) {
    return apply_test(*this, name, operand, args);
}

Value Interpreter::filtered_block(const Node& n) {
    std::string captured;
    exec_body(n.body, captured);
    Value v(std::move(captured));
    std::vector<const Expr*> filters;
    for (const Expr* f = n.expr.get(); f; f = f->args[0].get()) filters.push_back(f);
    for (auto it = filters.rbegin(); it != filters.rend(); ++it) {
        CallArgs args;
        eval_args(**it, 1, args);
        v = filter((*it)->name, v, args);
    }
    return v;
}

void Interpreter::eval_args(const Expr& e, size_t first, CallArgs& args) {
    for (size_t i = first; i < e.args.size(); ++i) args.positional.push_back(eval(*e.args[i]));
    for (const auto& [k, v] : e.kwargs) args.named.emplace_back(k, eval(*v));
}

Value Interpreter::eval(const Expr& e) {
    DepthGuard guard(*this);
    line_ = e.line;
    switch (e.kind) {
        case Expr::Kind::Literal: return e.value;
        case Expr::Kind::Name: return lookup(e.name);
        case Expr::Kind::List:
        case Expr::Kind::Tuple: {
            List l;
            l.reserve(e.args.size());
            for (const auto& a : e.args) l.push_back(eval(*a));
            return e.kind == Expr::Kind::Tuple ? Value::tuple(std::move(l)) : Value(std::move(l));
        }
        case Expr::Kind::Dict: {
            Dict d;
            for (size_t i = 0; i + 1 < e.args.size(); i += 2) {
                const Value k = eval(*e.args[i]);
                if (!k.is_string())
                    throw RenderError(fmt::format("dict keys must be strings here, found {}", k.type_name()));
                d.set(k.str(), eval(*e.args[i + 1]));
            }
            return Value(std::move(d));
        }
        case Expr::Kind::Attr: return get_attr(eval(*e.args[0]), e.name);
        case Expr::Kind::Item: {
            const Value obj = eval(*e.args[0]);
            return get_item(obj, eval(*e.args[1]));
        }
        case Expr::Kind::Slice: {
            const Value obj = eval(*e.args[0]);
            std::optional<Value> parts[3];
            for (int i = 0; i < 3; ++i)
                if (e.args[static_cast<size_t>(i) + 1]) parts[i] = eval(*e.args[static_cast<size_t>(i) + 1]);
            return get_slice(obj, parts[0] ? &*parts[0] : nullptr, parts[1] ? &*parts[1] : nullptr,
                             parts[2] ? &*parts[2] : nullptr);
        }
        case Expr::Kind::Call: return eval_call(e);
        case Expr::Kind::Filter: {
            const Value operand = eval(*e.args[0]);
            CallArgs args;
            eval_args(e, 1, args);
            line_ = e.line;
            return filter(e.name, operand, args);
        }
        case Expr::Kind::Test: {
            const Value operand = eval(*e.args[0]);
            CallArgs args;
            eval_args(e, 1, args);
            line_ = e.line;
            const bool r = test(e.name, operand, args);
            return Value(e.negated ? !r : r);
        }
        case Expr::Kind::Unary: {
            const Value v = eval(*e.args[0]);
            if (e.name == "not") return Value(!v.truthy());
            require_defined(v);
            if (v.is_bool() || v.is_int()) {
                const int64_t x = int_of(v);
                if (e.name == "+") return Value(x);
                if (x == INT64_MIN) throw RenderError("integer overflow (the result does not fit in 64 bits)");
                return Value(-x);
            }
            if (v.is_float()) return Value(e.name == "-" ? -v.as_float() : v.as_float());
            throw TemplateTypeError(fmt::format("bad operand type for unary {}: '{}'", e.name, v.type_name()));
        }
        case Expr::Kind::Binary: return eval_binary(e);
        case Expr::Kind::Conditional:
            if (eval(*e.args[0]).truthy()) return eval(*e.args[1]);
            if (e.args[2]) return eval(*e.args[2]);
            return Value::undefined("conditional expression without else");
    }
    return Value::undefined("");
}

Value Interpreter::eval_call(const Expr& e) {
    const Value callee = eval(*e.args[0]);
    CallArgs args;
    eval_args(e, 1, args);
    line_ = e.line;
    return call(callee, args);
}

Value Interpreter::eval_binary(const Expr& e) {
    const std::string& op = e.name;
    if (op == "and") {
        Value l = eval(*e.args[0]);
        return l.truthy() ? eval(*e.args[1]) : l;
    }
    if (op == "or") {
        Value l = eval(*e.args[0]);
        return l.truthy() ? l : eval(*e.args[1]);
    }
    const Value a = eval(*e.args[0]);
    const Value b = eval(*e.args[1]);
    line_ = e.line;
    if (op == "~") {
        Value r(a.to_str() + b.to_str());
        check_size(r);
        return r;
    }
    if (op == "==") return Value(equals(a, b));
    if (op == "!=") return Value(!equals(a, b));
    if (op == "in" || op == "not in") {
        bool found = false;
        if (b.is_string()) {
            if (!a.is_string())
                throw TemplateTypeError(
                    fmt::format("'in <string>' requires string as left operand, not {}", a.type_name()));
            found = b.str().find(a.str()) != std::string::npos;
        } else if (b.is_dict()) {
            found = a.is_string() && b.dict().find(a.str()) != nullptr;
        } else if (b.is_list()) {
            for (const auto& x : b.list())
                if (equals(a, x)) found = true;
        } else if (b.is_undefined()) {
            found = false;  // jinja2's Undefined iterates as empty
        } else {
            throw TemplateTypeError(fmt::format("argument of type '{}' is not iterable", b.type_name()));
        }
        return Value(op == "in" ? found : !found);
    }
    require_defined(a);
    require_defined(b);
    if (op == "<" || op == ">" || op == "<=" || op == ">=") {
        if (op == "<") return Value(less_than(a, b));
        if (op == ">") return Value(less_than(b, a));
        if (op == "<=") return Value(!less_than(b, a));
        return Value(!less_than(a, b));
    }
    const bool nums = a.is_number() && b.is_number();
    const bool ints = nums && !a.is_float() && !b.is_float();
    Value r;
    if (op == "+") {
        if (ints) {
            int64_t v = 0;
            const bool overflow = __builtin_add_overflow(int_of(a), int_of(b), &v);
            r = Value(checked(overflow, v));
        } else if (nums) {
            r = Value(a.as_number() + b.as_number());
        } else if (a.is_string() && b.is_string()) {
            if (a.str().size() + b.str().size() > options_.limits.max_value_bytes)
                throw RenderError(
                    fmt::format("a string grew past the limit of {} bytes", options_.limits.max_value_bytes));
            r = Value(a.str() + b.str());
        } else if (a.is_list() && b.is_list()) {
            List l = a.list();
            l.insert(l.end(), b.list().begin(), b.list().end());
            r = Value(std::move(l));
        } else {
            if (a.is_string() || b.is_string())
                throw TemplateTypeError(fmt::format("can only concatenate str (not \"{}\") to str",
                                                    a.is_string() ? b.type_name() : a.type_name()));
            unsupported("+", a, b);
        }
    } else if (op == "-") {
        if (!nums) unsupported("-", a, b);
        if (ints) {
            int64_t v = 0;
            const bool overflow = __builtin_sub_overflow(int_of(a), int_of(b), &v);
            r = Value(checked(overflow, v));
        } else {
            r = Value(a.as_number() - b.as_number());
        }
    } else if (op == "*") {
        if (ints) {
            int64_t v = 0;
            const bool overflow = __builtin_mul_overflow(int_of(a), int_of(b), &v);
            r = Value(checked(overflow, v));
        } else if (nums) {
            r = Value(a.as_number() * b.as_number());
        } else if (((a.is_string() || a.is_list()) && (b.is_int() || b.is_bool())) ||
                   ((b.is_string() || b.is_list()) && (a.is_int() || a.is_bool()))) {
            const bool seq_first = a.is_string() || a.is_list();
            const Value& seq = seq_first ? a : b;
            const int64_t n = std::max<int64_t>(0, int_of(seq_first ? b : a));
            const size_t unit = seq.is_string() ? seq.str().size() : seq.list().size() * 8;
            if (n > 0 && unit > 0 && static_cast<uint64_t>(n) > options_.limits.max_value_bytes / unit)
                throw RenderError(fmt::format("a repeated value would exceed the limit of {} bytes",
                                              options_.limits.max_value_bytes));
            if (seq.is_string()) {
                std::string s;
                for (int64_t i = 0; i < n; ++i) s += seq.str();
                r = Value(std::move(s));
            } else {
                List l;
                for (int64_t i = 0; i < n; ++i) l.insert(l.end(), seq.list().begin(), seq.list().end());
                r = Value(std::move(l));
            }
        } else {
            unsupported("*", a, b);
        }
    } else if (op == "/") {
        if (!nums) unsupported("/", a, b);
        if (b.as_number() == 0.0) throw RenderError("division by zero");
        r = Value(a.as_number() / b.as_number());
    } else if (op == "//") {
        if (!nums) unsupported("//", a, b);
        if (ints) {
            r = Value(floor_div(int_of(a), int_of(b)));
        } else {
            if (b.as_number() == 0.0) throw RenderError("float floor division by zero");
            r = Value(std::floor(a.as_number() / b.as_number()));
        }
    } else if (op == "%") {
        if (a.is_string()) {
            r = Value(percent_format(a.str(), b));
        } else if (!nums) {
            unsupported("%", a, b);
        } else if (ints) {
            r = Value(py_mod(int_of(a), int_of(b)));
        } else {
            const double y = b.as_number();
            if (y == 0.0) throw RenderError("float modulo");
            double m = std::fmod(a.as_number(), y);
            if (m != 0.0 && ((m < 0) != (y < 0))) m += y;
            r = Value(m);
        }
    } else if (op == "**") {
        if (!nums) unsupported("**", a, b);
        if (ints && int_of(b) >= 0) {
            int64_t base = int_of(a), exp = int_of(b), acc = 1;
            while (exp > 0) {
                if (exp & 1 && __builtin_mul_overflow(acc, base, &acc)) checked(true, 0);
                exp >>= 1;
                if (exp > 0 && __builtin_mul_overflow(base, base, &base)) checked(true, 0);
            }
            r = Value(acc);
        } else {
            r = Value(std::pow(a.as_number(), b.as_number()));
        }
    } else {
        throw RenderError(fmt::format("unknown operator '{}'", op));
    }
    check_size(r);
    return r;
}

}  // namespace orcd::tmpl
