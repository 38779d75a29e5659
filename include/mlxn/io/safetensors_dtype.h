// TensorDType: the element types a safetensors file can declare, and how they map to mlxn DTypes.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string_view>

#include "mlxn/core/dtype.h"

namespace mlxn::io {

/// Every dtype of the safetensors format. F8E4M3 is the "fn" variant (no infinities, max 448),
/// as written by PyTorch's float8_e4m3fn; F8E5M2 is IEEE-like (the top byte of an f16).
enum class TensorDType : std::uint8_t {
  F64,
  F32,
  F16,
  BF16,
  F8E4M3,
  F8E5M2,
  I64,
  I32,
  I16,
  I8,
  U64,
  U32,
  U16,
  U8,
  Bool,
};

/// Number of TensorDType values (for iterating over all of them).
inline constexpr int kTensorDTypeCount = 15;

/// The name as the format spells it: "F32", "BF16", "F8_E4M3", "BOOL".
std::string_view tensor_dtype_name(TensorDType dtype);

/// Parses a format name ("F16", "F8_E5M2", ...); nullopt for anything else.
std::optional<TensorDType> tensor_dtype_from_name(std::string_view name);

/// Bytes per element (1 for BOOL and the F8 types).
std::size_t tensor_dtype_size(TensorDType dtype);

/// The mlxn DType with the same bits, or nullopt where mlxn has none (the F8 types).
std::optional<DType> to_dtype(TensorDType dtype);

/// The safetensors dtype of an mlxn DType (every DType has one).
TensorDType tensor_dtype_from(DType dtype);

/// True for F64, F32, F16, BF16 and the F8 types.
bool tensor_dtype_is_float(TensorDType dtype);

}  // namespace mlxn::io
