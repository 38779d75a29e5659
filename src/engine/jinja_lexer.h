// Private to the Jinja engine: turns template source into tokens -- text, tag delimiters and
// the expression tokens inside tags -- applying whitespace control ({%- -%}, trim_blocks,
// lstrip_blocks), comments and {% raw %} on the way, as Jinja's lexer does.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "engine/jinja_ast.h"
#include "mlxn/engine/jinja.h"

namespace mlxn::engine::jinja::detail {

enum class TokenType {
  Data,        // text outside tags (whitespace control already applied)
  VarBegin,    // {{
  VarEnd,      // }}
  BlockBegin,  // {%
  BlockEnd,    // %}
  Name,
  String,    // text: the unescaped value
  Integer,   // int_value
  Float,     // float_value
  Operator,  // text: + - * / // % ** ~ == != < <= > >= = ( ) [ ] { } , . : | ;
  Eof,
};

struct Token {
  TokenType type;
  std::string text;
  Location loc;
  std::int64_t int_value = 0;
  double float_value = 0;
};

/// Throws Error(Format): "template 'name' line L column C: message".
[[noreturn]] void syntax_error(const std::string& template_name, Location loc,
                               const std::string& message);

/// Tokenizes `source` (newlines normalized to \n, one trailing newline dropped unless
/// options.keep_trailing_newline). The last token is Eof.
std::vector<Token> tokenize(std::string_view source, const Options& options,
                            const std::string& template_name);

/// How a token reads in an error message: "'name'", "end of print statement", ...
std::string describe(const Token& token);

}  // namespace mlxn::engine::jinja::detail
