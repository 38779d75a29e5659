// JsonReader (see tokenizer_json_reader.h): RFC 8259 strings, numbers and structure, scanned in
// place.
#include "engine/tokenizer_json_reader.h"

#include "engine/tokenizer_unicode.h"
#include "mlxn/core/error.h"

namespace mlxn::engine::tok {

void JsonReader::fail(const std::string& what) const {
  throw Error(ErrorKind::Format, name_ + ": " + what + " (at byte " + std::to_string(pos_) + ")");
}

void JsonReader::skip_ws() {
  while (pos_ < text_.size()) {
    const char c = text_[pos_];
    if (c != ' ' && c != '\n' && c != '\r' && c != '\t') break;
    ++pos_;
  }
}

char JsonReader::peek() {
  skip_ws();
  return pos_ < text_.size() ? text_[pos_] : '\0';
}

bool JsonReader::consume(char c) {
  if (peek() != c) return false;
  ++pos_;
  return true;
}

void JsonReader::expect(char c) {
  if (!consume(c)) {
    fail(std::string("expected '") + c + "'" +
         (pos_ < text_.size() ? std::string(", found '") + text_[pos_] + "'" : ", found the end"));
  }
}

bool JsonReader::consume_null() {
  if (peek() != 'n') return false;
  if (text_.substr(pos_, 4) != "null") fail("invalid literal");
  pos_ += 4;
  return true;
}

std::uint32_t JsonReader::read_hex4() {
  if (pos_ + 4 > text_.size()) fail("truncated \\u escape");
  std::uint32_t v = 0;
  for (int k = 0; k < 4; ++k) {
    const char c = text_[pos_++];
    v <<= 4;
    if (c >= '0' && c <= '9') {
      v |= static_cast<std::uint32_t>(c - '0');
    } else if (c >= 'a' && c <= 'f') {
      v |= static_cast<std::uint32_t>(c - 'a' + 10);
    } else if (c >= 'A' && c <= 'F') {
      v |= static_cast<std::uint32_t>(c - 'A' + 10);
    } else {
      fail("invalid \\u escape");
    }
  }
  return v;
}

void JsonReader::read_string(std::string& out) {
  expect('"');
  out.clear();
  const std::size_t start = pos_;
  // Fast path: no escapes before the closing quote.
  while (pos_ < text_.size() && text_[pos_] != '"' && text_[pos_] != '\\') {
    if (static_cast<unsigned char>(text_[pos_]) < 0x20) fail("control character in a string");
    ++pos_;
  }
  out.assign(text_.substr(start, pos_ - start));
  while (true) {
    if (pos_ >= text_.size()) fail("unterminated string");
    const char c = text_[pos_++];
    if (c == '"') break;
    if (c != '\\') {
      if (static_cast<unsigned char>(c) < 0x20) fail("control character in a string");
      out += c;
      continue;
    }
    if (pos_ >= text_.size()) fail("unterminated string");
    const char e = text_[pos_++];
    switch (e) {
      case '"':
      case '\\':
      case '/':
        out += e;
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
      case 'u': {
        std::uint32_t cp = read_hex4();
        if (cp >= 0xD800 && cp <= 0xDBFF) {
          if (text_.substr(pos_, 2) != "\\u") fail("lone surrogate in \\u escape");
          pos_ += 2;
          const std::uint32_t lo = read_hex4();
          if (lo < 0xDC00 || lo > 0xDFFF) fail("invalid surrogate pair in \\u escape");
          cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
        } else if (cp >= 0xDC00 && cp <= 0xDFFF) {
          fail("lone surrogate in \\u escape");
        }
        append_utf8(out, static_cast<char32_t>(cp));
        break;
      }
      default:
        fail(std::string("invalid escape \\") + e);
    }
  }
  if (find_invalid_utf8(out) != std::string::npos) fail("string is not valid UTF-8");
}

std::int64_t JsonReader::read_int() {
  skip_ws();
  const std::size_t start = pos_;
  bool neg = false;
  if (pos_ < text_.size() && text_[pos_] == '-') {
    neg = true;
    ++pos_;
  }
  std::int64_t v = 0;
  std::size_t digits = 0;
  while (pos_ < text_.size() && text_[pos_] >= '0' && text_[pos_] <= '9') {
    if (v > (INT64_MAX - 9) / 10) fail("integer out of range");
    v = v * 10 + (text_[pos_++] - '0');
    ++digits;
  }
  if (digits == 0 ||
      (pos_ < text_.size() && (text_[pos_] == '.' || text_[pos_] == 'e' || text_[pos_] == 'E'))) {
    pos_ = start;
    fail("expected an integer");
  }
  return neg ? -v : v;
}

void JsonReader::skip_string() {
  ++pos_;  // opening quote
  while (pos_ < text_.size()) {
    const char c = text_[pos_++];
    if (c == '\\') {
      ++pos_;
    } else if (c == '"') {
      return;
    }
  }
  fail("unterminated string");
}

std::string_view JsonReader::skip_value() {
  const char c = peek();
  const std::size_t start = pos_;
  if (c == '"') {
    skip_string();
  } else if (c == '{' || c == '[') {
    // Brackets balance outside strings; the DOM parser that reads this text checks the rest.
    int depth = 0;
    while (pos_ < text_.size()) {
      const char d = text_[pos_];
      if (d == '"') {
        skip_string();
        continue;
      }
      ++pos_;
      if (d == '{' || d == '[') ++depth;
      if (d == '}' || d == ']') {
        if (--depth == 0) break;
      }
    }
    if (depth != 0) fail("unbalanced brackets");
  } else {
    // A number or literal: up to the next delimiter.
    while (pos_ < text_.size()) {
      const char d = text_[pos_];
      if (d == ',' || d == '}' || d == ']' || d == ' ' || d == '\n' || d == '\r' || d == '\t') {
        break;
      }
      ++pos_;
    }
    if (pos_ == start) fail("expected a value");
  }
  return text_.substr(start, pos_ - start);
}

}  // namespace mlxn::engine::tok
