// Private JSON helpers for config.json parsing: bounded parsing and typed, range-checked field
// access whose errors name the file and the field. nlohmann stays out of public headers.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>

namespace mlxn::io::detail {

using Json = nlohmann::json;

/// Largest config file we read: real configs are a few KB (Phi-3 rope factor lists ~10 KB).
inline constexpr std::size_t kMaxConfigBytes = 16u << 20;
/// Deepest nesting accepted; real configs nest 3 levels. Bounded before parsing so hostile
/// input cannot exhaust the stack in recursive destruction or traversal.
inline constexpr int kMaxJsonDepth = 32;

/// Parses JSON text after checking its size and nesting depth. Throws Error(Format) naming
/// `source` on oversize, over-deep, malformed or non-UTF-8 input.
Json parse_json_text(std::string_view text, std::string_view source);

/// Typed access to the members of one JSON object, with errors "<source>: <prefix><key>: ...".
/// Absent keys and JSON null read as "not given".
class JsonFields {
 public:
  /// `obj` must outlive this reader; throws Format if it is not an object.
  JsonFields(const Json& obj, std::string source, std::string prefix);

  /// True when the key is present and not null.
  bool has(std::string_view key) const;
  /// The raw member, or nullptr when absent or null.
  const Json* find(std::string_view key) const;

  std::optional<std::int64_t> get_int(std::string_view key, std::int64_t lo, std::int64_t hi) const;
  std::int64_t require_int(std::string_view key, std::int64_t lo, std::int64_t hi) const;
  std::optional<double> get_double(std::string_view key, double lo, double hi) const;
  std::optional<bool> get_bool(std::string_view key) const;
  std::optional<std::string> get_string(std::string_view key) const;
  /// The member if it is an object, nullptr when absent/null; throws Format on another type.
  const Json* get_object(std::string_view key) const;
  /// The member if it is an array, nullptr when absent/null; throws Format on another type.
  const Json* get_array(std::string_view key) const;

  /// Integer from a JSON value (integral floats accepted) checked against [lo, hi].
  std::int64_t to_int(const Json& v, std::string_view key, std::int64_t lo, std::int64_t hi) const;
  /// Finite number from a JSON value checked against [lo, hi].
  double to_double(const Json& v, std::string_view key, double lo, double hi) const;

  /// Throws Error(Format) "<source>: <prefix><key>: <what>".
  [[noreturn]] void fail(std::string_view key, const std::string& what) const;

  const std::string& source() const { return source_; }
  const std::string& prefix() const { return prefix_; }

 private:
  const Json& obj_;
  std::string source_;
  std::string prefix_;
};

/// Short description of a JSON value's type for messages ("string", "array", ...).
const char* json_type_name(const Json& v);

}  // namespace mlxn::io::detail
