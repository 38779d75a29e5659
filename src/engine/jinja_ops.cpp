// Operations on template values with Python's semantics: access, slicing, iteration,
// membership, ordering, arithmetic and %-formatting. Undefined values print and iterate as
// empty but make arithmetic and comparisons fail with the message they carry.
#include "engine/jinja_ops.h"

#include <cmath>
#include <cstdio>

#include "engine/jinja_strings.h"

namespace mlxn::engine::jinja::detail {

// ---- argument binding and conversions ----

Params::Params(const CallArgs& args, std::string callee,
               std::initializer_list<std::string_view> names)
    : callee_(std::move(callee)), bound_(names.size(), nullptr) {
  if (args.positional.size() > names.size()) {
    fail(callee_ + " takes at most " + std::to_string(names.size()) + " argument(s), " +
         std::to_string(args.positional.size()) + " given");
  }
  for (std::size_t i = 0; i < args.positional.size(); ++i) bound_[i] = &args.positional[i];
  for (const auto& [key, value] : args.keyword) {
    std::size_t i = 0;
    for (std::string_view n : names) {
      if (n == key) break;
      ++i;
    }
    if (i == names.size()) fail(callee_ + " got an unexpected keyword argument '" + key + "'");
    if (bound_[i]) fail(callee_ + " got multiple values for argument '" + key + "'");
    bound_[i] = &value;
  }
}

Value Params::get(std::size_t i, Value fallback) const {
  if (!bound_[i] || bound_[i]->is_none()) return fallback;
  return *bound_[i];
}

void require_defined(const Value& v) {
  if (!v.is_undefined()) return;
  fail(v.undefined_hint().empty() ? "an undefined value was used" : v.undefined_hint());
}

std::int64_t to_int(const Value& v, std::string_view what) {
  require_defined(v);
  if (v.is_int()) return v.as_int();
  if (v.is_bool()) return v.as_bool() ? 1 : 0;
  fail(std::string(what) + " must be an integer, not " + v.type_name());
}

const std::string& to_str(const Value& v, std::string_view what) {
  require_defined(v);
  if (!v.is_string()) fail(std::string(what) + " must be a string, not " + v.type_name());
  return v.as_string();
}

namespace {

std::string no_attribute(const Value& obj, std::string_view name) {
  return std::string("'") + obj.type_name() + " object' has no attribute '" + std::string(name) +
         "'";
}

bool int_like(const Value& v) {
  return v.is_int() || v.is_bool();
}

std::int64_t int_of(const Value& v) {
  return v.is_bool() ? (v.as_bool() ? 1 : 0) : v.as_int();
}

[[noreturn]] void overflow() {
  fail("integer overflow (values beyond 64 bits)");
}

// Index into a sequence of n items, negative counting from the end; -1 when out of range.
std::int64_t resolve_index(std::int64_t i, std::size_t n) {
  const auto len = static_cast<std::int64_t>(n);
  if (i < 0) i += len;
  return (i < 0 || i >= len) ? -1 : i;
}

}  // namespace

// ---- access ----

Value get_attr(const Value& obj, std::string_view name) {
  switch (obj.kind()) {
    case Value::Kind::Undefined:
      return obj;  // lenient: the original hint travels along
    case Value::Kind::Object: {
      // Python looks up attributes (dict methods) before items; namespaces have only items.
      if (!obj.as_object().is_namespace()) {
        Value method = bound_method(obj, name);
        if (!method.is_undefined()) return method;
      }
      if (const Value* v = obj.as_object().find(name)) return *v;
      return Value::undefined(no_attribute(obj, name));
    }
    case Value::Kind::String:
    case Value::Kind::Array: {
      Value method = bound_method(obj, name);
      if (!method.is_undefined()) return method;
      return Value::undefined(no_attribute(obj, name));
    }
    default:
      return Value::undefined(no_attribute(obj, name));
  }
}

Value get_item(const Value& obj, const Value& key) {
  switch (obj.kind()) {
    case Value::Kind::Undefined:
      return obj;
    case Value::Kind::Object:
      if (key.is_string()) {
        if (const Value* v = obj.as_object().find(key.as_string())) return *v;
        if (!obj.as_object().is_namespace()) {
          Value method = bound_method(obj, key.as_string());
          if (!method.is_undefined()) return method;
        }
      }
      return Value::undefined("'dict object' has no attribute " + key.repr());
    case Value::Kind::Array:
      if (int_like(key)) {
        const auto& items = obj.as_array();
        const std::int64_t i = resolve_index(int_of(key), items.size());
        if (i >= 0) return items[static_cast<std::size_t>(i)];
        return Value::undefined("list index " + key.repr() + " is out of range");
      }
      if (key.is_string()) return get_attr(obj, key.as_string());
      return Value::undefined("list indices must be integers, not " + std::string(key.type_name()));
    case Value::Kind::String:
      if (int_like(key)) {
        const auto cps = code_points(obj.as_string());
        const std::int64_t i = resolve_index(int_of(key), cps.size());
        if (i >= 0) return Value(std::string(cps[static_cast<std::size_t>(i)]));
        return Value::undefined("string index " + key.repr() + " is out of range");
      }
      if (key.is_string()) return get_attr(obj, key.as_string());
      return Value::undefined("string indices must be integers");
    default:
      return Value::undefined(std::string("'") + obj.type_name() + " object' is not subscriptable");
  }
}

Value slice(const Value& obj, const Value& start, const Value& stop, const Value& step) {
  if (obj.is_undefined()) return obj;
  auto part = [](const Value& v, const char* what) -> std::optional<std::int64_t> {
    if (v.is_undefined() || v.is_none()) return std::nullopt;
    return to_int(v, what);
  };
  const std::int64_t st = part(step, "slice step").value_or(1);
  if (st == 0) fail("slice step cannot be zero");
  std::vector<std::string_view> cps;
  std::size_t n = 0;
  if (obj.is_array()) {
    n = obj.as_array().size();
  } else if (obj.is_string()) {
    cps = code_points(obj.as_string());
    n = cps.size();
  } else {
    fail(std::string("'") + obj.type_name() + "' object cannot be sliced");
  }
  // Python's slice.indices().
  const auto len = static_cast<std::int64_t>(n);
  const std::int64_t lower = st > 0 ? 0 : -1;
  const std::int64_t upper = st > 0 ? len : len - 1;
  auto clamp = [&](std::optional<std::int64_t> v, std::int64_t dflt) {
    if (!v) return dflt;
    std::int64_t x = *v;
    if (x < 0) {
      x += len;
      if (x < lower) x = lower;
    } else if (x > upper) {
      x = upper;
    }
    return x;
  };
  const std::int64_t from = clamp(part(start, "slice start"), st > 0 ? lower : upper);
  const std::int64_t to = clamp(part(stop, "slice stop"), st > 0 ? upper : lower);
  if (obj.is_array()) {
    Value::Array out;
    for (std::int64_t i = from; st > 0 ? i < to : i > to; i += st) {
      out.push_back(obj.as_array()[static_cast<std::size_t>(i)]);
    }
    return Value(std::move(out));
  }
  std::string out;
  for (std::int64_t i = from; st > 0 ? i < to : i > to; i += st) {
    out += cps[static_cast<std::size_t>(i)];
  }
  return Value(std::move(out));
}

Value::Array iterate(const Value& v) {
  switch (v.kind()) {
    case Value::Kind::Undefined:
      return {};
    case Value::Kind::Array:
      return v.as_array();
    case Value::Kind::Object: {
      Value::Array keys;
      for (const auto& [k, unused] : v.as_object()) keys.emplace_back(k);
      return keys;
    }
    case Value::Kind::String: {
      Value::Array chars;
      for (std::string_view cp : code_points(v.as_string())) chars.emplace_back(cp);
      return chars;
    }
    default:
      fail(std::string("'") + v.type_name() + "' object is not iterable");
  }
}

bool contains(const Value& container, const Value& item) {
  switch (container.kind()) {
    case Value::Kind::Undefined:
      return false;
    case Value::Kind::String:
      if (!item.is_string()) {
        require_defined(item);
        fail(std::string("'in <string>' requires a string as left operand, not ") +
             item.type_name());
      }
      return container.as_string().find(item.as_string()) != std::string::npos;
    case Value::Kind::Array:
      for (const Value& v : container.as_array()) {
        if (v == item) return true;
      }
      return false;
    case Value::Kind::Object:
      return item.is_string() && container.as_object().contains(item.as_string());
    default:
      fail(std::string("argument of type '") + container.type_name() + "' is not iterable");
  }
}

bool less_than(const Value& a, const Value& b) {
  require_defined(a);
  require_defined(b);
  if (a.is_number() && b.is_number()) {
    if (int_like(a) && int_like(b)) return int_of(a) < int_of(b);
    return a.as_number() < b.as_number();
  }
  if (a.is_string() && b.is_string()) return a.as_string() < b.as_string();
  if (a.is_array() && b.is_array()) {
    const auto& x = a.as_array();
    const auto& y = b.as_array();
    for (std::size_t i = 0; i < x.size() && i < y.size(); ++i) {
      if (x[i] != y[i]) return less_than(x[i], y[i]);
    }
    return x.size() < y.size();
  }
  fail(std::string("'<' is not supported between instances of '") + a.type_name() + "' and '" +
       b.type_name() + "'");
}

// ---- arithmetic ----

namespace {

const char* op_symbol(Op op) {
  switch (op) {
    case Op::Add:
      return "+";
    case Op::Sub:
      return "-";
    case Op::Mul:
      return "*";
    case Op::Div:
      return "/";
    case Op::FloorDiv:
      return "//";
    case Op::Mod:
      return "%";
    case Op::Pow:
      return "**";
    case Op::Concat:
      return "~";
    case Op::Neg:
      return "-";
    case Op::Pos:
      return "+";
  }
  return "?";
}

[[noreturn]] void bad_operands(Op op, const Value& a, const Value& b) {
  fail(std::string("unsupported operand type(s) for ") + op_symbol(op) + ": '" + a.type_name() +
       "' and '" + b.type_name() + "'");
}

Value repeat(const Value& seq, std::int64_t times) {
  if (seq.is_string()) {
    std::string out;
    for (std::int64_t i = 0; i < times; ++i) out += seq.as_string();
    return Value(std::move(out));
  }
  Value::Array out;
  for (std::int64_t i = 0; i < times; ++i) {
    out.insert(out.end(), seq.as_array().begin(), seq.as_array().end());
  }
  return Value(std::move(out));
}

Value int_arith(Op op, std::int64_t x, std::int64_t y) {
  std::int64_t r = 0;
  switch (op) {
    case Op::Add:
      if (__builtin_add_overflow(x, y, &r)) overflow();
      return Value(r);
    case Op::Sub:
      if (__builtin_sub_overflow(x, y, &r)) overflow();
      return Value(r);
    case Op::Mul:
      if (__builtin_mul_overflow(x, y, &r)) overflow();
      return Value(r);
    case Op::Div:
      if (y == 0) fail("division by zero");
      return Value(static_cast<double>(x) / static_cast<double>(y));
    case Op::FloorDiv: {
      if (y == 0) fail("integer division or modulo by zero");
      if (x == INT64_MIN && y == -1) overflow();
      std::int64_t q = x / y;
      if ((x % y != 0) && ((x < 0) != (y < 0))) --q;  // Python floors toward -infinity
      return Value(q);
    }
    case Op::Mod: {
      if (y == 0) fail("integer division or modulo by zero");
      if (y == -1) return Value(std::int64_t{0});
      std::int64_t m = x % y;
      if (m != 0 && ((m < 0) != (y < 0))) m += y;  // the result takes the divisor's sign
      return Value(m);
    }
    case Op::Pow: {
      if (y < 0) return Value(std::pow(static_cast<double>(x), static_cast<double>(y)));
      std::int64_t result = 1;
      std::int64_t base = x;
      while (y > 0) {
        if (y & 1) {
          if (__builtin_mul_overflow(result, base, &result)) overflow();
        }
        y >>= 1;
        if (y > 0 && __builtin_mul_overflow(base, base, &base)) overflow();
      }
      return Value(result);
    }
    default:
      fail("bad integer operator");
  }
}

Value float_arith(Op op, double x, double y) {
  switch (op) {
    case Op::Add:
      return Value(x + y);
    case Op::Sub:
      return Value(x - y);
    case Op::Mul:
      return Value(x * y);
    case Op::Div:
      if (y == 0) fail("float division by zero");
      return Value(x / y);
    case Op::FloorDiv:
      if (y == 0) fail("float floor division by zero");
      return Value(std::floor(x / y));
    case Op::Mod: {
      if (y == 0) fail("float modulo by zero");
      double m = std::fmod(x, y);
      if (m != 0 && ((m < 0) != (y < 0))) m += y;
      return Value(m);
    }
    case Op::Pow:
      return Value(std::pow(x, y));
    default:
      fail("bad float operator");
  }
}

}  // namespace

Value binary_op(Op op, const Value& a, const Value& b) {
  require_defined(a);
  require_defined(b);
  if (a.is_number() && b.is_number()) {
    if (int_like(a) && int_like(b)) return int_arith(op, int_of(a), int_of(b));
    return float_arith(op, a.as_number(), b.as_number());
  }
  switch (op) {
    case Op::Add:
      if (a.is_string() && b.is_string()) return Value(a.as_string() + b.as_string());
      if (a.is_array() && b.is_array()) {
        Value::Array out = a.as_array();
        out.insert(out.end(), b.as_array().begin(), b.as_array().end());
        return Value(std::move(out));
      }
      break;
    case Op::Mul:
      if ((a.is_string() || a.is_array()) && int_like(b)) return repeat(a, int_of(b));
      if ((b.is_string() || b.is_array()) && int_like(a)) return repeat(b, int_of(a));
      break;
    case Op::Mod:
      if (a.is_string()) return Value(percent_format(a.as_string(), b));
      break;
    default:
      break;
  }
  bad_operands(op, a, b);
}

Value unary_op(Op op, const Value& a) {
  require_defined(a);
  if (!a.is_number()) {
    fail(std::string("bad operand type for unary ") + op_symbol(op) + ": '" + a.type_name() + "'");
  }
  if (op == Op::Pos) return a.is_bool() ? Value(int_of(a)) : a;
  if (a.is_float()) return Value(-a.as_float());
  const std::int64_t x = int_of(a);
  if (x == INT64_MIN) overflow();
  return Value(-x);
}

std::string percent_format(const std::string& format, const Value& args) {
  Value::Array values;
  if (args.is_array()) {
    values = args.as_array();
  } else {
    values.push_back(args);
  }
  std::size_t next = 0;
  std::string out;
  for (std::size_t i = 0; i < format.size(); ++i) {
    if (format[i] != '%') {
      out += format[i];
      continue;
    }
    // %[flags][width][.precision]conversion
    std::size_t j = i + 1;
    std::string spec = "%";
    while (j < format.size() && std::string_view("-+ 0#").find(format[j]) != std::string::npos) {
      spec += format[j++];
    }
    while (j < format.size() && format[j] >= '0' && format[j] <= '9') spec += format[j++];
    if (j < format.size() && format[j] == '.') {
      spec += format[j++];
      while (j < format.size() && format[j] >= '0' && format[j] <= '9') spec += format[j++];
    }
    if (j >= format.size()) fail("incomplete format in '" + format + "'");
    const char conv = format[j];
    i = j;
    if (conv == '%') {
      out += '%';
      continue;
    }
    if (next >= values.size()) fail("not enough arguments for format string '" + format + "'");
    const Value& v = values[next++];
    char buf[512];
    switch (conv) {
      case 's':
      case 'r': {
        const std::string text = conv == 's' ? v.str() : v.repr();
        std::snprintf(buf, sizeof(buf), (spec + "s").c_str(), text.c_str());
        out += text.size() < 256 ? std::string(buf) : text;
        break;
      }
      case 'd':
      case 'i':
      case 'x':
      case 'X':
      case 'o': {
        require_defined(v);
        if (!v.is_number()) fail(std::string("%") + conv + " format: a number is required");
        const long long n = v.is_float() ? static_cast<long long>(v.as_float()) : int_of(v);
        std::snprintf(buf, sizeof(buf), (spec + "ll" + (conv == 'i' ? 'd' : conv)).c_str(), n);
        out += buf;
        break;
      }
      case 'f':
      case 'F':
      case 'e':
      case 'E':
      case 'g':
      case 'G': {
        require_defined(v);
        if (!v.is_number()) fail(std::string("%") + conv + " format: a number is required");
        std::snprintf(buf, sizeof(buf), (spec + conv).c_str(), v.as_number());
        out += buf;
        break;
      }
      default:
        fail("unsupported format character '" + std::string(1, conv) + "'");
    }
  }
  if (next < values.size() && args.is_array()) {
    fail("not all arguments converted during string formatting");
  }
  return out;
}

}  // namespace mlxn::engine::jinja::detail
