#include "template/parser.h"

#include <algorithm>
#include <charconv>
#include <fmt/format.h>
#include <initializer_list>

#include "common/error.h"

namespace orcd::tmpl {

namespace {

class Parser {
public:
    Parser(const std::vector<Token>& t, std::string_view name) : t_(t), name_(name) {}

    Body parse_template() {
        Body body = subparse({});
        if (cur().type != TokenType::Eof) fail(fmt::format("unexpected '{}'", cur().value));
        return body;
    }

private:
    // Counts nesting; the guard's destructor gives the level back.
    struct DepthGuard {
        Parser& p;
        explicit DepthGuard(Parser& parser) : p(parser) {
            if (++p.depth_ > kMaxParseDepth)
                p.fail(fmt::format("template nested too deeply (more than {} levels of blocks, brackets or operators)",
                                   kMaxParseDepth));
        }
        ~DepthGuard() { --p.depth_; }
    };

    [[noreturn]] void fail(std::string_view what) const {
        throw Error(ErrorCode::ChatTemplate, fmt::format("template {} line {}: {}", name_, cur().line, what));
    }

    const Token& cur() const { return t_[pos_]; }
    const Token& peek(size_t n = 1) const { return t_[std::min(pos_ + n, t_.size() - 1)]; }
    void advance() {
        if (pos_ + 1 < t_.size()) ++pos_;
    }
    bool is_op(std::string_view op) const { return cur().type == TokenType::Op && cur().value == op; }
    bool is_name(std::string_view n) const { return cur().type == TokenType::Name && cur().value == n; }
    bool accept_op(std::string_view op) {
        if (!is_op(op)) return false;
        advance();
        return true;
    }
    bool accept_name(std::string_view n) {
        if (!is_name(n)) return false;
        advance();
        return true;
    }
    static std::string describe(const Token& t) {
        switch (t.type) {
            case TokenType::Eof: return "end of template";
            case TokenType::BlockEnd: return "'%}'";
            case TokenType::VarEnd: return "'}}'";
            case TokenType::BlockBegin: return "'{%'";
            case TokenType::VarBegin: return "'{{'";
            case TokenType::Text: return "text";
            case TokenType::String: return "string literal";
            default: return "'" + t.value + "'";
        }
    }
    void expect_op(std::string_view op) {
        if (!accept_op(op)) fail(fmt::format("expected '{}', found {}", op, describe(cur())));
    }
    void expect_type(TokenType type, std::string_view what) {
        if (cur().type != type) fail(fmt::format("expected {}, found {}", what, describe(cur())));
        advance();
    }
    std::string expect_identifier() {
        if (cur().type != TokenType::Name) fail(fmt::format("expected a name, found {}", describe(cur())));
        std::string n = cur().value;
        advance();
        return n;
    }

    static ExprPtr make(Expr::Kind k, int line) {
        auto e = std::make_unique<Expr>();
        e->kind = k;
        e->line = line;
        return e;
    }

    // Statements until a block whose first name is in `ends` (left unconsumed) or the end of the tokens.
    Body subparse(std::initializer_list<std::string_view> ends) {
        DepthGuard guard(*this);
        Body body;
        while (cur().type != TokenType::Eof) {
            const Token& t = cur();
            if (t.type == TokenType::Text) {
                auto n = std::make_unique<Node>();
                n->kind = Node::Kind::Text;
                n->line = t.line;
                n->text = t.value;
                body.push_back(std::move(n));
                advance();
            } else if (t.type == TokenType::VarBegin) {
                advance();
                auto n = std::make_unique<Node>();
                n->kind = Node::Kind::Output;
                n->line = t.line;
                n->expr = parse_tuple(true);
                expect_type(TokenType::VarEnd, "'}}'");
                body.push_back(std::move(n));
            } else if (t.type == TokenType::BlockBegin) {
                const Token& kw = peek();
                if (kw.type == TokenType::Name)
                    for (std::string_view e : ends)
                        if (kw.value == e) {
                            advance();  // leave the keyword current
                            return body;
                        }
                advance();
                body.push_back(parse_statement());
            } else {
                fail(fmt::format("unexpected {}", describe(t)));
            }
        }
        if (ends.size() > 0) {
            std::string list;
            for (std::string_view e : ends) list += (list.empty() ? "'" : " or '") + std::string(e) + "'";
            fail(fmt::format("unexpected end of template, expected {}", list));
        }
        return body;
    }

    void end_block() { expect_type(TokenType::BlockEnd, "'%}'"); }

    NodePtr parse_statement() {
        const Token& kw = cur();
        if (kw.type != TokenType::Name) fail(fmt::format("expected a statement, found {}", describe(kw)));
        auto n = std::make_unique<Node>();
        n->line = kw.line;
        const std::string word = kw.value;
        advance();
        if (word == "if") {
            n->kind = Node::Kind::If;
            n->conditions.push_back(parse_tuple(true));
            end_block();
            while (true) {
                n->bodies.push_back(subparse({"elif", "else", "endif"}));
                if (accept_name("elif")) {
                    n->conditions.push_back(parse_tuple(true));
                    end_block();
                    continue;
                }
                if (accept_name("else")) {
                    end_block();
                    n->else_body = subparse({"endif"});
                }
                expect_name_end("endif");
                break;
            }
        } else if (word == "for") {
            n->kind = Node::Kind::For;
            const bool paren = accept_op("(");
            n->targets.push_back(expect_identifier());
            while (accept_op(",")) n->targets.push_back(expect_identifier());
            if (paren) expect_op(")");
            if (!accept_name("in")) fail(fmt::format("expected 'in', found {}", describe(cur())));
            n->expr = parse_tuple(false);
            if (accept_name("if")) n->cond = parse_expression(true);
            if (accept_name("recursive")) fail("recursive for loops are not supported");
            end_block();
            n->body = subparse({"endfor", "else"});
            if (accept_name("else")) {
                end_block();
                n->else_body = subparse({"endfor"});
            }
            expect_name_end("endfor");
        } else if (word == "set") {
            std::string first = expect_identifier();
            if (accept_op(".")) {
                n->kind = Node::Kind::Set;
                n->targets.push_back(first);
                n->attr = expect_identifier();
                expect_op("=");
                n->expr = parse_tuple(true);
                end_block();
            } else {
                n->targets.push_back(first);
                while (accept_op(",")) n->targets.push_back(expect_identifier());
                if (accept_op("=")) {
                    n->kind = Node::Kind::Set;
                    n->expr = parse_tuple(true);
                    end_block();
                } else {
                    n->kind = Node::Kind::SetBlock;
                    if (n->targets.size() != 1) fail("a block set assigns one name");
                    if (is_op("|")) n->expr = parse_filter_chain(nullptr);
                    end_block();
                    n->body = subparse({"endset"});
                    expect_name_end("endset");
                }
            }
        } else if (word == "macro") {
            n->kind = Node::Kind::Macro;
            n->text = expect_identifier();
            parse_params(*n);
            end_block();
            n->body = subparse({"endmacro"});
            expect_name_end("endmacro");
        } else if (word == "call") {
            n->kind = Node::Kind::CallBlock;
            if (is_op("(")) parse_params(*n);
            n->expr = parse_expression(true);
            if (n->expr->kind != Expr::Kind::Call) fail("expected a call after 'call'");
            end_block();
            n->body = subparse({"endcall"});
            expect_name_end("endcall");
        } else if (word == "filter") {
            n->kind = Node::Kind::FilterBlock;
            n->expr = parse_filter_chain(nullptr, /*leading_pipe=*/false);
            end_block();
            n->body = subparse({"endfilter"});
            expect_name_end("endfilter");
        } else if (word == "break" || word == "continue") {
            if (loop_depth_ == 0) fail(fmt::format("'{}' outside of a loop", word));
            n->kind = word == "break" ? Node::Kind::Break : Node::Kind::Continue;
            end_block();
        } else if (word == "generation") {
            n->kind = Node::Kind::Generation;
            end_block();
            n->body = subparse({"endgeneration"});
            expect_name_end("endgeneration");
        } else if (word == "include" || word == "import" || word == "from" || word == "extends" || word == "block") {
            fail(fmt::format("'{}' is not allowed: a chat template cannot load other templates", word));
        } else {
            fail(fmt::format("unknown statement '{}'", word));
        }
        return n;
    }

    void expect_name_end(std::string_view end) {
        if (!accept_name(end)) fail(fmt::format("expected '{}', found {}", end, describe(cur())));
        end_block();
    }

    void parse_params(Node& n) {
        expect_op("(");
        while (!is_op(")")) {
            if (!n.params.empty()) expect_op(",");
            if (is_op(")")) break;
            std::string pname = expect_identifier();
            ExprPtr def;
            if (accept_op("=")) def = parse_expression(true);
            n.params.emplace_back(std::move(pname), std::move(def));
        }
        expect_op(")");
    }

    // A comma-separated list becomes a tuple; a single expression stays itself.
    ExprPtr parse_tuple(bool with_condexpr) {
        const int line = cur().line;
        std::vector<ExprPtr> items;
        bool comma = false;
        while (true) {
            if (!items.empty()) {
                if (!accept_op(",")) break;
                comma = true;
            }
            if (cur().type == TokenType::VarEnd || cur().type == TokenType::BlockEnd || is_op(")") ||
                (is_name("if") && !with_condexpr))
                break;
            items.push_back(parse_expression(with_condexpr));
        }
        if (items.size() == 1 && !comma) return std::move(items[0]);
        if (items.empty() && !comma) fail(fmt::format("expected an expression, found {}", describe(cur())));
        auto e = make(Expr::Kind::Tuple, line);
        e->args = std::move(items);
        return e;
    }

    ExprPtr parse_expression(bool with_condexpr) {
        DepthGuard guard(*this);
        ExprPtr e = parse_or();
        if (!with_condexpr) return e;
        while (is_name("if")) {
            const int line = cur().line;
            advance();
            auto c = make(Expr::Kind::Conditional, line);
            c->args.push_back(parse_or());
            c->args.push_back(std::move(e));
            c->args.push_back(accept_name("else") ? parse_expression(true) : nullptr);
            e = std::move(c);
        }
        return e;
    }

    ExprPtr binary(std::string op, ExprPtr l, ExprPtr r, int line) {
        auto e = make(Expr::Kind::Binary, line);
        e->name = std::move(op);
        e->args.push_back(std::move(l));
        e->args.push_back(std::move(r));
        return e;
    }

    // One left-associative level: operand (operator operand)*, the operators named by their text (a keyword such as
    // "and" or a symbol such as "+").
    template <typename Operand>
    ExprPtr left_assoc(Operand operand, std::initializer_list<std::string_view> ops) {
        ExprPtr e = operand();
        for (;;) {
            const auto op =
                std::find_if(ops.begin(), ops.end(), [&](std::string_view o) { return is_op(o) || is_name(o); });
            if (op == ops.end()) return e;
            const int line = cur().line;
            advance();
            e = binary(std::string(*op), std::move(e), operand(), line);
        }
    }

    ExprPtr parse_or() {
        return left_assoc([this] { return parse_and(); }, {"or"});
    }

    ExprPtr parse_and() {
        return left_assoc([this] { return parse_not(); }, {"and"});
    }

    ExprPtr parse_not() {
        if (is_name("not")) {
            DepthGuard guard(*this);
            auto e = make(Expr::Kind::Unary, cur().line);
            advance();
            e->name = "not";
            e->args.push_back(parse_not());
            return e;
        }
        return parse_compare();
    }

    ExprPtr parse_compare() {
        ExprPtr e = parse_math1();
        // Python chains comparisons (a < b < c); templates do not use that, so a second operator is refused.
        while (true) {
            const int line = cur().line;
            std::string op;
            if (cur().type == TokenType::Op &&
                (is_op("==") || is_op("!=") || is_op("<") || is_op(">") || is_op("<=") || is_op(">="))) {
                op = cur().value;
                advance();
            } else if (is_name("in")) {
                op = "in";
                advance();
            } else if (is_name("not") && peek().type == TokenType::Name && peek().value == "in") {
                op = "not in";
                advance();
                advance();
            } else {
                break;
            }
            ExprPtr r = parse_math1();
            e = binary(op, std::move(e), std::move(r), line);
            if (is_op("==") || is_op("!=") || is_op("<") || is_op(">") || is_op("<=") || is_op(">="))
                fail("chained comparisons (a < b < c) are not supported; write them with 'and'");
        }
        return e;
    }

    ExprPtr parse_math1() {
        return left_assoc([this] { return parse_concat(); }, {"+", "-"});
    }

    ExprPtr parse_concat() {
        return left_assoc([this] { return parse_math2(); }, {"~"});
    }

    ExprPtr parse_math2() {
        return left_assoc([this] { return parse_pow(); }, {"*", "/", "//", "%"});
    }

    ExprPtr parse_pow() {
        return left_assoc([this] { return parse_unary(true); }, {"**"});
    }

    ExprPtr parse_unary(bool with_filter) {
        DepthGuard guard(*this);
        ExprPtr e;
        if (is_op("-") || is_op("+")) {
            e = make(Expr::Kind::Unary, cur().line);
            e->name = cur().value;
            advance();
            e->args.push_back(parse_unary(false));
        } else {
            e = parse_postfix(parse_primary());
        }
        if (with_filter) e = parse_filter_expr(std::move(e));
        return e;
    }

    // The entries of a list or dict literal after its opening bracket, up to `close` (a trailing comma allowed):
    // entry() parses one into the literal's args.
    template <typename Entry>
    ExprPtr parse_items(Expr::Kind kind, int line, std::string_view close, Entry entry) {
        auto e = make(kind, line);
        while (!is_op(close)) {
            if (!e->args.empty()) expect_op(",");
            if (is_op(close)) break;
            entry(*e);
        }
        expect_op(close);
        return e;
    }

    ExprPtr parse_primary() {
        DepthGuard guard(*this);
        const Token& t = cur();
        const int line = t.line;
        switch (t.type) {
            case TokenType::Name: {
                auto e = make(Expr::Kind::Literal, line);
                if (t.value == "true" || t.value == "True") {
                    e->value = Value(true);
                } else if (t.value == "false" || t.value == "False") {
                    e->value = Value(false);
                } else if (t.value == "none" || t.value == "None") {
                    e->value = Value::none();
                } else {
                    e->kind = Expr::Kind::Name;
                    e->name = t.value;
                }
                advance();
                return e;
            }
            case TokenType::String: {
                std::string s;
                while (cur().type == TokenType::String) {  // adjacent literals concatenate
                    s += cur().value;
                    advance();
                }
                auto e = make(Expr::Kind::Literal, line);
                e->value = Value(std::move(s));
                return e;
            }
            case TokenType::Int: {
                int64_t v = 0;
                const auto r = std::from_chars(t.value.data(), t.value.data() + t.value.size(), v);
                if (r.ec != std::errc()) fail(fmt::format("integer literal {} out of range", t.value));
                auto e = make(Expr::Kind::Literal, line);
                e->value = Value(v);
                advance();
                return e;
            }
            case TokenType::Float: {
                auto e = make(Expr::Kind::Literal, line);
                e->value = Value(std::strtod(t.value.c_str(), nullptr));
                advance();
                return e;
            }
            case TokenType::Op:
                if (t.value == "(") {
                    advance();
                    if (accept_op(")")) return make(Expr::Kind::Tuple, line);
                    ExprPtr e = parse_tuple(true);
                    expect_op(")");
                    return e;
                }
                if (t.value == "[") {
                    advance();
                    return parse_items(Expr::Kind::List, line, "]",
                                       [this](Expr& list) { list.args.push_back(parse_expression(true)); });
                }
                if (t.value == "{") {
                    advance();
                    return parse_items(Expr::Kind::Dict, line, "}", [this](Expr& dict) {
                        dict.args.push_back(parse_expression(true));
                        expect_op(":");
                        dict.args.push_back(parse_expression(true));
                    });
                }
                break;
            default: break;
        }
        fail(fmt::format("unexpected {}", describe(t)));
    }

    ExprPtr parse_postfix(ExprPtr e) {
        while (true) {
            const int line = cur().line;
            if (is_op(".")) {
                advance();
                if (cur().type == TokenType::Int) {
                    auto item = make(Expr::Kind::Item, line);
                    item->args.push_back(std::move(e));
                    auto idx = make(Expr::Kind::Literal, line);
                    idx->value = Value(static_cast<int64_t>(std::stoll(cur().value)));
                    item->args.push_back(std::move(idx));
                    advance();
                    e = std::move(item);
                } else {
                    auto a = make(Expr::Kind::Attr, line);
                    a->name = expect_identifier();
                    a->args.push_back(std::move(e));
                    e = std::move(a);
                }
            } else if (is_op("[")) {
                advance();
                e = parse_subscript(std::move(e), line);
            } else if (is_op("(")) {
                e = parse_call(std::move(e));
            } else {
                return e;
            }
        }
    }

    ExprPtr parse_subscript(ExprPtr target, int line) {
        ExprPtr parts[3];
        bool slice = false;
        if (!is_op(":")) parts[0] = parse_expression(true);
        if (accept_op(":")) {
            slice = true;
            if (!is_op("]") && !is_op(":")) parts[1] = parse_expression(true);
            if (accept_op(":") && !is_op("]")) parts[2] = parse_expression(true);
        }
        expect_op("]");
        auto e = make(slice ? Expr::Kind::Slice : Expr::Kind::Item, line);
        e->args.push_back(std::move(target));
        if (slice) {
            for (auto& p : parts) e->args.push_back(std::move(p));
        } else {
            e->args.push_back(std::move(parts[0]));
        }
        return e;
    }

    // `(args...)` appended to `e` (already holding the callee or, for filters/tests, the operand).
    void parse_call_args(Expr& e) {
        expect_op("(");
        bool first = true;
        while (!is_op(")")) {
            if (!first) expect_op(",");
            first = false;
            if (is_op(")")) break;
            if (cur().type == TokenType::Name && peek().type == TokenType::Op && peek().value == "=") {
                std::string key = cur().value;
                advance();
                advance();
                e.kwargs.emplace_back(std::move(key), parse_expression(true));
            } else {
                if (!e.kwargs.empty()) fail("positional argument after keyword argument");
                e.args.push_back(parse_expression(true));
            }
        }
        expect_op(")");
    }

    ExprPtr parse_call(ExprPtr callee) {
        auto e = make(Expr::Kind::Call, cur().line);
        e->args.push_back(std::move(callee));
        parse_call_args(*e);
        return e;
    }

    ExprPtr parse_filter_expr(ExprPtr e) {
        while (true) {
            if (is_op("|")) {
                e = parse_filter_chain(std::move(e));
            } else if (is_name("is")) {
                e = parse_test(std::move(e));
            } else if (is_op("(")) {
                e = parse_call(std::move(e));
            } else {
                return e;
            }
        }
    }

    // `| name(args) | name ...` applied to `operand` (null for a filter block, filled in when rendering).
    ExprPtr parse_filter_chain(ExprPtr operand, bool leading_pipe = true) {
        bool first = true;
        while (first ? (leading_pipe ? is_op("|") : true) : is_op("|")) {
            if (!first || leading_pipe) expect_op("|");
            first = false;
            auto f = make(Expr::Kind::Filter, cur().line);
            f->name = expect_identifier();
            while (accept_op(".")) {
                f->name += '.';  // two appends: GCC 12 warns (-Wrestrict, a false positive) on "." + std::string&&
                f->name += expect_identifier();
            }
            f->args.push_back(std::move(operand));
            if (is_op("(")) parse_call_args(*f);
            operand = std::move(f);
        }
        return operand;
    }

    ExprPtr parse_test(ExprPtr operand) {
        auto t = make(Expr::Kind::Test, cur().line);
        advance();  // is
        t->negated = accept_name("not");
        t->name = expect_identifier();
        while (accept_op(".")) t->name += "." + expect_identifier();
        t->args.push_back(std::move(operand));
        if (is_op("(")) {
            parse_call_args(*t);
        } else if ((cur().type == TokenType::Name && cur().value != "else" && cur().value != "or" &&
                    cur().value != "and") ||
                   cur().type == TokenType::String || cur().type == TokenType::Int || cur().type == TokenType::Float ||
                   is_op("[") || is_op("{")) {
            t->args.push_back(parse_postfix(parse_primary()));
        }
        return t;
    }

    const std::vector<Token>& t_;
    std::string_view name_;
    size_t pos_ = 0;
    int depth_ = 0;
    int loop_depth_ = 1;  // break/continue placement is checked when rendering
};

}  // namespace

Body parse(const std::vector<Token>& tokens, std::string_view name) { return Parser(tokens, name).parse_template(); }

}  // namespace orcd::tmpl
