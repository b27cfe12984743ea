#pragma once
// The parsed template: expressions and statements as plain tagged structs. Children are owned by unique_ptr; the
// parser bounds the nesting depth, so walking the tree recursively is safe.
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "template/value.h"

namespace orcd::tmpl {

struct Expr;
using ExprPtr = std::unique_ptr<Expr>;

struct Expr {
    enum class Kind {
        Literal,      // value
        Name,         // name
        List,         // args
        Tuple,        // args
        Dict,         // args: key, value, key, value, ...
        Attr,         // args[0].name
        Item,         // args[0][args[1]]
        Slice,        // args[0][args[1]:args[2]:args[3]] (null parts omitted)
        Call,         // args[0](args[1..], kwargs)
        Filter,       // args[0] | name(args[1..], kwargs)
        Test,         // args[0] is [not] name(args[1..], kwargs)
        Unary,        // name: "-", "+", "not"
        Binary,       // args[0] name args[1]: + - * / // % ** ~ == != < > <= >= in "not in" and or
        Conditional,  // args[1] if args[0] else args[2] (args[2] may be null)
    };
    Kind kind;
    int line = 0;
    Value value;
    std::string name;
    std::vector<ExprPtr> args;
    std::vector<std::pair<std::string, ExprPtr>> kwargs;
    bool negated = false;  // Test: `is not`
};

struct Node;
using NodePtr = std::unique_ptr<Node>;
using Body = std::vector<NodePtr>;

struct Node {
    enum class Kind {
        Text,         // text
        Output,       // {{ expr }}
        If,           // conditions[i] -> bodies[i]; else_body
        For,          // for targets in expr [if cond]: body; else_body
        Set,          // set targets = expr, or set target_obj.attr = expr
        SetBlock,     // set targets: body rendered
        Macro,        // macro name(params): body
        CallBlock,    // call[(params)] expr: body (the body is the `caller` macro)
        FilterBlock,  // filter expr (a Filter chain applied to the body's output; its innermost arg is null)
        Break,
        Continue,
        Generation,  // generation: body (rendered unchanged)
    };
    Kind kind;
    int line = 0;
    std::string text;
    ExprPtr expr;
    ExprPtr cond;
    std::vector<std::string> targets;
    std::string attr;                                     // Set on a namespace: `set ns.attr = ...`
    std::vector<std::pair<std::string, ExprPtr>> params;  // Macro/CallBlock parameters with their defaults
    std::vector<ExprPtr> conditions;
    std::vector<Body> bodies;
    Body body;
    Body else_body;
};

}  // namespace orcd::tmpl
