// The Jinja expression parser: a recursive descent that mirrors jinja2.parser level by level,
// so that operator precedence and the quirks of `is` tests and filters match Python's Jinja.
#include "engine/jinja_expr_parser.h"

#include <vector>

#include "engine/jinja_filters.h"

namespace mlxn::engine::jinja::detail {

bool ExprParser::at_tuple_end(std::initializer_list<std::string_view> extra_end) const {
  const TokenType t = cur().type;
  if (t == TokenType::VarEnd || t == TokenType::BlockEnd || t == TokenType::Eof || at_op(")")) {
    return true;
  }
  for (std::string_view name : extra_end) {
    if (at_name(name)) return true;
  }
  return false;
}

ExprPtr ExprParser::parse_tuple(bool with_condexpr,
                                std::initializer_list<std::string_view> extra_end,
                                bool explicit_parentheses) {
  const Token& start = cur();
  std::vector<ExprPtr> items;
  bool is_tuple = false;
  while (true) {
    if (!items.empty()) expect_op(",");
    if (at_tuple_end(extra_end)) break;
    items.push_back(parse_expression(with_condexpr));
    if (at_op(",")) {
      is_tuple = true;
    } else {
      break;
    }
  }
  if (!is_tuple) {
    if (!items.empty()) return std::move(items.front());
    if (!explicit_parentheses) error(cur(), "expected an expression, got " + describe(cur()));
  }
  auto e = expr_node(ExprKind::Tuple, start);
  e->items = std::move(items);
  return e;
}

ExprPtr ExprParser::parse_expression(bool with_condexpr) {
  return with_condexpr ? parse_condexpr() : parse_or();
}

ExprPtr ExprParser::parse_condexpr() {
  ExprPtr expr = parse_or();
  while (at_name("if")) {
    auto e = expr_node(ExprKind::Condition, advance());
    e->a = parse_or();
    e->b = std::move(expr);
    if (at_name("else")) {
      advance();
      e->c = parse_condexpr();
    }
    expr = std::move(e);
  }
  return expr;
}

ExprPtr ExprParser::binary(ExprKind kind, const Token& at, ExprPtr left, ExprPtr right, Op op) {
  auto e = expr_node(kind, at);
  e->op = op;
  e->a = std::move(left);
  e->b = std::move(right);
  return e;
}

ExprPtr ExprParser::parse_or() {
  ExprPtr left = parse_and();
  while (at_name("or")) {
    const Token& at = advance();
    left = binary(ExprKind::Or, at, std::move(left), parse_and());
  }
  return left;
}

ExprPtr ExprParser::parse_and() {
  ExprPtr left = parse_not();
  while (at_name("and")) {
    const Token& at = advance();
    left = binary(ExprKind::And, at, std::move(left), parse_not());
  }
  return left;
}

ExprPtr ExprParser::parse_not() {
  const TokenStream::NestingGuard guard(ts_, cur());
  if (at_name("not")) {
    auto e = expr_node(ExprKind::Not, advance());
    e->a = parse_not();
    return e;
  }
  return parse_compare();
}

ExprPtr ExprParser::parse_compare() {
  const Token& start = cur();
  ExprPtr expr = parse_math1();
  std::vector<CompareOp> ops;
  std::vector<ExprPtr> operands;
  while (true) {
    CompareOp op;
    if (cur().type == TokenType::Operator && cur().text == "==") {
      op = CompareOp::Eq;
    } else if (at_op("!=")) {
      op = CompareOp::Ne;
    } else if (at_op("<")) {
      op = CompareOp::Lt;
    } else if (at_op("<=")) {
      op = CompareOp::Le;
    } else if (at_op(">")) {
      op = CompareOp::Gt;
    } else if (at_op(">=")) {
      op = CompareOp::Ge;
    } else if (at_name("in")) {
      op = CompareOp::In;
    } else if (at_name("not") && peek().type == TokenType::Name && peek().text == "in") {
      advance();
      op = CompareOp::NotIn;
    } else {
      break;
    }
    advance();
    ops.push_back(op);
    operands.push_back(parse_math1());
  }
  if (ops.empty()) return expr;
  auto e = expr_node(ExprKind::Compare, start);
  e->a = std::move(expr);
  e->compare_ops = std::move(ops);
  e->items = std::move(operands);
  return e;
}

ExprPtr ExprParser::parse_math1() {
  ExprPtr left = parse_concat();
  while (at_op("+") || at_op("-")) {
    const Token& at = advance();
    const Op op = at.text == "+" ? Op::Add : Op::Sub;
    left = binary(ExprKind::Binary, at, std::move(left), parse_concat(), op);
  }
  return left;
}

ExprPtr ExprParser::parse_concat() {
  ExprPtr left = parse_math2();
  while (at_op("~")) {
    const Token& at = advance();
    left = binary(ExprKind::Binary, at, std::move(left), parse_math2(), Op::Concat);
  }
  return left;
}

ExprPtr ExprParser::parse_math2() {
  ExprPtr left = parse_pow();
  while (at_op("*") || at_op("/") || at_op("//") || at_op("%")) {
    const Token& at = advance();
    const Op op = at.text == "*"    ? Op::Mul
                  : at.text == "/"  ? Op::Div
                  : at.text == "//" ? Op::FloorDiv
                                    : Op::Mod;
    left = binary(ExprKind::Binary, at, std::move(left), parse_pow(), op);
  }
  return left;
}

ExprPtr ExprParser::parse_pow() {
  ExprPtr left = parse_unary(true);
  while (at_op("**")) {
    const Token& at = advance();
    left = binary(ExprKind::Binary, at, std::move(left), parse_unary(true), Op::Pow);
  }
  return left;
}

ExprPtr ExprParser::parse_unary(bool with_filter) {
  const TokenStream::NestingGuard guard(ts_, cur());
  ExprPtr node;
  if (at_op("-") || at_op("+")) {
    const Token& at = advance();
    node = expr_node(ExprKind::Unary, at);
    node->op = at.text == "-" ? Op::Neg : Op::Pos;
    node->a = parse_unary(false);
  } else {
    node = parse_primary();
  }
  node = parse_postfix(std::move(node));
  if (with_filter) node = parse_filter_expr(std::move(node));
  return node;
}

ExprPtr ExprParser::literal(const Token& at, Value v) {
  auto e = expr_node(ExprKind::Literal, at);
  e->literal = std::move(v);
  return e;
}

ExprPtr ExprParser::parse_primary() {
  const Token& t = cur();
  switch (t.type) {
    case TokenType::Name: {
      advance();
      if (t.text == "true" || t.text == "True") return literal(t, Value(true));
      if (t.text == "false" || t.text == "False") return literal(t, Value(false));
      if (t.text == "none" || t.text == "None") return literal(t, Value::none());
      auto e = expr_node(ExprKind::Name, t);
      e->name = t.text;
      return e;
    }
    case TokenType::String: {
      std::string text;
      while (cur().type == TokenType::String) text += advance().text;  // 'a' 'b' == 'ab'
      return literal(t, Value(std::move(text)));
    }
    case TokenType::Integer:
      advance();
      return literal(t, Value(t.int_value));
    case TokenType::Float:
      advance();
      return literal(t, Value(t.float_value));
    case TokenType::Operator:
      if (t.text == "(") {
        advance();
        ExprPtr inner = parse_tuple(true, {}, true);
        expect_op(")");
        return inner;
      }
      if (t.text == "[") return parse_list();
      if (t.text == "{") return parse_dict();
      break;
    default:
      break;
  }
  error(t, "expected an expression, got " + describe(t));
}

ExprPtr ExprParser::parse_list() {
  auto e = expr_node(ExprKind::List, advance());
  while (!at_op("]")) {
    if (!e->items.empty()) {
      expect_op(",");
      if (at_op("]")) break;
    }
    e->items.push_back(parse_expression(true));
  }
  expect_op("]");
  return e;
}

ExprPtr ExprParser::parse_dict() {
  auto e = expr_node(ExprKind::Dict, advance());
  while (!at_op("}")) {
    if (!e->items.empty()) {
      expect_op(",");
      if (at_op("}")) break;
    }
    e->items.push_back(parse_expression(true));
    expect_op(":");
    e->items.push_back(parse_expression(true));
  }
  expect_op("}");
  return e;
}

ExprPtr ExprParser::parse_postfix(ExprPtr node) {
  while (true) {
    if (at_op(".") || at_op("[")) {
      node = parse_subscript(std::move(node));
    } else if (at_op("(")) {
      node = parse_call(std::move(node));
    } else {
      return node;
    }
  }
}

ExprPtr ExprParser::parse_filter_expr(ExprPtr node) {
  while (true) {
    if (at_op("|")) {
      node = parse_filter(std::move(node), false);
    } else if (at_name("is")) {
      node = parse_test(std::move(node));
    } else if (at_op("(")) {
      node = parse_call(std::move(node));
    } else {
      return node;
    }
  }
}

ExprPtr ExprParser::parse_subscript(ExprPtr node) {
  const Token& at = advance();
  if (at.text == ".") {
    const Token& attr = cur();
    if (attr.type == TokenType::Name) {
      auto e = expr_node(ExprKind::GetAttr, attr);
      advance();
      e->a = std::move(node);
      e->name = attr.text;
      return e;
    }
    if (attr.type != TokenType::Integer) {
      error(attr, "expected an attribute name or index after '.', got " + describe(attr));
    }
    advance();
    auto e = expr_node(ExprKind::GetItem, attr);
    e->a = std::move(node);
    e->b = literal(attr, Value(attr.int_value));
    return e;
  }
  // '[': an index, a slice, or several indices (a tuple key).
  std::vector<ExprPtr> subs;
  while (!at_op("]")) {
    if (!subs.empty()) expect_op(",");
    subs.push_back(parse_subscribed());
  }
  expect_op("]");
  if (subs.empty()) error(at, "expected an index or a slice inside '[]'");
  if (subs.size() == 1 && subs.front()->kind == ExprKind::Slice) {
    subs.front()->a = std::move(node);
    return std::move(subs.front());
  }
  auto e = expr_node(ExprKind::GetItem, at);
  e->a = std::move(node);
  if (subs.size() == 1) {
    e->b = std::move(subs.front());
  } else {
    auto key = expr_node(ExprKind::Tuple, at);
    key->items = std::move(subs);
    e->b = std::move(key);
  }
  return e;
}

// An index expression or a slice [start:stop:step] (parts optional).
ExprPtr ExprParser::parse_subscribed() {
  const Token& at = cur();
  ExprPtr start;
  if (!at_op(":")) {
    start = parse_expression(true);
    if (!at_op(":")) return start;
  }
  auto slice = expr_node(ExprKind::Slice, at);
  advance();  // ':'
  slice->items.push_back(std::move(start));
  if (at_op(":") || at_op("]") || at_op(",")) {
    slice->items.push_back(nullptr);
  } else {
    slice->items.push_back(parse_expression(true));
  }
  if (at_op(":")) {
    advance();
    slice->items.push_back(at_op("]") || at_op(",") ? nullptr : parse_expression(true));
  } else {
    slice->items.push_back(nullptr);
  }
  return slice;
}

Arguments ExprParser::parse_call_args() {
  Arguments args;
  expect_op("(");
  bool need_comma = false;
  while (!at_op(")")) {
    if (need_comma) {
      expect_op(",");
      if (at_op(")")) break;
    }
    if (at_op("*") || at_op("**")) error(cur(), "*args and **kwargs in calls are not supported");
    if (cur().type == TokenType::Name && peek().type == TokenType::Operator && peek().text == "=") {
      std::string key = advance().text;
      advance();
      args.keyword.emplace_back(std::move(key), parse_expression(true));
    } else {
      if (!args.keyword.empty()) {
        error(cur(), "a positional argument follows a keyword argument");
      }
      args.positional.push_back(parse_expression(true));
    }
    need_comma = true;
  }
  expect_op(")");
  return args;
}

ExprPtr ExprParser::parse_call(ExprPtr callee) {
  auto e = expr_node(ExprKind::Call, cur());
  e->a = std::move(callee);
  e->args = parse_call_args();
  return e;
}

std::string ExprParser::parse_dotted_name(const char* what) {
  std::string name = expect_name(what);
  while (at_op(".")) {
    advance();
    name += '.';
    name += expect_name(what);
  }
  return name;
}

// `| name(args)` repeated; `first_inline`: the first filter has no leading '|'.
ExprPtr ExprParser::parse_filter(ExprPtr node, bool first_inline) {
  while (at_op("|") || first_inline) {
    if (!first_inline) advance();
    first_inline = false;
    const Token& at = cur();
    auto e = expr_node(ExprKind::Filter, at);
    e->name = parse_dotted_name("a filter name");
    if (!has_filter(e->name)) error(at, "no filter named '" + e->name + "'");
    if (at_op("(")) e->args = parse_call_args();
    e->a = std::move(node);
    node = std::move(e);
  }
  return node;
}

ExprPtr ExprParser::parse_test(ExprPtr node) {
  advance();  // 'is'
  bool negated = false;
  if (at_name("not")) {
    advance();
    negated = true;
  }
  const Token& at = cur();
  auto e = expr_node(ExprKind::Test, at);
  e->name = parse_dotted_name("a test name");
  if (!has_test(e->name)) error(at, "no test named '" + e->name + "'");
  e->negated = negated;
  const TokenType t = cur().type;
  if (at_op("(")) {
    e->args = parse_call_args();
  } else if ((t == TokenType::Name || t == TokenType::String || t == TokenType::Integer ||
              t == TokenType::Float || at_op("[") || at_op("{")) &&
             !at_name("else") && !at_name("or") && !at_name("and")) {
    // `x is divisibleby 3`, `x is equalto 'a'`: one argument without parentheses.
    if (at_name("is")) error(cur(), "tests cannot be chained with 'is'");
    e->args.positional.push_back(parse_postfix(parse_primary()));
  }
  e->a = std::move(node);
  return e;
}

}  // namespace mlxn::engine::jinja::detail
