// Value and Object: the data model of the Jinja engine with Python's semantics for truthiness,
// equality, str()/repr() and json.dumps, plus conversion from JSON text.
#include <algorithm>
#include <string>

#include "engine/jinja_json.h"
#include "engine/jinja_strings.h"
#include "mlxn/core/error.h"
#include "mlxn/engine/jinja.h"

namespace mlxn::engine::jinja {

namespace {

[[noreturn]] void kind_mismatch(const char* wanted, const Value& v) {
  throw Error(ErrorKind::InvalidArgument,
              std::string("jinja value: expected ") + wanted + ", got " + v.type_name());
}

const std::string& empty_string() {
  static const std::string empty;
  return empty;
}

// Dicts at or below this size are scanned; larger ones keep a key index.
constexpr std::size_t kIndexThreshold = 12;

}  // namespace

// ---- Object ----

const Value* Object::find(std::string_view key) const {
  if (!index_.empty()) {
    auto it = index_.find(std::string(key));
    return it == index_.end() ? nullptr : &entries_[it->second].second;
  }
  for (const Entry& e : entries_) {
    if (e.first == key) return &e.second;
  }
  return nullptr;
}

Value* Object::find(std::string_view key) {
  return const_cast<Value*>(static_cast<const Object*>(this)->find(key));
}

void Object::set(std::string key, Value value) {
  if (Value* existing = find(key)) {
    *existing = std::move(value);
    return;
  }
  if (!index_.empty()) index_.emplace(key, entries_.size());
  entries_.emplace_back(std::move(key), std::move(value));
  if (index_.empty() && entries_.size() > kIndexThreshold) rebuild_index();
}

bool Object::erase(std::string_view key) {
  for (auto it = entries_.begin(); it != entries_.end(); ++it) {
    if (it->first == key) {
      entries_.erase(it);
      index_.clear();
      if (entries_.size() > kIndexThreshold) rebuild_index();
      return true;
    }
  }
  return false;
}

void Object::rebuild_index() {
  index_.clear();
  for (std::size_t i = 0; i < entries_.size(); ++i) index_.emplace(entries_[i].first, i);
}

// ---- Value: construction and access ----

Value::Value(std::string s) : data_(std::make_shared<const std::string>(std::move(s))) {}
Value::Value(Array items) : data_(std::make_shared<Array>(std::move(items))) {}
Value::Value(Object object) : data_(std::make_shared<Object>(std::move(object))) {}

Value Value::undefined(std::string hint) {
  Value v;
  v.data_ = UndefinedTag{std::make_shared<const std::string>(std::move(hint))};
  return v;
}

Value Value::object() {
  return Value(Object{});
}

Value Value::function(std::string name, std::function<Value(const CallArgs&)> fn) {
  Value v;
  v.data_ = std::make_shared<const Callable>(Callable{std::move(name), std::move(fn)});
  return v;
}

bool Value::as_bool() const {
  if (!is_bool()) kind_mismatch("bool", *this);
  return std::get<bool>(data_);
}

std::int64_t Value::as_int() const {
  if (!is_int()) kind_mismatch("int", *this);
  return std::get<std::int64_t>(data_);
}

double Value::as_float() const {
  if (!is_float()) kind_mismatch("float", *this);
  return std::get<double>(data_);
}

double Value::as_number() const {
  switch (kind()) {
    case Kind::Bool:
      return std::get<bool>(data_) ? 1.0 : 0.0;
    case Kind::Int:
      return static_cast<double>(std::get<std::int64_t>(data_));
    case Kind::Float:
      return std::get<double>(data_);
    default:
      kind_mismatch("number", *this);
  }
}

const std::string& Value::as_string() const {
  if (!is_string()) kind_mismatch("str", *this);
  return *std::get<std::shared_ptr<const std::string>>(data_);
}

const Value::Array& Value::as_array() const {
  if (!is_array()) kind_mismatch("list", *this);
  return *std::get<std::shared_ptr<Array>>(data_);
}

Value::Array& Value::as_array() {
  if (!is_array()) kind_mismatch("list", *this);
  return *std::get<std::shared_ptr<Array>>(data_);
}

const Object& Value::as_object() const {
  if (!is_object()) kind_mismatch("dict", *this);
  return *std::get<std::shared_ptr<Object>>(data_);
}

Object& Value::as_object() {
  if (!is_object()) kind_mismatch("dict", *this);
  return *std::get<std::shared_ptr<Object>>(data_);
}

const Callable& Value::as_function() const {
  if (!is_function()) kind_mismatch("function", *this);
  return *std::get<std::shared_ptr<const Callable>>(data_);
}

const std::string& Value::undefined_hint() const {
  if (!is_undefined()) return empty_string();
  const auto& hint = std::get<UndefinedTag>(data_).hint;
  return hint ? *hint : empty_string();
}

const char* Value::type_name() const {
  switch (kind()) {
    case Kind::Undefined:
      return "Undefined";
    case Kind::None:
      return "NoneType";
    case Kind::Bool:
      return "bool";
    case Kind::Int:
      return "int";
    case Kind::Float:
      return "float";
    case Kind::String:
      return "str";
    case Kind::Array:
      return "list";
    case Kind::Object:
      return "dict";
    case Kind::Function:
      return "function";
  }
  return "?";
}

Value& Value::push_back(Value item) {
  as_array().push_back(std::move(item));
  return *this;
}

Value& Value::set(std::string key, Value item) {
  as_object().set(std::move(key), std::move(item));
  return *this;
}

Value Value::get(std::string_view key) const {
  if (!is_object()) return Value();
  const Value* v = as_object().find(key);
  return v ? *v : Value();
}

std::size_t Value::size() const {
  switch (kind()) {
    case Kind::Array:
      return as_array().size();
    case Kind::Object:
      return as_object().size();
    case Kind::String:
      return detail::count_code_points(as_string());
    default:
      return 0;
  }
}

Value Value::deep_copy() const {
  if (is_array()) {
    Array items;
    items.reserve(as_array().size());
    for (const Value& v : as_array()) items.push_back(v.deep_copy());
    return Value(std::move(items));
  }
  if (is_object()) {
    Object copy;
    for (const auto& [k, v] : as_object()) copy.set(k, v.deep_copy());
    copy.set_namespace(as_object().is_namespace());
    return Value(std::move(copy));
  }
  return *this;
}

// ---- Python semantics ----

bool Value::truthy() const {
  switch (kind()) {
    case Kind::Undefined:
    case Kind::None:
      return false;
    case Kind::Bool:
      return std::get<bool>(data_);
    case Kind::Int:
      return std::get<std::int64_t>(data_) != 0;
    case Kind::Float:
      return std::get<double>(data_) != 0.0;
    case Kind::String:
      return !as_string().empty();
    case Kind::Array:
      return !as_array().empty();
    case Kind::Object:
      return !as_object().empty();
    case Kind::Function:
      return true;
  }
  return false;
}

bool operator==(const Value& a, const Value& b) {
  using Kind = Value::Kind;
  if (a.is_number() && b.is_number()) {
    if (!a.is_float() && !b.is_float()) {
      const std::int64_t x = a.is_bool() ? (a.as_bool() ? 1 : 0) : a.as_int();
      const std::int64_t y = b.is_bool() ? (b.as_bool() ? 1 : 0) : b.as_int();
      return x == y;
    }
    return a.as_number() == b.as_number();
  }
  if (a.kind() != b.kind()) return false;
  switch (a.kind()) {
    case Kind::Undefined:
    case Kind::None:
      return true;
    case Kind::String:
      return a.as_string() == b.as_string();
    case Kind::Array: {
      const auto& x = a.as_array();
      const auto& y = b.as_array();
      if (x.size() != y.size()) return false;
      for (std::size_t i = 0; i < x.size(); ++i) {
        if (x[i] != y[i]) return false;
      }
      return true;
    }
    case Kind::Object: {
      const auto& x = a.as_object();
      const auto& y = b.as_object();
      if (x.size() != y.size()) return false;
      for (const auto& [k, v] : x) {
        const Value* other = y.find(k);
        if (!other || *other != v) return false;
      }
      return true;
    }
    case Kind::Function:
      return &a.as_function() == &b.as_function();
    default:
      return false;  // numbers were handled above
  }
}

std::string Value::str() const {
  switch (kind()) {
    case Kind::Undefined:
      return "";
    case Kind::String:
      return as_string();
    default:
      return repr();
  }
}

std::string Value::repr() const {
  switch (kind()) {
    case Kind::Undefined:
      return "Undefined";
    case Kind::None:
      return "None";
    case Kind::Bool:
      return as_bool() ? "True" : "False";
    case Kind::Int:
      return std::to_string(as_int());
    case Kind::Float:
      return detail::repr_float(as_float());
    case Kind::String:
      return detail::repr_string(as_string());
    case Kind::Array: {
      std::string out = "[";
      bool first = true;
      for (const Value& v : as_array()) {
        if (!first) out += ", ";
        first = false;
        out += v.repr();
      }
      return out + "]";
    }
    case Kind::Object: {
      std::string out = as_object().is_namespace() ? "<Namespace {" : "{";
      bool first = true;
      for (const auto& [k, v] : as_object()) {
        if (!first) out += ", ";
        first = false;
        out += detail::repr_string(k) + ": " + v.repr();
      }
      return out + (as_object().is_namespace() ? "}>" : "}");
    }
    case Kind::Function:
      return "<function " + as_function().name + ">";
  }
  return "";
}

namespace {

struct JsonWriter {
  const JsonFormat& format;
  std::string item_separator;
  std::string key_separator;
  std::string out;

  void newline(int depth) {
    out += '\n';
    out.append(static_cast<std::size_t>(format.indent * depth), ' ');
  }

  void write(const Value& v, int depth) {
    using Kind = Value::Kind;
    switch (v.kind()) {
      case Kind::None:
        out += "null";
        return;
      case Kind::Bool:
        out += v.as_bool() ? "true" : "false";
        return;
      case Kind::Int:
        out += std::to_string(v.as_int());
        return;
      case Kind::Float: {
        const double d = v.as_float();
        if (d != d) {
          out += "NaN";
        } else if (d == std::numeric_limits<double>::infinity()) {
          out += "Infinity";
        } else if (d == -std::numeric_limits<double>::infinity()) {
          out += "-Infinity";
        } else {
          out += detail::repr_float(d);
        }
        return;
      }
      case Kind::String:
        out += detail::json_quote(v.as_string(), format.ensure_ascii);
        return;
      case Kind::Array: {
        const auto& items = v.as_array();
        if (items.empty()) {
          out += "[]";
          return;
        }
        out += '[';
        for (std::size_t i = 0; i < items.size(); ++i) {
          if (i > 0) out += item_separator;
          if (format.indent >= 0) newline(depth + 1);
          write(items[i], depth + 1);
        }
        if (format.indent >= 0) newline(depth);
        out += ']';
        return;
      }
      case Kind::Object: {
        const auto& obj = v.as_object();
        if (obj.empty()) {
          out += "{}";
          return;
        }
        std::vector<const Object::Entry*> entries;
        for (const auto& e : obj) entries.push_back(&e);
        if (format.sort_keys) {
          std::stable_sort(entries.begin(), entries.end(),
                           [](const auto* a, const auto* b) { return a->first < b->first; });
        }
        out += '{';
        for (std::size_t i = 0; i < entries.size(); ++i) {
          if (i > 0) out += item_separator;
          if (format.indent >= 0) newline(depth + 1);
          out += detail::json_quote(entries[i]->first, format.ensure_ascii);
          out += key_separator;
          write(entries[i]->second, depth + 1);
        }
        if (format.indent >= 0) newline(depth);
        out += '}';
        return;
      }
      case Kind::Undefined:
      case Kind::Function:
        throw Error(ErrorKind::InvalidArgument,
                    std::string("Object of type ") + v.type_name() + " is not JSON serializable");
    }
  }
};

template <typename Json>
Value convert_json(const Json& j) {
  switch (j.type()) {
    case nlohmann::json::value_t::null:
      return Value::none();
    case nlohmann::json::value_t::boolean:
      return Value(j.template get<bool>());
    case nlohmann::json::value_t::number_integer:
      return Value(static_cast<std::int64_t>(j.template get<std::int64_t>()));
    case nlohmann::json::value_t::number_unsigned: {
      const auto u = j.template get<std::uint64_t>();
      if (u <= static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max())) {
        return Value(static_cast<std::int64_t>(u));
      }
      return Value(static_cast<double>(u));
    }
    case nlohmann::json::value_t::number_float:
      return Value(j.template get<double>());
    case nlohmann::json::value_t::string:
      return Value(j.template get<std::string>());
    case nlohmann::json::value_t::array: {
      Value::Array items;
      items.reserve(j.size());
      for (const auto& item : j) items.push_back(convert_json(item));
      return Value(std::move(items));
    }
    case nlohmann::json::value_t::object: {
      Object obj;
      for (auto it = j.begin(); it != j.end(); ++it) obj.set(it.key(), convert_json(it.value()));
      return Value(std::move(obj));
    }
    default:
      throw Error(ErrorKind::Format, "JSON value of an unsupported type (binary)");
  }
}

}  // namespace

std::string Value::to_json(const JsonFormat& format) const {
  JsonWriter w{format,
               format.item_separator.value_or(format.indent >= 0 ? "," : ", "),
               format.key_separator.value_or(": "),
               {}};
  w.write(*this, 0);
  return std::move(w.out);
}

Value Value::from_json_text(std::string_view json) {
  nlohmann::ordered_json parsed;
  try {
    parsed = nlohmann::ordered_json::parse(json.begin(), json.end());
  } catch (const nlohmann::json::exception& e) {
    throw Error(ErrorKind::Format, std::string("invalid JSON for a template value: ") + e.what());
  }
  return convert_json(parsed);
}

namespace detail {

Value value_from_json(const nlohmann::ordered_json& json) {
  return convert_json(json);
}
Value value_from_json(const nlohmann::json& json) {
  return convert_json(json);
}

}  // namespace detail

}  // namespace mlxn::engine::jinja
