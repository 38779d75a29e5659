// TensorDType names, sizes and the mapping to mlxn::DType.
#include "mlxn/io/safetensors_dtype.h"

#include <array>

namespace mlxn::io {

namespace {

struct DTypeInfo {
  TensorDType dtype;
  std::string_view name;
  std::size_t size;
  std::optional<DType> mlxn;
};

// Indexed by the enum value; the order must match the enum declaration.
constexpr std::array<DTypeInfo, kTensorDTypeCount> kInfos = {{
    {TensorDType::F64, "F64", 8, DType::F64},
    {TensorDType::F32, "F32", 4, DType::F32},
    {TensorDType::F16, "F16", 2, DType::F16},
    {TensorDType::BF16, "BF16", 2, DType::BF16},
    {TensorDType::F8E4M3, "F8_E4M3", 1, std::nullopt},
    {TensorDType::F8E5M2, "F8_E5M2", 1, std::nullopt},
    {TensorDType::I64, "I64", 8, DType::I64},
    {TensorDType::I32, "I32", 4, DType::I32},
    {TensorDType::I16, "I16", 2, DType::I16},
    {TensorDType::I8, "I8", 1, DType::I8},
    {TensorDType::U64, "U64", 8, DType::U64},
    {TensorDType::U32, "U32", 4, DType::U32},
    {TensorDType::U16, "U16", 2, DType::U16},
    {TensorDType::U8, "U8", 1, DType::U8},
    {TensorDType::Bool, "BOOL", 1, DType::Bool},
}};

constexpr bool infos_in_enum_order() {
  for (std::size_t i = 0; i < kInfos.size(); ++i) {
    if (static_cast<std::size_t>(kInfos[i].dtype) != i) return false;
  }
  return true;
}
static_assert(infos_in_enum_order(), "kInfos must follow the TensorDType declaration order");

const DTypeInfo& info(TensorDType dtype) {
  return kInfos[static_cast<std::size_t>(dtype)];
}

}  // namespace

std::string_view tensor_dtype_name(TensorDType dtype) {
  return info(dtype).name;
}

std::optional<TensorDType> tensor_dtype_from_name(std::string_view name) {
  for (const DTypeInfo& i : kInfos) {
    if (i.name == name) return i.dtype;
  }
  return std::nullopt;
}

std::size_t tensor_dtype_size(TensorDType dtype) {
  return info(dtype).size;
}

std::optional<DType> to_dtype(TensorDType dtype) {
  return info(dtype).mlxn;
}

TensorDType tensor_dtype_from(DType dtype) {
  for (const DTypeInfo& i : kInfos) {
    if (i.mlxn == dtype) return i.dtype;
  }
  // Unreachable while every DType has a row above; U8 is the honest fallback for raw bytes.
  return TensorDType::U8;
}

bool tensor_dtype_is_float(TensorDType dtype) {
  switch (dtype) {
    case TensorDType::F64:
    case TensorDType::F32:
    case TensorDType::F16:
    case TensorDType::BF16:
    case TensorDType::F8E4M3:
    case TensorDType::F8E5M2:
      return true;
    default:
      return false;
  }
}

}  // namespace mlxn::io
