// JsonReader: a forward-only JSON scanner for the big parts of tokenizer files (a vocabulary of
// 262k entries and 500k merges). It reads strings, integers and structure in place and can hand
// back the raw text of any value, so only small values go through a DOM parser; building a DOM of
// the whole file took seconds.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace mlxn::engine::tok {

class JsonReader {
 public:
  /// Reads `text`; `name` stands for the file in Format errors (which also give the offset).
  JsonReader(std::string_view text, std::string name) : text_(text), name_(std::move(name)) {}

  /// The next non-whitespace character (0 at the end).
  char peek();
  /// Consumes `c` (after whitespace) when it is next; returns whether it was.
  bool consume(char c);
  /// Consumes `c` (after whitespace) or throws.
  void expect(char c);
  /// Reads a string into `out` (escapes decoded, UTF-8 checked).
  void read_string(std::string& out);
  /// Reads an integer.
  std::int64_t read_int();
  /// Skips one value of any type and returns its raw text.
  std::string_view skip_value();
  /// True (and consumed) when the next value is null.
  bool consume_null();
  /// Throws Format "<name>: <what> (at byte N)".
  [[noreturn]] void fail(const std::string& what) const;

  /// Calls on_member(key) for each member of an object; on_member must consume the value.
  template <class F>
  void object(F&& on_member) {
    expect('{');
    if (consume('}')) return;
    std::string key;
    do {
      read_string(key);
      expect(':');
      on_member(key);
    } while (consume(','));
    expect('}');
  }
  /// Calls on_element(index) for each element of an array; on_element must consume it.
  template <class F>
  void array(F&& on_element) {
    expect('[');
    if (consume(']')) return;
    std::size_t i = 0;
    do {
      on_element(i++);
    } while (consume(','));
    expect(']');
  }

 private:
  void skip_ws();
  void skip_string();
  std::uint32_t read_hex4();

  std::string_view text_;
  std::string name_;
  std::size_t pos_ = 0;
};

}  // namespace mlxn::engine::tok
