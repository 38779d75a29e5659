// DType sizes and names.
#include "mlxn/core/dtype.h"

#include <array>
#include <string>

#include "mlxn/core/error.h"

namespace mlxn {
namespace {

struct DTypeInfo {
  DType dtype;
  std::size_t size;
  std::string_view name;
};

constexpr std::array<DTypeInfo, 13> kInfos = {{
    {DType::F32, 4, "f32"},
    {DType::F16, 2, "f16"},
    {DType::BF16, 2, "bf16"},
    {DType::F64, 8, "f64"},
    {DType::I8, 1, "i8"},
    {DType::I16, 2, "i16"},
    {DType::I32, 4, "i32"},
    {DType::I64, 8, "i64"},
    {DType::U8, 1, "u8"},
    {DType::U16, 2, "u16"},
    {DType::U32, 4, "u32"},
    {DType::U64, 8, "u64"},
    {DType::Bool, 1, "bool"},
}};

const DTypeInfo& info(DType dtype) {
  auto i = static_cast<std::size_t>(dtype);
  if (i >= kInfos.size()) {
    throw Error(ErrorKind::InvalidArgument, "invalid dtype value " + std::to_string(i));
  }
  return kInfos[i];
}

}  // namespace

std::size_t dtype_size(DType dtype) { return info(dtype).size; }

std::string_view dtype_name(DType dtype) { return info(dtype).name; }

DType dtype_from_name(std::string_view name) {
  for (const auto& i : kInfos) {
    if (i.name == name) return i.dtype;
  }
  throw Error(ErrorKind::InvalidArgument, "unknown dtype name '" + std::string(name) + "'");
}

bool dtype_is_float(DType dtype) {
  return dtype == DType::F32 || dtype == DType::F16 || dtype == DType::BF16 || dtype == DType::F64;
}

}  // namespace mlxn
