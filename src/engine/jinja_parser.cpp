// The Jinja statement parser: text, {{ }} output and the {% %} tags (if, for, set, macro, call,
// filter, with, do, break, continue, generation), checking that every block is closed by its
// own end tag. Expressions are left to ExprParser.
#include "engine/jinja_parser.h"

#include <initializer_list>
#include <vector>

#include "engine/jinja_expr_parser.h"
#include "engine/jinja_lexer.h"
#include "engine/jinja_token_stream.h"

namespace mlxn::engine::jinja::detail {

namespace {

// A block being parsed, for "not closed" messages.
struct Opener {
  std::string tag;
  Location loc;
};

std::string join_tags(std::initializer_list<std::string_view> tags) {
  std::string out;
  std::size_t i = 0;
  for (std::string_view t : tags) {
    if (i > 0) out += (i + 1 == tags.size()) ? " or " : ", ";
    out += "'";
    out += t;
    out += "'";
    ++i;
  }
  return out;
}

bool is_end_like(std::string_view tag) {
  return tag.substr(0, 3) == "end" || tag == "else" || tag == "elif";
}

class Parser : private TokenStream {
 public:
  Parser(std::vector<Token> tokens, const std::string& name)
      : TokenStream(std::move(tokens), name), expr_(*this) {}

  Body parse_template() { return parse_until({}, nullptr); }

 private:
  void expect_block_end(std::string_view tag) {
    if (cur().type != TokenType::BlockEnd) {
      error(cur(), "expected end of '" + std::string(tag) + "' tag '%}', got " + describe(cur()));
    }
    advance();
  }

  static StmtPtr stmt_node(StmtKind kind, const Token& at) { return make_stmt(kind, at); }
  ExprPtr parse_tuple(bool with_condexpr, std::initializer_list<std::string_view> extra_end,
                      bool explicit_parentheses) {
    return expr_.parse_tuple(with_condexpr, extra_end, explicit_parentheses);
  }
  ExprPtr parse_expression(bool with_condexpr) { return expr_.parse_expression(with_condexpr); }
  ExprPtr parse_filter(ExprPtr node, bool first_inline) {
    return expr_.parse_filter(std::move(node), first_inline);
  }

  // ---- statements ----

  // Parses until a {% tag %} named in `ends`; returns with the tag name as the current token.
  Body parse_until(std::initializer_list<std::string_view> ends, const Opener* opener) {
    Body body;
    while (true) {
      const Token& t = cur();
      switch (t.type) {
        case TokenType::Data: {
          auto s = stmt_node(StmtKind::Text, t);
          s->text = t.text;
          body.push_back(std::move(s));
          advance();
          break;
        }
        case TokenType::VarBegin: {
          auto s = stmt_node(StmtKind::Output, t);
          advance();
          s->expr = parse_tuple(true, {}, false);
          if (cur().type != TokenType::VarEnd) {
            error(cur(), "expected end of print statement '}}', got " + describe(cur()));
          }
          advance();
          body.push_back(std::move(s));
          break;
        }
        case TokenType::BlockBegin: {
          const Token& tag = peek();
          if (tag.type != TokenType::Name) {
            error(tag, "expected a tag name after '{%', got " + describe(tag));
          }
          for (std::string_view end : ends) {
            if (tag.text == end) {
              advance();
              return body;
            }
          }
          advance();
          if (is_end_like(tag.text)) {
            if (opener) {
              error(tag, "unexpected '" + tag.text + "': expected " + join_tags(ends) +
                             " to close the '" + opener->tag + "' block opened at line " +
                             std::to_string(opener->loc.line));
            }
            error(tag, "unexpected '" + tag.text + "': no block is open");
          }
          body.push_back(parse_statement());
          break;
        }
        case TokenType::Eof:
          if (opener) {
            error(t, "unexpected end of template: the '" + opener->tag + "' block opened at line " +
                         std::to_string(opener->loc.line) + " is never closed (expected " +
                         join_tags(ends) + ")");
          }
          return body;
        default:
          error(t, "unexpected " + describe(t));
      }
    }
  }

  // Consumes the end tag left current by parse_until and its "%}".
  void finish_block(std::string_view end_tag) {
    advance();
    expect_block_end(end_tag);
  }

  StmtPtr parse_statement() {
    const Token& tag = advance();
    const NestingGuard guard(*this, tag);
    const std::string& name = tag.text;
    if (name == "if") return parse_if(tag);
    if (name == "for") return parse_for(tag);
    if (name == "set") return parse_set(tag);
    if (name == "macro") return parse_macro(tag);
    if (name == "call") return parse_call_block(tag);
    if (name == "filter") return parse_filter_block(tag);
    if (name == "with") return parse_with(tag, "endwith");
    if (name == "generation") return parse_with(tag, "endgeneration");
    if (name == "do") {
      auto s = stmt_node(StmtKind::Do, tag);
      s->expr = parse_tuple(true, {}, false);
      expect_block_end(name);
      return s;
    }
    if (name == "break" || name == "continue") {
      if (loop_depth_ == 0) error(tag, "'" + name + "' outside of a for loop");
      auto s = stmt_node(name == "break" ? StmtKind::Break : StmtKind::Continue, tag);
      expect_block_end(name);
      return s;
    }
    if (name == "include" || name == "extends" || name == "import" || name == "from" ||
        name == "block" || name == "autoescape" || name == "trans") {
      error(tag, "the '" + name + "' tag is not supported");
    }
    error(tag, "unknown tag '" + name + "'");
  }

  StmtPtr parse_if(const Token& tag) {
    auto s = stmt_node(StmtKind::If, tag);
    const Opener opener{"if", tag.loc};
    ExprPtr cond = parse_tuple(false, {}, false);
    expect_block_end("if");
    while (true) {
      Body body = parse_until({"elif", "else", "endif"}, &opener);
      s->branches.emplace_back(std::move(cond), std::move(body));
      const std::string next = advance().text;
      if (next == "elif") {
        cond = parse_tuple(false, {}, false);
        expect_block_end("elif");
        continue;
      }
      if (next == "else") {
        expect_block_end("else");
        s->else_body = parse_until({"endif"}, &opener);
        finish_block("endif");
      } else {
        expect_block_end("endif");
      }
      return s;
    }
  }

  StmtPtr parse_for(const Token& tag) {
    auto s = stmt_node(StmtKind::For, tag);
    const Opener opener{"for", tag.loc};
    s->target = parse_target(false);
    if (!at_name("in")) error(cur(), "expected 'in' in for loop, got " + describe(cur()));
    advance();
    s->expr = parse_tuple(false, {"recursive"}, false);
    if (at_name("if")) {
      advance();
      s->filter = parse_expression(true);
    }
    if (at_name("recursive")) error(cur(), "recursive for loops are not supported");
    expect_block_end("for");
    ++loop_depth_;
    s->body = parse_until({"endfor", "else"}, &opener);
    --loop_depth_;
    if (advance().text == "else") {
      expect_block_end("else");
      s->else_body = parse_until({"endfor"}, &opener);
      finish_block("endfor");
    } else {
      expect_block_end("endfor");
    }
    return s;
  }

  StmtPtr parse_set(const Token& tag) {
    Target target = parse_target(true);
    if (at_op("=")) {
      auto s = stmt_node(StmtKind::Set, tag);
      advance();
      s->target = std::move(target);
      s->expr = parse_tuple(true, {}, false);
      expect_block_end("set");
      return s;
    }
    auto s = stmt_node(StmtKind::SetBlock, tag);
    if (target.unpack || !target.attr.empty()) {
      error(tag, "a block set ({% set x %}...{% endset %}) assigns to one plain name");
    }
    s->target = std::move(target);
    if (at_op("|")) s->filter = parse_filter(nullptr, false);
    expect_block_end("set");
    const Opener opener{"set", tag.loc};
    s->body = parse_until({"endset"}, &opener);
    finish_block("endset");
    return s;
  }

  // `name`, `a, b[, ...]`, `(a, b)` or, for set, `ns.attr`.
  Target parse_target(bool allow_attr) {
    Target t;
    const Token& first = cur();
    if (allow_attr && first.type == TokenType::Name && peek().type == TokenType::Operator &&
        peek().text == ".") {
      t.names.push_back(advance().text);
      advance();
      t.attr = expect_name("an attribute name");
      return t;
    }
    const bool parens = at_op("(");
    if (parens) {
      advance();
      t.unpack = true;
    }
    while (true) {
      const Token& name = cur();
      t.names.push_back(expect_name("a variable name to assign to"));
      const std::string& n = t.names.back();
      if (n == "true" || n == "false" || n == "none" || n == "True" || n == "False" ||
          n == "None" || n == "in") {
        error(name, "cannot assign to '" + n + "'");
      }
      if (!at_op(",")) break;
      advance();
      t.unpack = true;
      if (cur().type != TokenType::Name || at_name("in")) break;
    }
    if (parens) expect_op(")");
    return t;
  }

  std::vector<MacroParam> parse_params() {
    std::vector<MacroParam> params;
    expect_op("(");
    while (!at_op(")")) {
      if (!params.empty()) {
        expect_op(",");
        if (at_op(")")) break;
      }
      const Token& at = cur();
      MacroParam p;
      p.name = expect_name("a parameter name");
      if (at_op("=")) {
        advance();
        p.default_value = parse_expression(true);
      } else if (!params.empty() && params.back().default_value) {
        error(at, "parameter '" + p.name + "' without a default follows one with a default");
      }
      params.push_back(std::move(p));
    }
    expect_op(")");
    return params;
  }

  StmtPtr parse_macro(const Token& tag) {
    auto s = stmt_node(StmtKind::Macro, tag);
    s->text = expect_name("a macro name");
    s->params = parse_params();
    expect_block_end("macro");
    const int saved_depth = loop_depth_;
    loop_depth_ = 0;  // a loop around the definition is not a loop around the body
    const Opener opener{"macro", tag.loc};
    s->body = parse_until({"endmacro"}, &opener);
    loop_depth_ = saved_depth;
    advance();
    if (cur().type == TokenType::Name) advance();  // {% endmacro name %}
    expect_block_end("endmacro");
    return s;
  }

  StmtPtr parse_call_block(const Token& tag) {
    auto s = stmt_node(StmtKind::CallBlock, tag);
    if (at_op("(")) s->params = parse_params();
    const Token& at = cur();
    s->expr = parse_expression(true);
    if (s->expr->kind != ExprKind::Call) error(at, "expected a macro call after 'call'");
    expect_block_end("call");
    const int saved_depth = loop_depth_;
    loop_depth_ = 0;
    const Opener opener{"call", tag.loc};
    s->body = parse_until({"endcall"}, &opener);
    loop_depth_ = saved_depth;
    finish_block("endcall");
    return s;
  }

  StmtPtr parse_filter_block(const Token& tag) {
    auto s = stmt_node(StmtKind::FilterBlock, tag);
    s->filter = parse_filter(nullptr, true);
    expect_block_end("filter");
    const Opener opener{"filter", tag.loc};
    s->body = parse_until({"endfilter"}, &opener);
    finish_block("endfilter");
    return s;
  }

  StmtPtr parse_with(const Token& tag, std::string_view end_tag) {
    auto s = stmt_node(StmtKind::With, tag);
    while (cur().type != TokenType::BlockEnd) {
      if (!s->assignments.empty()) expect_op(",");
      Target t = parse_target(false);
      expect_op("=");
      s->assignments.emplace_back(std::move(t), parse_expression(true));
    }
    expect_block_end(tag.text);
    const Opener opener{tag.text, tag.loc};
    s->body = parse_until({end_tag}, &opener);
    finish_block(end_tag);
    return s;
  }

  ExprParser expr_;
  int loop_depth_ = 0;
};

}  // namespace

std::shared_ptr<const Program> parse_program(std::string_view source, std::string name,
                                             const Options& options) {
  auto program = std::make_shared<Program>();
  program->name = std::move(name);
  Parser parser(tokenize(source, options, program->name), program->name);
  program->body = parser.parse_template();
  return program;
}

}  // namespace mlxn::engine::jinja::detail
