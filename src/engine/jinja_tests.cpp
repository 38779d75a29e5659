// Jinja's built-in tests (x is name(args)) with the semantics of jinja2.tests (3.1). Like
// Python's Jinja, undefined counts as iterable and as a sequence, and bools count as numbers.
#include <string>

#include "engine/jinja_filters.h"
#include "engine/jinja_ops.h"
#include "engine/jinja_strings.h"

namespace mlxn::engine::jinja::detail {

namespace {

using TestFn = bool (*)(const Value& input, const CallArgs& args);

Value test_arg(const CallArgs& args, const char* test) {
  Params p(args, std::string("test '") + test + "'", {"other"});
  if (!p[0]) fail(std::string("test '") + test + "' needs an argument");
  return *p[0];
}

void no_args(const CallArgs& args, const char* test) {
  Params p(args, std::string("test '") + test + "'", {});
}

bool t_defined(const Value& v, const CallArgs& a) {
  return no_args(a, "defined"), !v.is_undefined();
}
bool t_undefined(const Value& v, const CallArgs& a) {
  return no_args(a, "undefined"), v.is_undefined();
}
bool t_none(const Value& v, const CallArgs& a) {
  return no_args(a, "none"), v.is_none();
}
bool t_boolean(const Value& v, const CallArgs& a) {
  return no_args(a, "boolean"), v.is_bool();
}
bool t_true(const Value& v, const CallArgs& a) {
  return no_args(a, "true"), v.is_bool() && v.as_bool();
}
bool t_false(const Value& v, const CallArgs& a) {
  return no_args(a, "false"), v.is_bool() && !v.as_bool();
}
bool t_integer(const Value& v, const CallArgs& a) {
  return no_args(a, "integer"), v.is_int();
}
bool t_float(const Value& v, const CallArgs& a) {
  return no_args(a, "float"), v.is_float();
}
bool t_number(const Value& v, const CallArgs& a) {
  return no_args(a, "number"), v.is_number();
}
bool t_string(const Value& v, const CallArgs& a) {
  return no_args(a, "string"), v.is_string();
}
bool t_callable(const Value& v, const CallArgs& a) {
  return no_args(a, "callable"), v.is_function();
}
bool t_escaped(const Value&, const CallArgs& a) {
  return no_args(a, "escaped"), false;
}
bool t_mapping(const Value& v, const CallArgs& a) {
  no_args(a, "mapping");
  return v.is_object() && !v.as_object().is_namespace();
}
bool t_iterable(const Value& v, const CallArgs& a) {
  no_args(a, "iterable");
  return v.is_undefined() || v.is_string() || v.is_array() ||
         (v.is_object() && !v.as_object().is_namespace());
}
bool t_sequence(const Value& v, const CallArgs& a) {
  no_args(a, "sequence");
  return v.is_undefined() || v.is_string() || v.is_array() ||
         (v.is_object() && !v.as_object().is_namespace());
}
bool t_even(const Value& v, const CallArgs& a) {
  no_args(a, "even");
  return binary_op(Op::Mod, v, Value(std::int64_t{2})) == Value(std::int64_t{0});
}
bool t_odd(const Value& v, const CallArgs& a) {
  no_args(a, "odd");
  return binary_op(Op::Mod, v, Value(std::int64_t{2})) == Value(std::int64_t{1});
}
bool t_divisibleby(const Value& v, const CallArgs& a) {
  return binary_op(Op::Mod, v, test_arg(a, "divisibleby")) == Value(std::int64_t{0});
}
bool t_eq(const Value& v, const CallArgs& a) {
  return v == test_arg(a, "==");
}
bool t_ne(const Value& v, const CallArgs& a) {
  return v != test_arg(a, "!=");
}
bool t_lt(const Value& v, const CallArgs& a) {
  return less_than(v, test_arg(a, "<"));
}
bool t_le(const Value& v, const CallArgs& a) {
  const Value o = test_arg(a, "<=");
  return !less_than(o, v);
}
bool t_gt(const Value& v, const CallArgs& a) {
  return less_than(test_arg(a, ">"), v);
}
bool t_ge(const Value& v, const CallArgs& a) {
  const Value o = test_arg(a, ">=");
  return !less_than(v, o);
}
bool t_in(const Value& v, const CallArgs& a) {
  return contains(test_arg(a, "in"), v);
}
bool t_sameas(const Value& v, const CallArgs& a) {
  const Value o = test_arg(a, "sameas");
  if (v.kind() != o.kind()) return false;
  if (v.is_array()) return &v.as_array() == &o.as_array();
  if (v.is_object()) return &v.as_object() == &o.as_object();
  return v == o;
}
bool t_lower(const Value& v, const CallArgs& a) {
  no_args(a, "lower");
  return v.is_string() && lower(v.as_string()) == v.as_string();
}
bool t_upper(const Value& v, const CallArgs& a) {
  no_args(a, "upper");
  return v.is_string() && upper(v.as_string()) == v.as_string();
}
bool t_filter(const Value& v, const CallArgs& a) {
  no_args(a, "filter");
  return v.is_string() && has_filter(v.as_string());
}
bool t_test(const Value& v, const CallArgs& a) {
  no_args(a, "test");
  return v.is_string() && has_test(v.as_string());
}

struct TestEntry {
  std::string_view name;
  TestFn fn;
};

constexpr TestEntry kTests[] = {
    {"boolean", t_boolean},
    {"callable", t_callable},
    {"defined", t_defined},
    {"divisibleby", t_divisibleby},
    {"eq", t_eq},
    {"equalto", t_eq},
    {"==", t_eq},
    {"escaped", t_escaped},
    {"even", t_even},
    {"false", t_false},
    {"filter", t_filter},
    {"float", t_float},
    {"ge", t_ge},
    {">=", t_ge},
    {"gt", t_gt},
    {">", t_gt},
    {"greaterthan", t_gt},
    {"in", t_in},
    {"integer", t_integer},
    {"iterable", t_iterable},
    {"le", t_le},
    {"<=", t_le},
    {"lower", t_lower},
    {"lt", t_lt},
    {"<", t_lt},
    {"lessthan", t_lt},
    {"mapping", t_mapping},
    {"ne", t_ne},
    {"!=", t_ne},
    {"none", t_none},
    {"number", t_number},
    {"odd", t_odd},
    {"sameas", t_sameas},
    {"sequence", t_sequence},
    {"string", t_string},
    {"test", t_test},
    {"true", t_true},
    {"undefined", t_undefined},
    {"upper", t_upper},
};

const TestEntry* find_test(std::string_view name) {
  for (const TestEntry& t : kTests) {
    if (t.name == name) return &t;
  }
  return nullptr;
}

}  // namespace

bool has_test(std::string_view name) {
  return find_test(name) != nullptr;
}

bool apply_test(std::string_view name, const Value& input, const CallArgs& args) {
  const TestEntry* t = find_test(name);
  if (!t) fail("no test named '" + std::string(name) + "'");
  return t->fn(input, args);
}

}  // namespace mlxn::engine::jinja::detail
