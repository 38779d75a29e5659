// The Jinja lexer: splits source into text and tags, applies whitespace control, and tokenizes
// the expressions inside {{ }} and {% %}. Follows the rules of jinja2.lexer (3.1) so that
// templates written against Python's Jinja produce the same whitespace.
#include "engine/jinja_lexer.h"

#include <algorithm>
#include <charconv>
#include <cstdlib>

#include "engine/jinja_strings.h"
#include "mlxn/core/error.h"

namespace mlxn::engine::jinja::detail {

void syntax_error(const std::string& template_name, Location loc, const std::string& message) {
  throw Error(ErrorKind::Format, "template '" + template_name + "' line " +
                                     std::to_string(loc.line) + " column " +
                                     std::to_string(loc.column) + ": " + message);
}

std::string describe(const Token& token) {
  switch (token.type) {
    case TokenType::Data:
      return "template text";
    case TokenType::VarBegin:
      return "'{{'";
    case TokenType::VarEnd:
      return "end of print statement '}}'";
    case TokenType::BlockBegin:
      return "'{%'";
    case TokenType::BlockEnd:
      return "end of statement block '%}'";
    case TokenType::Name:
      return "'" + token.text + "'";
    case TokenType::String:
      return "string literal";
    case TokenType::Integer:
    case TokenType::Float:
      return "number";
    case TokenType::Operator:
      return "'" + token.text + "'";
    case TokenType::Eof:
      return "end of template";
  }
  return "token";
}

namespace {

bool is_digit(char c) {
  return c >= '0' && c <= '9';
}
bool is_name_start(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
}
bool is_name_char(char c) {
  return is_name_start(c) || is_digit(c);
}
bool is_ascii_space(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// Newlines normalized to \n and, unless kept, one trailing newline dropped (Jinja does both
// before lexing).
std::string normalize_source(std::string_view source, bool keep_trailing_newline) {
  std::string out;
  out.reserve(source.size());
  for (std::size_t i = 0; i < source.size(); ++i) {
    if (source[i] == '\r') {
      out += '\n';
      if (i + 1 < source.size() && source[i + 1] == '\n') ++i;
    } else {
      out += source[i];
    }
  }
  if (!keep_trailing_newline && !out.empty() && out.back() == '\n') out.pop_back();
  return out;
}

class Lexer {
 public:
  Lexer(std::string source, const Options& options, const std::string& name)
      : src_(std::move(source)), opt_(options), name_(name) {
    line_starts_.push_back(0);
    for (std::size_t i = 0; i < src_.size(); ++i) {
      if (src_[i] == '\n') line_starts_.push_back(i + 1);
    }
  }

  std::vector<Token> run() {
    std::size_t pos = 0;
    while (pos < src_.size()) {
      const std::size_t open = find_tag(pos);
      if (open == std::string::npos) {
        emit_data(src_.substr(pos), pos);
        break;
      }
      const char kind = src_[open + 1];
      char sign = open + 2 < src_.size() ? src_[open + 2] : '\0';
      if (sign != '-' && sign != '+') sign = '\0';
      std::size_t raw_body = 0;
      const bool raw = kind == '%' && match_raw_begin(open, &raw_body);
      std::string data = src_.substr(pos, open - pos);
      strip_before_tag(data, sign, kind != '{');
      emit_data(std::move(data), pos);
      if (raw) {
        pos = lex_raw(open, raw_body);
      } else if (kind == '#') {
        pos = lex_comment(open, sign);
      } else {
        pos = lex_tag(open, kind == '%', sign);
      }
      line_starting_ = pos > 0 && src_[pos - 1] == '\n';
    }
    tokens_.push_back({TokenType::Eof, "", loc(src_.size())});
    return std::move(tokens_);
  }

 private:
  Location loc(std::size_t pos) const {
    auto it = std::upper_bound(line_starts_.begin(), line_starts_.end(), pos);
    const auto line = static_cast<int>(it - line_starts_.begin());
    return {line, static_cast<int>(pos - line_starts_[line - 1]) + 1};
  }

  bool starts_with(std::size_t pos, std::string_view s) const {
    return src_.compare(pos, s.size(), s) == 0;
  }

  std::size_t skip_ws(std::size_t pos) const {
    while (pos < src_.size() && is_ascii_space(src_[pos])) ++pos;
    return pos;
  }

  // Position of the next "{{", "{%" or "{#" at or after pos.
  std::size_t find_tag(std::size_t pos) const {
    for (std::size_t i = src_.find('{', pos); i != std::string::npos; i = src_.find('{', i + 1)) {
      if (i + 1 < src_.size() && (src_[i + 1] == '{' || src_[i + 1] == '%' || src_[i + 1] == '#')) {
        return i;
      }
    }
    return std::string::npos;
  }

  void emit(TokenType type, std::string text, std::size_t pos) {
    tokens_.push_back({type, std::move(text), loc(pos)});
  }

  void emit_data(std::string text, std::size_t pos) {
    if (!text.empty()) emit(TokenType::Data, std::move(text), pos);
  }

  // "{%-" strips all whitespace before the tag; lstrip_blocks strips the spaces and tabs that
  // stand between the start of a line and a block tag or comment, unless "{%+" says not to.
  void strip_before_tag(std::string& data, char sign, bool block_like) const {
    if (sign == '-') {
      data = strip(data, std::nullopt, false, true);
    } else if (sign != '+' && opt_.lstrip_blocks && block_like) {
      const std::size_t nl = data.rfind('\n');
      const std::size_t l_pos = nl == std::string::npos ? 0 : nl + 1;
      if ((l_pos > 0 || line_starting_) && l_pos < data.size()) {
        std::string_view tail(data);
        tail.remove_prefix(l_pos);
        bool blank = true;
        for (std::size_t i = 0; i < tail.size() && blank;) blank = is_space(decode_utf8(tail, i));
        if (blank) data.resize(l_pos);
      }
    }
  }

  // After a block end ("%}") or comment end: "-" eats all following whitespace, "+" nothing,
  // otherwise trim_blocks eats one newline.
  std::size_t after_block_end(std::size_t pos, char sign) const {
    if (sign == '-') return skip_ws(pos);
    if (sign != '+' && opt_.trim_blocks && pos < src_.size() && src_[pos] == '\n') return pos + 1;
    return pos;
  }

  // {%[-+]? raw [-]?%}: sets *body to where the raw text starts.
  bool match_raw_begin(std::size_t open, std::size_t* body) const {
    std::size_t p = open + 2;
    if (p < src_.size() && (src_[p] == '-' || src_[p] == '+')) ++p;
    p = skip_ws(p);
    if (!starts_with(p, "raw")) return false;
    p = skip_ws(p + 3);
    if (starts_with(p, "-%}")) {
      *body = skip_ws(p + 3);
      return true;
    }
    if (starts_with(p, "%}")) {
      *body = p + 2;
      return true;
    }
    return false;
  }

  std::size_t lex_raw(std::size_t open, std::size_t body) {
    for (std::size_t i = src_.find("{%", body); i != std::string::npos;
         i = src_.find("{%", i + 1)) {
      std::size_t p = i + 2;
      char sign = '\0';
      if (p < src_.size() && (src_[p] == '-' || src_[p] == '+')) sign = src_[p++];
      p = skip_ws(p);
      if (!starts_with(p, "endraw")) continue;
      p = skip_ws(p + 6);
      char end_sign = '\0';
      if (p < src_.size() && (src_[p] == '-' || src_[p] == '+')) end_sign = src_[p++];
      if (!starts_with(p, "%}")) continue;
      std::string data = src_.substr(body, i - body);
      line_starting_ = body > 0 && src_[body - 1] == '\n';
      strip_before_tag(data, sign, true);
      emit_data(std::move(data), body);
      return after_block_end(p + 2, end_sign);
    }
    syntax_error(name_, loc(open), "'raw' block is never closed (expected '{% endraw %}')");
  }

  std::size_t lex_comment(std::size_t open, char sign) {
    const std::size_t body = open + 2 + (sign ? 1 : 0);
    const std::size_t close = src_.find("#}", body);
    if (close == std::string::npos) {
      syntax_error(name_, loc(open), "comment is never closed (expected '#}')");
    }
    char end_sign = '\0';
    if (close > body && (src_[close - 1] == '-' || src_[close - 1] == '+')) {
      end_sign = src_[close - 1];
    }
    return after_block_end(close + 2, end_sign);
  }

  std::size_t lex_tag(std::size_t open, bool block, char sign) {
    emit(block ? TokenType::BlockBegin : TokenType::VarBegin, "", open);
    std::size_t pos = open + 2 + (sign ? 1 : 0);
    // Open brackets: while any is open, "}}" and "%}" are brackets and operators, not the end.
    std::vector<std::pair<char, std::size_t>> open_brackets;
    while (true) {
      pos = skip_ws(pos);
      if (pos >= src_.size()) {
        syntax_error(name_, loc(open),
                     block ? "tag is never closed (expected '%}' before the end of the template)"
                           : "'{{' is never closed (expected '}}' before the end of the template)");
      }
      if (open_brackets.empty()) {
        if (block) {
          if (starts_with(pos, "-%}") || starts_with(pos, "+%}")) {
            emit(TokenType::BlockEnd, "", pos);
            return after_block_end(pos + 3, src_[pos]);
          }
          if (starts_with(pos, "%}")) {
            emit(TokenType::BlockEnd, "", pos);
            return after_block_end(pos + 2, '\0');
          }
        } else {
          if (starts_with(pos, "-}}")) {
            emit(TokenType::VarEnd, "", pos);
            return skip_ws(pos + 3);
          }
          if (starts_with(pos, "}}")) {
            emit(TokenType::VarEnd, "", pos);
            return pos + 2;
          }
        }
      }
      pos = lex_token(pos, open_brackets);
    }
  }

  std::size_t lex_token(std::size_t pos, std::vector<std::pair<char, std::size_t>>& brackets) {
    const char c = src_[pos];
    if (is_digit(c)) return lex_number(pos);
    if (is_name_start(c)) {
      std::size_t end = pos;
      while (end < src_.size() && is_name_char(src_[end])) ++end;
      emit(TokenType::Name, src_.substr(pos, end - pos), pos);
      return end;
    }
    if (c == '\'' || c == '"') return lex_string(pos);
    static constexpr std::string_view kTwoChar[] = {"//", "**", "==", "!=", "<=", ">="};
    for (std::string_view op : kTwoChar) {
      if (starts_with(pos, op)) {
        emit(TokenType::Operator, std::string(op), pos);
        return pos + 2;
      }
    }
    if (std::string_view("+-/*%~[](){}|,.:;=<>").find(c) == std::string_view::npos) {
      std::string shown = c == '!' ? "!" : std::string(1, c);
      syntax_error(name_, loc(pos), "unexpected character '" + shown + "'");
    }
    if (c == '(' || c == '[' || c == '{') {
      brackets.emplace_back(c, pos);
    } else if (c == ')' || c == ']' || c == '}') {
      const char want = c == ')' ? '(' : c == ']' ? '[' : '{';
      if (brackets.empty()) syntax_error(name_, loc(pos), std::string("unexpected '") + c + "'");
      if (brackets.back().first != want) {
        const char close = brackets.back().first == '('   ? ')'
                           : brackets.back().first == '[' ? ']'
                                                          : '}';
        syntax_error(name_, loc(pos),
                     std::string("unexpected '") + c + "', expected '" + close + "'");
      }
      brackets.pop_back();
    }
    emit(TokenType::Operator, std::string(1, c), pos);
    return pos + 1;
  }

  std::size_t lex_number(std::size_t start) {
    auto digits = [&](std::size_t p) {
      while (p < src_.size() && (is_digit(src_[p]) || (src_[p] == '_' && p + 1 < src_.size() &&
                                                       is_digit(src_[p + 1])))) {
        ++p;
      }
      return p;
    };
    std::size_t pos = digits(start);
    bool is_float = false;
    // A number right after '.' is an item index (x.0.1), never a float.
    if (!(start > 0 && src_[start - 1] == '.')) {
      if (pos + 1 < src_.size() && src_[pos] == '.' && is_digit(src_[pos + 1])) {
        pos = digits(pos + 1);
        is_float = true;
      }
      if (pos < src_.size() && (src_[pos] == 'e' || src_[pos] == 'E')) {
        std::size_t q = pos + 1;
        if (q < src_.size() && (src_[q] == '+' || src_[q] == '-')) ++q;
        if (q < src_.size() && is_digit(src_[q])) {
          pos = digits(q);
          is_float = true;
        }
      }
    }
    std::string text;
    for (std::size_t i = start; i < pos; ++i) {
      if (src_[i] != '_') text += src_[i];
    }
    Token token{is_float ? TokenType::Float : TokenType::Integer, text, loc(start)};
    if (is_float) {
      token.float_value = std::strtod(text.c_str(), nullptr);
    } else {
      auto res = std::from_chars(text.data(), text.data() + text.size(), token.int_value);
      if (res.ec != std::errc()) {
        syntax_error(name_, loc(start), "integer literal " + text + " is out of range");
      }
    }
    tokens_.push_back(std::move(token));
    return pos;
  }

  std::size_t lex_string(std::size_t start) {
    const char quote = src_[start];
    std::size_t p = start + 1;
    while (p < src_.size() && src_[p] != quote) p += src_[p] == '\\' ? 2 : 1;
    if (p >= src_.size()) syntax_error(name_, loc(start), "string literal is never closed");
    emit(TokenType::String, unescape(start + 1, p), start);
    return p + 1;
  }

  // Python string escapes, as Jinja decodes literals ("unicode-escape"); unknown escapes keep
  // their backslash.
  std::string unescape(std::size_t begin, std::size_t end) const {
    std::string out;
    for (std::size_t i = begin; i < end; ++i) {
      if (src_[i] != '\\' || i + 1 >= end) {
        out += src_[i];
        continue;
      }
      const char n = src_[++i];
      switch (n) {
        case '\n':
          break;  // line continuation
        case '\\':
          out += '\\';
          break;
        case '\'':
          out += '\'';
          break;
        case '"':
          out += '"';
          break;
        case 'a':
          out += '\a';
          break;
        case 'b':
          out += '\b';
          break;
        case 'f':
          out += '\f';
          break;
        case 'n':
          out += '\n';
          break;
        case 'r':
          out += '\r';
          break;
        case 't':
          out += '\t';
          break;
        case 'v':
          out += '\v';
          break;
        case 'x':
        case 'u':
        case 'U': {
          const int want = n == 'x' ? 2 : n == 'u' ? 4 : 8;
          char32_t cp = 0;
          for (int k = 0; k < want; ++k) {
            const int h = i + 1 + k < end ? hex_value(src_[i + 1 + k]) : -1;
            if (h < 0) {
              syntax_error(name_, loc(i - 1),
                           std::string("truncated \\") + n + " escape in string literal");
            }
            cp = cp * 16 + static_cast<char32_t>(h);
          }
          if (cp > 0x10FFFF) syntax_error(name_, loc(i - 1), "escape beyond U+10FFFF");
          append_utf8(out, cp);
          i += want;
          break;
        }
        default:
          if (n >= '0' && n <= '7') {
            char32_t cp = 0;
            int k = 0;
            for (; k < 3 && i + k < end && src_[i + k] >= '0' && src_[i + k] <= '7'; ++k) {
              cp = cp * 8 + static_cast<char32_t>(src_[i + k] - '0');
            }
            append_utf8(out, cp);
            i += k - 1;
          } else {
            out += '\\';
            out += n;
          }
      }
    }
    return out;
  }

  std::string src_;
  const Options& opt_;
  const std::string& name_;
  std::vector<std::size_t> line_starts_;
  std::vector<Token> tokens_;
  bool line_starting_ = true;
};

}  // namespace

std::vector<Token> tokenize(std::string_view source, const Options& options,
                            const std::string& template_name) {
  return Lexer(normalize_source(source, options.keep_trailing_newline), options, template_name)
      .run();
}

}  // namespace mlxn::engine::jinja::detail
