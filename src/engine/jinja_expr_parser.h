// Private to the Jinja engine: the expression parser, with the precedence of jinja2.parser --
// filters and `is` tests bind tightest, then ** * / // %, ~, + -, comparisons, not, and, or,
// and finally `x if c else y`.
#pragma once

#include <initializer_list>
#include <string>
#include <string_view>

#include "engine/jinja_ast.h"
#include "engine/jinja_token_stream.h"

namespace mlxn::engine::jinja::detail {

class ExprParser {
 public:
  explicit ExprParser(TokenStream& stream) : ts_(stream) {}

  /// A comma-separated sequence is a tuple; a single item is itself. Stops before '}}', '%}',
  /// ')' and the names in `extra_end`.
  ExprPtr parse_tuple(bool with_condexpr, std::initializer_list<std::string_view> extra_end,
                      bool explicit_parentheses);
  /// One expression; without `with_condexpr` a trailing `if` is left alone (for-loop filters).
  ExprPtr parse_expression(bool with_condexpr);
  /// `| name(args)` repeated; `first_inline`: the first filter has no leading '|'.
  ExprPtr parse_filter(ExprPtr node, bool first_inline);

 private:
  const Token& cur() const { return ts_.cur(); }
  const Token& peek() const { return ts_.peek(); }
  const Token& advance() { return ts_.advance(); }
  bool at_op(std::string_view op) const { return ts_.at_op(op); }
  bool at_name(std::string_view name) const { return ts_.at_name(name); }
  [[noreturn]] void error(const Token& at, const std::string& message) const {
    ts_.error(at, message);
  }
  void expect_op(std::string_view op) { ts_.expect_op(op); }
  std::string expect_name(const char* what) { return ts_.expect_name(what); }
  static ExprPtr expr_node(ExprKind kind, const Token& at) { return make_expr(kind, at); }

  bool at_tuple_end(std::initializer_list<std::string_view> extra_end) const;
  ExprPtr parse_condexpr();
  ExprPtr binary(ExprKind kind, const Token& at, ExprPtr left, ExprPtr right, Op op = Op::Add);
  ExprPtr parse_or();
  ExprPtr parse_and();
  ExprPtr parse_not();
  ExprPtr parse_compare();
  ExprPtr parse_math1();
  ExprPtr parse_concat();
  ExprPtr parse_math2();
  ExprPtr parse_pow();
  ExprPtr parse_unary(bool with_filter);
  ExprPtr literal(const Token& at, Value v);
  ExprPtr parse_primary();
  ExprPtr parse_list();
  ExprPtr parse_dict();
  ExprPtr parse_postfix(ExprPtr node);
  ExprPtr parse_filter_expr(ExprPtr node);
  ExprPtr parse_subscript(ExprPtr node);
  ExprPtr parse_subscribed();
  Arguments parse_call_args();
  ExprPtr parse_call(ExprPtr callee);
  std::string parse_dotted_name(const char* what);
  ExprPtr parse_test(ExprPtr node);

  TokenStream& ts_;
};

}  // namespace mlxn::engine::jinja::detail
