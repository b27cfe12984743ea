#pragma once
// Renders a parsed template. Everything a template can reach is its context and the few globals jinja2's sandbox
// gives chat templates (range, dict, namespace, raise_exception, strftime_now); nothing touches files, the
// environment or the process. Loop iterations, nesting depth, output and value sizes, and wall time are bounded.
#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "template/ast.h"
#include "template/value.h"

namespace orcd::tmpl {

struct RenderLimits {
    size_t max_output_bytes = size_t{16} << 20;  // the rendered text
    size_t max_value_bytes = size_t{16} << 20;   // any string (or list elements) computed on the way
    uint64_t max_loop_iterations = 1'000'000;    // over the whole render, all loops together
    int64_t max_range = 100'000;                 // range(n), as jinja2's sandbox allows
    int max_depth = 400;                         // statement/expression evaluation nesting, macros included
    int max_call_depth = 50;                     // nested macro calls (recursion)
    std::chrono::milliseconds max_time{2000};
};

struct RenderOptions {
    RenderLimits limits;
    // The day strftime_now reports ("YYYY-MM-DD", at 00:00:00); empty: the local time now.
    std::string date;
};

// An error raised while rendering, without position; the interpreter adds the template name and line.
struct RenderError : std::runtime_error {
    using std::runtime_error::runtime_error;
};

class Interpreter {
public:
    Interpreter(std::string_view template_name, const RenderOptions& options);

    // Renders `body` with `context` (its members become variables, in order). Throws Error(ChatTemplate) with the
    // template name and line.
    std::string render(const Body& body, const Dict& context);

    // For the builtins (filters, tests, methods):
    Value call(const Value& callee, CallArgs& args);
    Value filter(std::string_view name, const Value& operand, CallArgs& args);
    bool test(std::string_view name, const Value& operand, CallArgs& args);
    // Throws when a computed value exceeds the size limits.
    void check_size(const Value& v) const;
    void count_iteration();
    const RenderOptions& options() const { return options_; }

private:
    enum class Flow { Normal, Break, Continue };
    using Frame = std::unordered_map<std::string, Value>;

    struct DepthGuard {
        Interpreter& in;
        explicit DepthGuard(Interpreter& i);
        ~DepthGuard() { --in.depth_; }
    };

    Flow exec_body(const Body& body, std::string& out);
    Flow exec(const Node& n, std::string& out);
    void exec_for(const Node& n, std::string& out);
    void exec_set(const Node& n);
    Value make_macro(const Node& n, const Node* caller_of = nullptr);
    Value call_macro(const Node& n, CallArgs& args, const Value& caller, const Frame& closure);

    Value eval(const Expr& e);
    Value eval_binary(const Expr& e);
    Value eval_call(const Expr& e);
    void eval_args(const Expr& e, size_t first, CallArgs& args);
    // The rendered body of `{% set x | f | g %}` or `{% filter f | g %}` as a value, through its filter chain:
    // n.expr is the outermost filter, whose operand (args[0]) is the next one in, down to a null operand; the filters
    // apply from the inside out.
    Value filtered_block(const Node& n);
    Value lookup(const std::string& name) const;
    void assign(const std::string& name, Value v);
    void append_output(std::string& out, std::string_view s) const;
    void check_time();

    std::string name_;
    RenderOptions options_;
    std::vector<Frame> frames_;  // frames_[0]: globals and context; [1]: the template's top level
    size_t frame_base_ = 2;      // lookups see frames_[frame_base_..] then frames 1 and 0 (macro isolation)
    int depth_ = 0;
    int call_depth_ = 0;
    int loop_depth_ = 0;
    uint64_t iterations_ = 0;
    int line_ = 0;
    std::chrono::steady_clock::time_point deadline_;
};

}  // namespace orcd::tmpl
