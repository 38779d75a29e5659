// Bounded JSON parsing and typed field access for config.json readers.
#include "io/model_config_json.h"

#include <cmath>
#include <cstdio>
#include <string>

#include "mlxn/core/error.h"

namespace mlxn::io::detail {

namespace {

// Scans for the maximum bracket depth outside strings, so depth is bounded before the
// parser builds anything.
int max_depth(std::string_view text) {
  int depth = 0, deepest = 0;
  bool in_string = false, escaped = false;
  for (char c : text) {
    if (in_string) {
      if (escaped) {
        escaped = false;
      } else if (c == '\\') {
        escaped = true;
      } else if (c == '"') {
        in_string = false;
      }
      continue;
    }
    if (c == '"') {
      in_string = true;
    } else if (c == '{' || c == '[') {
      if (++depth > deepest) deepest = depth;
      if (deepest > kMaxJsonDepth) return deepest;
    } else if (c == '}' || c == ']') {
      --depth;
    }
  }
  return deepest;
}

std::string number_text(double v) {
  if (std::isfinite(v) && v == std::floor(v) && std::fabs(v) < 1e18) {
    return std::to_string(static_cast<long long>(v));
  }
  char buf[64];
  std::snprintf(buf, sizeof buf, "%g", v);
  return buf;
}

}  // namespace

Json parse_json_text(std::string_view text, std::string_view source) {
  const std::string src(source);
  if (text.size() > kMaxConfigBytes) {
    throw Error(ErrorKind::Format, src + ": JSON text of " + std::to_string(text.size()) +
                                       " bytes exceeds the " + std::to_string(kMaxConfigBytes) +
                                       "-byte limit");
  }
  if (max_depth(text) > kMaxJsonDepth) {
    throw Error(ErrorKind::Format,
                src + ": JSON nests deeper than " + std::to_string(kMaxJsonDepth) + " levels");
  }
  try {
    return Json::parse(text.begin(), text.end());
  } catch (const Json::exception& e) {
    // nlohmann's message includes the byte position and, for bad UTF-8, the offending bytes.
    throw Error(ErrorKind::Format, src + ": invalid JSON: " + e.what());
  }
}

const char* json_type_name(const Json& v) {
  switch (v.type()) {
    case Json::value_t::null:
      return "null";
    case Json::value_t::object:
      return "object";
    case Json::value_t::array:
      return "array";
    case Json::value_t::string:
      return "string";
    case Json::value_t::boolean:
      return "boolean";
    case Json::value_t::number_integer:
    case Json::value_t::number_unsigned:
      return "integer";
    case Json::value_t::number_float:
      return "number";
    default:
      return "binary";
  }
}

JsonFields::JsonFields(const Json& obj, std::string source, std::string prefix)
    : obj_(obj), source_(std::move(source)), prefix_(std::move(prefix)) {
  if (!obj_.is_object()) {
    std::string where = prefix_.empty() ? std::string("top level") : prefix_;
    if (!where.empty() && where.back() == '.') where.pop_back();
    throw Error(ErrorKind::Format,
                source_ + ": " + where + ": expected a JSON object, got " + json_type_name(obj_));
  }
}

void JsonFields::fail(std::string_view key, const std::string& what) const {
  throw Error(ErrorKind::Format, source_ + ": " + prefix_ + std::string(key) + ": " + what);
}

const Json* JsonFields::find(std::string_view key) const {
  auto it = obj_.find(key);
  if (it == obj_.end() || it->is_null()) return nullptr;
  return &*it;
}

bool JsonFields::has(std::string_view key) const {
  return find(key) != nullptr;
}

std::int64_t JsonFields::to_int(const Json& v, std::string_view key, std::int64_t lo,
                                std::int64_t hi) const {
  std::int64_t n = 0;
  if (v.is_number_unsigned()) {
    const auto u = v.get<std::uint64_t>();
    if (u > static_cast<std::uint64_t>(hi)) {
      fail(key, std::to_string(u) + " is out of range [" + std::to_string(lo) + ", " +
                    std::to_string(hi) + "]");
    }
    n = static_cast<std::int64_t>(u);
  } else if (v.is_number_integer()) {
    n = v.get<std::int64_t>();
  } else if (v.is_number_float()) {
    const double d = v.get<double>();
    if (!std::isfinite(d) || d != std::floor(d) || d < -9.2e18 || d > 9.2e18) {
      fail(key, "expected an integer, got " + number_text(d));
    }
    n = static_cast<std::int64_t>(d);
  } else {
    fail(key, std::string("expected an integer, got ") + json_type_name(v));
  }
  if (n < lo || n > hi) {
    fail(key, std::to_string(n) + " is out of range [" + std::to_string(lo) + ", " +
                  std::to_string(hi) + "]");
  }
  return n;
}

double JsonFields::to_double(const Json& v, std::string_view key, double lo, double hi) const {
  if (!v.is_number()) fail(key, std::string("expected a number, got ") + json_type_name(v));
  const double d = v.get<double>();
  if (!std::isfinite(d) || d < lo || d > hi) {
    fail(key,
         number_text(d) + " is out of range [" + number_text(lo) + ", " + number_text(hi) + "]");
  }
  return d;
}

std::optional<std::int64_t> JsonFields::get_int(std::string_view key, std::int64_t lo,
                                                std::int64_t hi) const {
  const Json* v = find(key);
  if (!v) return std::nullopt;
  return to_int(*v, key, lo, hi);
}

std::int64_t JsonFields::require_int(std::string_view key, std::int64_t lo, std::int64_t hi) const {
  const Json* v = find(key);
  if (!v) fail(key, "required field is missing");
  return to_int(*v, key, lo, hi);
}

std::optional<double> JsonFields::get_double(std::string_view key, double lo, double hi) const {
  const Json* v = find(key);
  if (!v) return std::nullopt;
  return to_double(*v, key, lo, hi);
}

std::optional<bool> JsonFields::get_bool(std::string_view key) const {
  const Json* v = find(key);
  if (!v) return std::nullopt;
  if (!v->is_boolean()) fail(key, std::string("expected a boolean, got ") + json_type_name(*v));
  return v->get<bool>();
}

std::optional<std::string> JsonFields::get_string(std::string_view key) const {
  const Json* v = find(key);
  if (!v) return std::nullopt;
  if (!v->is_string()) fail(key, std::string("expected a string, got ") + json_type_name(*v));
  return v->get<std::string>();
}

const Json* JsonFields::get_object(std::string_view key) const {
  const Json* v = find(key);
  if (v && !v->is_object()) {
    fail(key, std::string("expected an object, got ") + json_type_name(*v));
  }
  return v;
}

const Json* JsonFields::get_array(std::string_view key) const {
  const Json* v = find(key);
  if (v && !v->is_array()) fail(key, std::string("expected an array, got ") + json_type_name(*v));
  return v;
}

}  // namespace mlxn::io::detail
