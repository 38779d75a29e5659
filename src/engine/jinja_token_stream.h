// Private to the Jinja engine: the token cursor the statement and expression parsers share,
// with the checks both make (expect an operator or a name, report a syntax error, bound the
// nesting depth).
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "engine/jinja_ast.h"
#include "engine/jinja_lexer.h"

namespace mlxn::engine::jinja::detail {

class TokenStream {
 public:
  TokenStream(std::vector<Token> tokens, const std::string& template_name)
      : tokens_(std::move(tokens)), name_(template_name) {}

  const Token& cur() const { return tokens_[pos_]; }
  const Token& peek() const { return tokens_[pos_ + 1 < tokens_.size() ? pos_ + 1 : pos_]; }
  const Token& advance() {
    const Token& t = tokens_[pos_];
    if (t.type != TokenType::Eof) ++pos_;
    return t;
  }
  bool at_op(std::string_view op) const {
    return cur().type == TokenType::Operator && cur().text == op;
  }
  bool at_name(std::string_view name) const {
    return cur().type == TokenType::Name && cur().text == name;
  }

  [[noreturn]] void error(const Token& at, const std::string& message) const {
    syntax_error(name_, at.loc, message);
  }

  void expect_op(std::string_view op) {
    if (!at_op(op)) error(cur(), "expected '" + std::string(op) + "', got " + describe(cur()));
    advance();
  }

  std::string expect_name(const char* what) {
    if (cur().type != TokenType::Name) {
      error(cur(), std::string("expected ") + what + ", got " + describe(cur()));
    }
    return advance().text;
  }

  // Bounds the recursion of nested blocks and expressions so that hostile input cannot
  // exhaust the stack (real templates nest a handful of levels).
  class NestingGuard {
   public:
    static constexpr int kMaxNesting = 200;
    NestingGuard(TokenStream& s, const Token& at) : stream_(s) {
      if (++stream_.nesting_ > kMaxNesting) {
        stream_.error(at, "blocks or expressions nest too deep (more than " +
                              std::to_string(kMaxNesting) + " levels)");
      }
    }
    ~NestingGuard() { --stream_.nesting_; }
    NestingGuard(const NestingGuard&) = delete;
    NestingGuard& operator=(const NestingGuard&) = delete;

   private:
    TokenStream& stream_;
  };

 private:
  std::vector<Token> tokens_;
  const std::string& name_;
  std::size_t pos_ = 0;
  int nesting_ = 0;
};

inline ExprPtr make_expr(ExprKind kind, const Token& at) {
  auto e = std::make_unique<Expr>();
  e->kind = kind;
  e->loc = at.loc;
  return e;
}

inline StmtPtr make_stmt(StmtKind kind, const Token& at) {
  auto s = std::make_unique<Stmt>();
  s->kind = kind;
  s->loc = at.loc;
  return s;
}

}  // namespace mlxn::engine::jinja::detail
