// GgufValue: type names, numeric widening and diagnostics for GGUF metadata values.
#include "mlxn/io/gguf_value.h"

#include <limits>
#include <sstream>

#include "mlxn/core/error.h"

namespace mlxn::io {
namespace {

constexpr const char* kTypeNames[kGgufTypeCount] = {
    "u8", "i8", "u16", "i16", "u32", "i32", "f32", "bool", "string", "array", "u64", "i64", "f64"};

}  // namespace

std::string gguf_type_name(GgufType type) {
  auto id = static_cast<std::uint32_t>(type);
  if (id >= kGgufTypeCount) return "type#" + std::to_string(id);
  return kTypeNames[id];
}

GgufArray GgufArray::empty_of(GgufType element_type) {
  GgufArray a;
  switch (element_type) {
    case GgufType::U8:
      a.data_.emplace<0>();
      break;
    case GgufType::I8:
      a.data_.emplace<1>();
      break;
    case GgufType::U16:
      a.data_.emplace<2>();
      break;
    case GgufType::I16:
      a.data_.emplace<3>();
      break;
    case GgufType::U32:
      a.data_.emplace<4>();
      break;
    case GgufType::I32:
      a.data_.emplace<5>();
      break;
    case GgufType::F32:
      a.data_.emplace<6>();
      break;
    case GgufType::Bool:
      a.data_.emplace<7>();
      break;
    case GgufType::String:
      a.data_.emplace<8>();
      break;
    case GgufType::Array:
      a.data_.emplace<9>();
      break;
    case GgufType::U64:
      a.data_.emplace<10>();
      break;
    case GgufType::I64:
      a.data_.emplace<11>();
      break;
    case GgufType::F64:
      a.data_.emplace<12>();
      break;
    default:
      throw Error(ErrorKind::InvalidArgument,
                  "GGUF array of invalid element type " + gguf_type_name(element_type));
  }
  return a;
}

std::size_t GgufArray::size() const {
  return std::visit([](const auto& v) { return v.size(); }, data_);
}

void gguf_throw_type_mismatch(std::string_view context, std::string_view expected,
                              std::string_view found) {
  throw Error(ErrorKind::Format, std::string(context) + ": expected " + std::string(expected) +
                                     ", found " + std::string(found));
}

std::string gguf_describe_type(const GgufValue& value) {
  if (const auto* a = std::get_if<GgufArray>(&value.data())) {
    return "array of " + gguf_type_name(a->element_type());
  }
  return gguf_type_name(value.type());
}

std::int64_t GgufValue::to_int(std::string_view context) const {
  return std::visit(
      [&](const auto& v) -> std::int64_t {
        using T = std::decay_t<decltype(v)>;
        if constexpr (std::is_integral_v<T> && !std::is_same_v<T, bool>) {
          if constexpr (std::is_same_v<T, std::uint64_t>) {
            if (v > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max())) {
              throw Error(ErrorKind::Format, std::string(context) + ": value " + std::to_string(v) +
                                                 " is out of range");
            }
          }
          return static_cast<std::int64_t>(v);
        } else {
          gguf_throw_type_mismatch(context, "an integer", gguf_describe_type(*this));
        }
      },
      data_);
}

double GgufValue::to_double(std::string_view context) const {
  if (const float* f = std::get_if<float>(&data_)) return *f;
  if (const double* d = std::get_if<double>(&data_)) return *d;
  if (is<bool>() || is<std::string>() || is<GgufArray>()) {
    gguf_throw_type_mismatch(context, "a number", gguf_describe_type(*this));
  }
  if (const std::uint64_t* u = std::get_if<std::uint64_t>(&data_)) return static_cast<double>(*u);
  return static_cast<double>(to_int(context));
}

std::string GgufValue::to_string() const {
  std::ostringstream out;
  std::visit(
      [&](const auto& v) {
        using T = std::decay_t<decltype(v)>;
        if constexpr (std::is_same_v<T, std::string>) {
          constexpr std::size_t kMax = 60;
          out << '"' << v.substr(0, kMax) << (v.size() > kMax ? "...\"" : "\"");
        } else if constexpr (std::is_same_v<T, GgufArray>) {
          out << "[" << v.size() << " x " << gguf_type_name(v.element_type()) << "]";
        } else if constexpr (std::is_same_v<T, bool>) {
          out << (v ? "true" : "false");
        } else if constexpr (std::is_same_v<T, std::uint8_t> || std::is_same_v<T, std::int8_t>) {
          out << static_cast<int>(v);
        } else {
          out << v;
        }
      },
      data_);
  return out.str();
}

}  // namespace mlxn::io
