// GgufValue: one GGUF metadata value (scalar, string or possibly nested array) with typed access.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <type_traits>
#include <variant>
#include <vector>

namespace mlxn::io {

/// GGUF metadata value type ids, as stored in the file.
enum class GgufType : std::uint32_t {
  U8 = 0,
  I8 = 1,
  U16 = 2,
  I16 = 3,
  U32 = 4,
  I32 = 5,
  F32 = 6,
  Bool = 7,
  String = 8,
  Array = 9,
  U64 = 10,
  I64 = 11,
  F64 = 12,
};

/// Number of GGUF value types; ids at or above it are invalid.
inline constexpr std::uint32_t kGgufTypeCount = 13;

/// "u8", "string", "array", ...; "type#N" for invalid ids.
std::string gguf_type_name(GgufType type);

class GgufArray;

/// Storage of an array: alternative index == element GgufType id.
using GgufArrayData =
    std::variant<std::vector<std::uint8_t>, std::vector<std::int8_t>, std::vector<std::uint16_t>,
                 std::vector<std::int16_t>, std::vector<std::uint32_t>, std::vector<std::int32_t>,
                 std::vector<float>, std::vector<bool>, std::vector<std::string>,
                 std::vector<GgufArray>, std::vector<std::uint64_t>, std::vector<std::int64_t>,
                 std::vector<double>>;

/// A homogeneous GGUF array. Elements of an Array-typed array are themselves arrays (GGUF
/// nests arrays that way), each with its own element type.
class GgufArray {
 public:
  /// An empty array of u8.
  GgufArray() = default;
  /// Takes the elements; the element type follows from T (a vector<T> alternative above).
  template <class T>
  explicit GgufArray(std::vector<T> values) : data_(std::move(values)) {}
  /// An empty array with the given element type.
  static GgufArray empty_of(GgufType element_type);

  /// Element type.
  GgufType element_type() const { return static_cast<GgufType>(data_.index()); }
  /// Number of elements.
  std::size_t size() const;
  /// The elements; throws Format naming `context` when the element type is not T.
  template <class T>
  const std::vector<T>& values(std::string_view context = "array") const;
  /// The storage variant.
  const GgufArrayData& data() const { return data_; }

  bool operator==(const GgufArray& other) const { return data_ == other.data_; }

 private:
  GgufArrayData data_;
};

/// Storage of a value: alternative index == GgufType id.
using GgufValueData = std::variant<std::uint8_t, std::int8_t, std::uint16_t, std::int16_t,
                                   std::uint32_t, std::int32_t, float, bool, std::string, GgufArray,
                                   std::uint64_t, std::int64_t, double>;

/// One metadata value. The C++ type picks the GGUF type: uint32_t -> U32, std::string -> String.
class GgufValue {
 public:
  GgufValue() = default;
  /// A scalar, string or array value of the GGUF type matching T.
  template <class T>
  requires(!std::is_same_v<std::decay_t<T>, GgufValue> && std::is_constructible_v<GgufValueData, T>)
      GgufValue(T value)
      : data_(std::move(value)) {}  // NOLINT: implicit on purpose
  /// A String value (so string literals don't pick bool).
  GgufValue(const char* value) : data_(std::string(value)) {}  // NOLINT
  /// An Array value.
  template <class T>
  GgufValue(std::vector<T> values) : data_(GgufArray(std::move(values))) {}  // NOLINT

  /// The GGUF type.
  GgufType type() const { return static_cast<GgufType>(data_.index()); }
  /// True when the value holds exactly T.
  template <class T>
  bool is() const {
    return std::holds_alternative<T>(data_);
  }
  /// The value as exactly T; throws Format "<context>: expected u32, found string" otherwise.
  template <class T>
  const T& as(std::string_view context = "value") const;
  /// The array's elements as exactly vector<T>; throws Format naming `context` otherwise.
  template <class T>
  const std::vector<T>& array(std::string_view context = "value") const {
    return as<GgufArray>(context).values<T>(context);
  }
  /// Any integer type (u8..i64, not bool) as int64; throws Format when not an integer or when a
  /// u64 does not fit.
  std::int64_t to_int(std::string_view context = "value") const;
  /// F32 or F64 (and integers) as double; throws Format for other types.
  double to_double(std::string_view context = "value") const;
  /// Short rendering for diagnostics: scalars in full, strings quoted and cut, arrays summarized.
  std::string to_string() const;
  /// The storage variant.
  const GgufValueData& data() const { return data_; }

  bool operator==(const GgufValue& other) const { return data_ == other.data_; }

 private:
  GgufValueData data_;
};

/// Throws the Format error for a type mismatch (shared by the accessors' templates).
[[noreturn]] void gguf_throw_type_mismatch(std::string_view context, std::string_view expected,
                                           std::string_view found);

/// "u32", "array of string": how a value's type reads in messages.
std::string gguf_describe_type(const GgufValue& value);

/// The GGUF type a C++ type maps to (for messages).
template <class T>
GgufType gguf_type_of() {
  return static_cast<GgufType>(GgufValueData(std::in_place_type<T>).index());
}

template <class T>
const T& GgufValue::as(std::string_view context) const {
  if (const T* v = std::get_if<T>(&data_)) return *v;
  gguf_throw_type_mismatch(context, gguf_type_name(gguf_type_of<T>()), gguf_describe_type(*this));
}

template <class T>
const std::vector<T>& GgufArray::values(std::string_view context) const {
  if (const auto* v = std::get_if<std::vector<T>>(&data_)) return *v;
  gguf_throw_type_mismatch(context, "array of " + gguf_type_name(gguf_type_of<T>()),
                           "array of " + gguf_type_name(element_type()));
}

}  // namespace mlxn::io
