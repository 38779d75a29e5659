// Jinja2 templates for chat templates: a dynamic Value (the data a template sees), templates
// parsed once and rendered many times, and the chat-template entry point that renders the way
// Hugging Face transformers does (trim_blocks, lstrip_blocks, raise_exception, strftime_now,
// tojson without key sorting). Covers the Jinja subset that published chat templates use.
//
// Where it differs from Python's Jinja: tuples are lists (they print as [a, b]); an attribute
// or item of an undefined value is undefined instead of an error (printing, iterating and
// testing undefined behave as in Jinja; calling it or doing arithmetic with it fails); ints
// are 64-bit; case mapping covers Latin, Greek and Cyrillic letters only; include, extends,
// import, block and recursive loops are not supported.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <variant>
#include <vector>

namespace mlxn::engine::jinja {

class Object;
struct Callable;
struct CallArgs;

/// How Value::to_json formats, following Python's json.dumps.
struct JsonFormat {
  /// Spaces per nesting level; negative: everything on one line.
  int indent = -1;
  /// Item and key separators; unset: json.dumps' defaults (", " or "," with indent, and ": ").
  std::optional<std::string> item_separator;
  std::optional<std::string> key_separator;
  bool sort_keys = false;
  /// Escape non-ASCII characters as \uXXXX (false keeps UTF-8, as transformers' tojson does).
  bool ensure_ascii = false;
};

/// A template value with Python semantics: undefined, none, bool, int, float, string, list,
/// dict (insertion-ordered, string keys) or function. Lists and dicts are shared by reference
/// like Python objects: copies of a Value see each other's mutations.
class Value {
 public:
  enum class Kind : std::uint8_t {
    Undefined,
    None,
    Bool,
    Int,
    Float,
    String,
    Array,
    Object,
    Function
  };
  using Array = std::vector<Value>;

  /// Undefined (what a missing variable evaluates to).
  Value() = default;
  Value(std::nullptr_t) : data_(NoneTag{}) {}
  Value(bool b) : data_(b) {}
  Value(int i) : data_(static_cast<std::int64_t>(i)) {}
  Value(std::int64_t i) : data_(i) {}
  Value(double d) : data_(d) {}
  Value(const char* s) : Value(std::string(s)) {}
  Value(std::string_view s) : Value(std::string(s)) {}
  Value(std::string s);
  Value(Array items);
  Value(Object object);

  /// Undefined with the message used when it is misused (e.g. "'x' is undefined").
  static Value undefined(std::string hint);
  static Value none() { return Value(nullptr); }
  static Value array(Array items = {}) { return Value(std::move(items)); }
  /// An empty dict.
  static Value object();
  /// A function a template can call, named for error messages.
  static Value function(std::string name, std::function<Value(const CallArgs&)> fn);
  /// Parses JSON text (objects keep their key order). Throws Error(Format) on malformed input.
  static Value from_json_text(std::string_view json);

  Kind kind() const { return static_cast<Kind>(data_.index()); }
  bool is_undefined() const { return kind() == Kind::Undefined; }
  bool is_none() const { return kind() == Kind::None; }
  bool is_bool() const { return kind() == Kind::Bool; }
  bool is_int() const { return kind() == Kind::Int; }
  bool is_float() const { return kind() == Kind::Float; }
  /// Int, float or bool (bool counts as a number, as in Python).
  bool is_number() const { return is_int() || is_float() || is_bool(); }
  bool is_string() const { return kind() == Kind::String; }
  bool is_array() const { return kind() == Kind::Array; }
  bool is_object() const { return kind() == Kind::Object; }
  bool is_function() const { return kind() == Kind::Function; }

  /// Typed access; each throws Error(InvalidArgument) naming both kinds on a mismatch.
  bool as_bool() const;
  std::int64_t as_int() const;
  double as_float() const;
  /// Int, float or bool as a double.
  double as_number() const;
  const std::string& as_string() const;
  const Array& as_array() const;
  Array& as_array();
  const Object& as_object() const;
  Object& as_object();
  const Callable& as_function() const;
  /// The message of an undefined value ("" for other kinds or when none was given).
  const std::string& undefined_hint() const;

  /// Python truthiness: false for undefined, none, false, 0, 0.0, "", [] and {}.
  bool truthy() const;
  /// Python str(): what {{ value }} prints ("" for undefined, "None", "True", "[1, 'a']").
  std::string str() const;
  /// Python repr(): strings quoted, containers as for str().
  std::string repr() const;
  /// JSON text as Python's json.dumps writes it. Throws Error(InvalidArgument) for undefined
  /// values and functions, which JSON cannot hold.
  std::string to_json(const JsonFormat& format = {}) const;

  /// Array append / dict insert-or-replace on this (shared) value; return *this for chaining.
  Value& push_back(Value item);
  Value& set(std::string key, Value item);
  /// Dict entry by key, or undefined when absent or when this is not a dict.
  Value get(std::string_view key) const;
  /// Element count of a list, dict or string (in code points); 0 for other kinds.
  std::size_t size() const;

  /// A copy that shares no list or dict with this one.
  Value deep_copy() const;

  /// Python ==: numbers compare by value across int/float/bool, containers element-wise,
  /// dicts regardless of order, undefined equals only undefined.
  friend bool operator==(const Value& a, const Value& b);
  friend bool operator!=(const Value& a, const Value& b) { return !(a == b); }

  /// "Undefined", "NoneType", "bool", "int", "float", "str", "list", "dict" or "function".
  const char* type_name() const;

 private:
  struct NoneTag {};
  struct UndefinedTag {
    std::shared_ptr<const std::string> hint;
  };
  // The alternatives follow Kind's order so that index() is the kind.
  std::variant<UndefinedTag, NoneTag, bool, std::int64_t, double,
               std::shared_ptr<const std::string>, std::shared_ptr<Array>, std::shared_ptr<Object>,
               std::shared_ptr<const Callable>>
      data_;
};

/// A dict: string keys in insertion order, as Python dicts iterate.
class Object {
 public:
  using Entry = std::pair<std::string, Value>;

  const Value* find(std::string_view key) const;
  Value* find(std::string_view key);
  bool contains(std::string_view key) const { return find(key) != nullptr; }
  /// Replaces the value of an existing key in place, or appends a new entry.
  void set(std::string key, Value value);
  /// Removes a key; false when it was absent.
  bool erase(std::string_view key);
  std::size_t size() const { return entries_.size(); }
  bool empty() const { return entries_.empty(); }
  std::vector<Entry>::const_iterator begin() const { return entries_.begin(); }
  std::vector<Entry>::const_iterator end() const { return entries_.end(); }
  const std::vector<Entry>& entries() const { return entries_; }

  /// A namespace() object: the only kind whose attributes {% set ns.x = ... %} may assign.
  bool is_namespace() const { return namespace_; }
  void set_namespace(bool is_namespace) { namespace_ = is_namespace; }

 private:
  void rebuild_index();

  std::vector<Entry> entries_;
  // Key -> position, kept only for larger dicts; small ones are scanned.
  std::unordered_map<std::string, std::size_t> index_;
  bool namespace_ = false;
};

/// Positional and keyword arguments of a call made by a template.
struct CallArgs {
  std::vector<Value> positional;
  std::vector<std::pair<std::string, Value>> keyword;
};

/// A function value: globals such as range(), macros, bound methods like 'abc'.upper.
struct Callable {
  std::string name;
  std::function<Value(const CallArgs&)> fn;
};

/// Lexer settings, as in jinja2.Environment.
struct Options {
  /// Remove the first newline after a block tag ({% ... %}) or comment.
  bool trim_blocks = false;
  /// Strip spaces and tabs from the start of a line up to a block tag or comment.
  bool lstrip_blocks = false;
  /// Keep a single trailing newline of the source (Jinja drops it by default).
  bool keep_trailing_newline = false;
};

namespace detail {
struct Program;
}

/// A parsed template; cheap to copy, safe to render from several threads at once.
class Template {
 public:
  /// Parses `source`. Syntax errors throw Error(Format) naming the template, the line and column
  /// and what was expected; unknown filters and tests are syntax errors too.
  static Template parse(std::string_view source, std::string_view name = "template",
                        const Options& options = {});

  /// Renders with the variables of `context` (a dict; undefined means none). Runtime errors,
  /// including raise_exception() from the template, throw Error(InvalidArgument) naming the
  /// template and line. The context is not modified.
  std::string render(const Value& context) const;

  const std::string& name() const;

 private:
  explicit Template(std::shared_ptr<const detail::Program> program);
  std::shared_ptr<const detail::Program> program_;
};

/// Parses a chat template with the settings transformers renders chat templates with
/// (trim_blocks and lstrip_blocks on).
Template parse_chat_template(std::string_view source, std::string_view name = "chat_template");

/// Renders a chat template as transformers' apply_chat_template(tokenize=False) does: the
/// context is `extra` (bos_token, eos_token, tools, enable_thinking, date_string, ...) plus
/// `messages` and `add_generation_prompt`; `tools` and `documents` are none unless `extra`
/// gives them. `messages`: a list of dicts with "role" and "content" (and "tool_calls", ...).
std::string render_chat_template(const Template& chat_template, const Value& messages,
                                 bool add_generation_prompt, const Value& extra = Value());
std::string render_chat_template(std::string_view template_source, const Value& messages,
                                 bool add_generation_prompt, const Value& extra = Value());

}  // namespace mlxn::engine::jinja
