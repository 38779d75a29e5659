// Private to the Jinja engine: the operations templates apply to values -- attribute and item
// access, slicing, iteration, `in`, ordering, arithmetic, %-formatting -- with Python's rules
// and Jinja's undefined handling, plus the bound methods of str, list and dict and the global
// functions (range, dict, namespace, joiner, raise_exception, strftime_now).
#pragma once

#include <initializer_list>
#include <string>
#include <string_view>
#include <vector>

#include "engine/jinja_ast.h"
#include "mlxn/engine/jinja.h"

namespace mlxn::engine::jinja::detail {

/// Binds call arguments to named parameters as Python does; errors name `callee`.
class Params {
 public:
  Params(const CallArgs& args, std::string callee, std::initializer_list<std::string_view> names);
  /// The argument for parameter i, or null when it was not given.
  const Value* operator[](std::size_t i) const { return bound_[i]; }
  /// The argument for parameter i, or `fallback` when it was not given or is none.
  Value get(std::size_t i, Value fallback) const;
  const std::string& callee() const { return callee_; }

 private:
  std::string callee_;
  std::vector<const Value*> bound_;
};

/// Throws RenderError for an undefined value used where a value is needed.
void require_defined(const Value& v);
/// An int (or bool) argument, or a RenderError naming `what`.
std::int64_t to_int(const Value& v, std::string_view what);
/// A string argument, or a RenderError naming `what`.
const std::string& to_str(const Value& v, std::string_view what);

/// obj.name: a bound method of str/list/dict, else a dict entry; undefined when missing.
Value get_attr(const Value& obj, std::string_view name);
/// obj[key]: list and string index (negative from the end), dict key; undefined when missing.
Value get_item(const Value& obj, const Value& key);
/// obj[start:stop:step] on a list or string; unset parts are none or undefined.
Value slice(const Value& obj, const Value& start, const Value& stop, const Value& step);
/// The items a for loop visits: list items, dict keys, string code points; none for undefined.
Value::Array iterate(const Value& v);
/// `item in container`.
bool contains(const Value& container, const Value& item);
/// Python's a < b for numbers, strings and lists; RenderError for other pairs.
bool less_than(const Value& a, const Value& b);
/// + - * / // % ** on values, and unary - +.
Value binary_op(Op op, const Value& a, const Value& b);
Value unary_op(Op op, const Value& a);
/// Python's `format % args` (args: a list for several values, else one value).
std::string percent_format(const std::string& format, const Value& args);

/// The method `name` of a str, list or dict bound to `obj`; undefined when there is none.
Value bound_method(const Value& obj, std::string_view name);
/// The global functions every template sees.
const Object& global_functions();

}  // namespace mlxn::engine::jinja::detail
